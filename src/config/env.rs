//! The process environment as the config sees it: environment variables, read through a
//! [`Vars`] source so tests can supply their own, and the system hostname.
//!
//! `config::overrides` falls back to these where the file and the start flags leave a value
//! empty; nothing else in the config reads the environment.

use std::ffi::OsString;

/// Reads one environment variable by name; `None` when unset. The binary passes
/// [`process_var`]; tests pass a closure over a fixed table and leave the process alone.
pub(super) type Vars<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process's own environment.
pub(super) fn process_var(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The kernel's hostname, the last resort for `env.host`.
pub(super) fn system_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).into_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_a_plain_name() {
        let name = system_hostname().unwrap();
        assert!(!name.contains('\0') && name.len() < 256, "{name:?}");
    }
}
