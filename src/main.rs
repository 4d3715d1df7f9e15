//! The `discovery` binary: reads flags and configuration, binds the listeners, wires signals to
//! shutdown, and hands over to `node::run`.

use std::process::ExitCode;

use discovery::cli::{self, Command};
use discovery::config::{Config, Overrides};
use discovery::shutdown::Shutdown;
use discovery::{logging, net, node};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let flags = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(flags)) => flags,
        Ok(Command::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("discovery {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("discovery: {e}");
            return ExitCode::from(2);
        }
    };
    let overrides = Overrides {
        region: flags.region,
        zone: flags.zone,
        deploy_env: flags.deploy_env,
        threads: flags.threads,
        log_dir: flags.log_dir,
    };
    let config = match Config::load(flags.conf.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("discovery: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = logging::init(&config.log) {
        eprintln!("discovery: {e}");
        return ExitCode::FAILURE;
    }
    logging::abort_on_panic();
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    for f in &flags.ignored {
        tracing::warn!("flag {f} of the Go original has no effect here; ignored");
    }
    let threads = match config.http_server.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // Block the stop signals before any thread starts, so every thread inherits the mask and
    // only the signal thread below receives them.
    let signals = stop_signals();
    let listeners = match net::bind(config.http_server.addr, threads) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %config.http_server.addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut sig: libc::c_int = 0;
            // An interrupted wait (the process was stopped and continued) waits again.
            let rc = loop {
                // SAFETY: `signals` is an initialised set and `sig` a valid out pointer.
                let rc = unsafe { libc::sigwait(&signals, &mut sig) };
                if rc != libc::EINTR {
                    break rc;
                }
            };
            if rc == 0 {
                tracing::info!(signal = sig, "stop signal received");
            } else {
                tracing::error!(error = rc, "cannot wait for stop signals; stopping");
            }
            trigger.trigger();
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the signal thread");
        return ExitCode::FAILURE;
    }
    match node::run(config, listeners, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread and returns the set, for `sigwait`.
fn stop_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set calls on a zeroed, then initialised, local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}
