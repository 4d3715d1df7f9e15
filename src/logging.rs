//! Process-wide logging set-up, called once by the binary after the config is loaded.
//!
//! Owns the `tracing` subscriber: the `RUST_LOG` filter and the destinations
//! chosen by `[log]` (standard output and/or `<dir>/discovery.log`).

use std::fs::{File, OpenOptions};
use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogConfig;

/// Name of the log file inside `log.dir`.
pub const LOG_FILE: &str = "discovery.log";

/// Installs the global subscriber. Fails if `RUST_LOG` is malformed, the log
/// file cannot be opened, or logging was already initialised.
pub fn init(log: &LogConfig) -> Result<(), String> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env()
        .map_err(|e| format!("invalid RUST_LOG: {e}"))?;

    let file = match &log.dir {
        Some(dir) => Some(open_log_file(dir)?),
        None => None,
    };
    // A service that logs nowhere hides its failures, so with neither
    // destination configured stdout is used anyway.
    let stdout = (log.stdout || file.is_none()).then(|| {
        // Colour codes only help a terminal; they garble journald and `docker logs`.
        tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal())
    });
    let file = file.map(|f| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(Mutex::new(f))
    });

    tracing_subscriber::registry()
        .with(filter)
        .with(stdout)
        .with(file)
        .try_init()
        .map_err(|e| format!("cannot initialise logging: {e}"))
}

fn open_log_file(dir: &std::path::Path) -> Result<File, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    let path = dir.join(LOG_FILE);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))
}

/// The line a panic is logged with, before the process aborts.
pub const PANIC_LINE: &str = "panic: aborting the process so that its supervisor restarts it";

/// Makes any panic, on any thread, end the whole process: the panic is logged (to the log and
/// to standard error, which a supervisor keeps) and the process aborts. A core thread that
/// panicked would otherwise end alone, leaving its listener's connections unserved and its
/// inbox of changes growing, with the process still looking alive. The release profile also
/// sets `panic = "abort"`; the hook gives the log line, and aborts in every profile.
pub fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let location = info
            .location()
            .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        tracing::error!(thread = name, at = %location, "{PANIC_LINE}: {payload}");
        eprintln!("discovery: {PANIC_LINE}: thread {name} at {location}: {payload}");
        default(info);
        std::process::abort();
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    // Only this test may install the global subscriber: it is once per process.
    #[test]
    fn file_logging_then_second_init_fails() {
        let dir = std::env::temp_dir().join(format!(
            "discovery-logging-{}-{}",
            std::process::id(),
            std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos()
        ));
        let nested = dir.join("a").join("b");

        // A regular file where the directory should be: opening must fail
        // before any subscriber is installed.
        std::fs::create_dir_all(&dir).unwrap();
        let blocker = dir.join("blocker");
        std::fs::write(&blocker, "").unwrap();
        let e = init(&LogConfig {
            stdout: false,
            dir: Some(blocker.clone()),
        })
        .unwrap_err();
        assert!(e.contains("blocker"), "{e}");

        init(&LogConfig {
            stdout: false,
            dir: Some(nested.clone()),
        })
        .unwrap();
        // Error level passes any RUST_LOG a developer might have set, short of `off`.
        tracing::error!("logging-test-marker");
        let text = std::fs::read_to_string(nested.join(LOG_FILE)).unwrap();
        assert!(text.contains("logging-test-marker"), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour codes in files");

        let again = init(&LogConfig {
            stdout: true,
            dir: None,
        });
        assert!(again.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
