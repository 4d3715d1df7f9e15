//! Process-wide logging set-up, called once by the binary after the config is loaded.
//!
//! Owns the `tracing` subscriber: the `RUST_LOG` filter, the destinations
//! chosen by `[log]` (standard output and/or `<dir>/discovery.log`) and their format (text, or
//! one JSON object a line with `format = "json"`).

use std::fs::{File, OpenOptions};
use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};

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
    let json = log.format == LogFormat::Json;
    // A service that logs nowhere hides its failures, so with neither
    // destination configured stdout is used anyway.
    let stdout = (log.stdout || file.is_none()).then(|| {
        let layer = tracing_subscriber::fmt::layer();
        if json {
            layer.json().boxed()
        } else {
            // Colour codes only help a terminal; they garble journald and `docker logs`.
            layer.with_ansi(std::io::stdout().is_terminal()).boxed()
        }
    });
    let file = file.map(|f| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(Mutex::new(f));
        if json {
            layer.json().boxed()
        } else {
            layer.boxed()
        }
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
            format: LogFormat::Json,
        })
        .unwrap_err();
        assert!(e.contains("blocker"), "{e}");

        init(&LogConfig {
            stdout: false,
            dir: Some(nested.clone()),
            format: LogFormat::Json,
        })
        .unwrap();
        // Error level passes any RUST_LOG a developer might have set, short of `off`.
        tracing::error!(peer = "p1", "logging-test-marker");
        let text = std::fs::read_to_string(nested.join(LOG_FILE)).unwrap();
        assert!(text.contains("logging-test-marker"), "{text}");
        // One JSON object per line, with the event's fields.
        let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(line["level"], "ERROR", "{text}");
        assert_eq!(line["fields"]["peer"], "p1", "{text}");
        assert!(!text.contains('\u{1b}'), "no colour codes in files");

        let again = init(&LogConfig {
            stdout: true,
            dir: None,
            format: LogFormat::Text,
        });
        assert!(again.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
