//! A panic ends the whole process with a log line, never one core thread alone: the hook the
//! binary installs (`logging::abort_on_panic`) is exercised in a child process that panics on a
//! spawned thread, as a core would; and the release profile aborts on panic.

use std::process::Command;

/// Set in the child: install the hook, then panic on a named thread.
const CHILD: &str = "DISCOVERY_PANIC_TEST_CHILD";

#[test]
fn a_panic_on_any_thread_aborts_the_process_with_a_log_line() {
    if std::env::var_os(CHILD).is_some() {
        discovery::logging::abort_on_panic();
        let core = std::thread::Builder::new()
            .name("core-3".into())
            .spawn(|| panic!("boom in a core"))
            .unwrap();
        // Without the hook the join would report the panic and the process would go on.
        let _ = core.join();
        std::process::exit(0);
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new(me)
        .args([
            "--exact",
            "a_panic_on_any_thread_aborts_the_process_with_a_log_line",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "the child must abort, not exit: {:?}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(discovery::logging::PANIC_LINE)
            && stderr.contains("core-3")
            && stderr.contains("boom in a core"),
        "{stderr}"
    );
}

#[test]
fn the_release_profile_aborts_on_panic() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let manifest: toml::Table = manifest.parse().unwrap();
    let panic = &manifest["profile"]["release"]["panic"];
    assert_eq!(panic.as_str(), Some("abort"));
}
