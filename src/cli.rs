//! Command-line parsing for the `discovery` binary.
//!
//! Owns the flag syntax and the `--help` text. It accepts Go's single-dash
//! long flags (`-conf dir`) so existing start scripts of the Go original keep
//! working, as well as GNU double-dash spellings. Hand-rolled because clap
//! cannot parse single-dash long flags.

use std::path::PathBuf;

use crate::config::MAX_THREADS;

/// Settings given on the command line for a normal run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// `-conf`: config directory (holding `discovery.toml`) or file; `None` uses the embedded default.
    pub conf: Option<PathBuf>,
    /// `-threads`: overrides `httpServer.threads`.
    pub threads: Option<usize>,
    /// The Go original's (kratos) identity flags `-region`, `-zone`, `-deploy.env`: like the
    /// `REGION`, `ZONE`, `DEPLOY_ENV` variables, used where the config leaves `[env]` empty.
    pub region: Option<String>,
    pub zone: Option<String>,
    pub deploy_env: Option<String>,
    /// `-log.dir`: like `LOG_DIR`, used where the config has no `[log] dir`.
    pub log_dir: Option<PathBuf>,
    /// Flags of the Go original that have no effect here (accepted so its start scripts run).
    pub ignored: Vec<String>,
}

/// Flags of the Go original (kratos) that take a value and have no meaning here.
const IGNORED_VALUE_FLAGS: &[&str] = &[
    "appid",
    "deploy.color",
    "discovery.nodes",
    "log.v",
    "log.agent",
    "log.module",
    "log.filter",
];

/// Boolean flags of the Go original with no meaning here (`-name` or `-name=bool`).
const IGNORED_BOOL_FLAGS: &[&str] = &["log.stdout", "log.noagent"];

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the service.
    Run(Flags),
    /// Print [`HELP`] and exit.
    Help,
    /// Print the version and exit.
    Version,
}

/// The `--help` text.
pub const HELP: &str = "\
discovery - service registry, a drop-in replacement for bilibili/discovery

USAGE:
    discovery [-conf <path>] [-threads <n>]

FLAGS (one or two leading dashes; the value may follow a space or `=`):
    -conf <path>      Config directory containing discovery.toml, or a config file.
                      Scheduler files (*.json) in the same directory are loaded
                      and reloaded when they change.
    -confkey <name>   File name inside the -conf directory (default discovery.toml);
                      accepted for compatibility with the Go original's scripts.
    -threads <n>      Worker threads, 0 = one per core (overrides httpServer.threads;
                      at most 1024).
    -region <r>, -zone <z>, -deploy.env <e>
                      The Go original's identity flags: used for [env] region, zone and
                      DeployEnv where the config leaves them empty (before REGION, ZONE,
                      DEPLOY_ENV).
    -log.dir <dir>    Log to <dir>/discovery.log where the config has no [log] dir
                      (before LOG_DIR).
    -log.v, -log.stdout, -log.agent, -log.module, -log.filter, -log.noagent,
    -appid, -deploy.color, -discovery.nodes
                      Accepted so the Go original's start scripts run; no effect here
                      (a warning is logged).
    -h, -help, --help
                      Print this help and exit.
    -V, -version, --version
                      Print the version and exit.

Without -conf the embedded default is used: a single node on 127.0.0.1:7171,
region sh, zone sh001, DeployEnv dev.

ENVIRONMENT:
    REGION, ZONE, DEPLOY_ENV, HOSTNAME
                      Used for [env] region, zone, DeployEnv and host when the config
                      leaves them empty (host falls back to the system hostname).
    LOG_DIR           Log directory where the config and -log.dir give none.
    RUST_LOG          Log filter, e.g. `debug` or `discovery=debug` (default: info);
                      `info,access=debug` adds one access-log line per request.
    MONOIO_FORCE_LEGACY_DRIVER=1
                      Use epoll instead of io_uring.

SIGNALS:
    SIGTERM, SIGINT   Graceful shutdown: stop accepting connections, answer parked
                      long polls, cancel this node's own infra.discovery
                      registration, then exit with status 0.

NOTES:
    Every client long-polls over its own connection; raise the open file limit
    (`ulimit -n`) accordingly for large deployments.
";

/// Parses the arguments, without the program name.
///
/// `-h`/`-V` win as soon as they are seen, like Go's `flag` package stops at `-h`.
/// A repeated flag keeps its last value.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut flags = Flags {
        conf: None,
        threads: None,
        region: None,
        zone: None,
        deploy_env: None,
        log_dir: None,
        ignored: Vec::new(),
    };
    let mut conf_key: Option<String> = None;
    while let Some(arg) = args.next() {
        let name = match arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) {
            Some(name) if !name.is_empty() => name,
            _ => return Err(format!("unexpected argument {arg:?}; see --help")),
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        match name {
            "h" | "help" if inline.is_none() => return Ok(Command::Help),
            "V" | "version" if inline.is_none() => return Ok(Command::Version),
            "conf" | "confkey" | "threads" | "region" | "zone" | "deploy.env" | "log.dir" => {}
            // Go's bool flags take no separate value: `-log.stdout` or `-log.stdout=false`.
            n if IGNORED_BOOL_FLAGS.contains(&n) => {
                flags.ignored.push(arg.clone());
                continue;
            }
            n if IGNORED_VALUE_FLAGS.contains(&n) => {}
            _ => return Err(format!("unknown flag {arg:?}; see --help")),
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) if !v.is_empty() => v,
            _ => return Err(format!("flag -{name} needs a value; see --help")),
        };
        match name {
            "conf" => flags.conf = Some(PathBuf::from(value)),
            "confkey" => conf_key = Some(value),
            "region" => flags.region = Some(value),
            "zone" => flags.zone = Some(value),
            "deploy.env" => flags.deploy_env = Some(value),
            "log.dir" => flags.log_dir = Some(PathBuf::from(value)),
            n if IGNORED_VALUE_FLAGS.contains(&n) => flags.ignored.push(format!("-{n}={value}")),
            _ => {
                let n: usize = value
                    .parse()
                    .ok()
                    .filter(|&n| n <= MAX_THREADS)
                    .ok_or_else(|| {
                        format!("-threads wants a number from 0 to {MAX_THREADS}, got {value:?}; see --help")
                    })?;
                flags.threads = Some(n);
            }
        }
    }
    if let Some(key) = conf_key {
        match &mut flags.conf {
            Some(dir) => dir.push(key),
            None => return Err("-confkey needs -conf <directory>; see --help".to_string()),
        }
    }
    Ok(Command::Run(flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    fn flags(conf: Option<&str>, threads: Option<usize>) -> Command {
        Command::Run(Flags {
            conf: conf.map(PathBuf::from),
            threads,
            region: None,
            zone: None,
            deploy_env: None,
            log_dir: None,
            ignored: Vec::new(),
        })
    }

    #[test]
    fn the_go_originals_start_lines_run() {
        // From the original's Makefile and Dockerfile.
        let Ok(Command::Run(f)) = run(&[
            "-conf",
            "dist/conf",
            "-confkey",
            "discovery.toml",
            "-log.dir",
            "dist/log",
        ]) else {
            panic!("Makefile line refused");
        };
        assert_eq!(f.conf, Some(PathBuf::from("dist/conf/discovery.toml")));
        assert_eq!(f.log_dir, Some(PathBuf::from("dist/log")));
        let Ok(Command::Run(f)) = run(&[
            "-zone=sh002",
            "-region",
            "sh",
            "-deploy.env",
            "prod",
            "-log.stdout",
            "-log.v",
            "3",
            "-log.noagent=true",
            "-appid",
            "infra.discovery",
        ]) else {
            panic!("kratos flags refused");
        };
        assert_eq!(
            (
                f.zone.as_deref(),
                f.region.as_deref(),
                f.deploy_env.as_deref()
            ),
            (Some("sh002"), Some("sh"), Some("prod"))
        );
        assert_eq!(
            f.ignored,
            [
                "-log.stdout",
                "-log.v=3",
                "-log.noagent=true",
                "-appid=infra.discovery"
            ]
        );
        assert!(run(&["-log.dir"]).is_err());
    }

    #[test]
    fn no_arguments() {
        assert_eq!(run(&[]), Ok(flags(None, None)));
    }

    #[test]
    fn conf_spellings() {
        for args in [
            &["-conf", "etc/d"][..],
            &["-conf=etc/d"],
            &["--conf", "etc/d"],
            &["--conf=etc/d"],
        ] {
            assert_eq!(run(args), Ok(flags(Some("etc/d"), None)), "{args:?}");
        }
    }

    #[test]
    fn threads_spellings() {
        for args in [
            &["-threads", "4"][..],
            &["-threads=4"],
            &["--threads", "4"],
            &["--threads=4"],
        ] {
            assert_eq!(run(args), Ok(flags(None, Some(4))), "{args:?}");
        }
        assert_eq!(run(&["-threads", "0"]), Ok(flags(None, Some(0))));
        assert_eq!(run(&["-threads", "1024"]), Ok(flags(None, Some(1024))));
    }

    #[test]
    fn combined_and_repeated() {
        assert_eq!(
            run(&["--threads=2", "-conf", "a", "-conf=b"]),
            Ok(flags(Some("b"), Some(2)))
        );
        // A value may itself contain `=`.
        assert_eq!(run(&["-conf=a=b"]), Ok(flags(Some("a=b"), None)));
    }

    #[test]
    fn confkey_names_the_file_in_the_conf_dir() {
        assert_eq!(
            run(&["-conf", "deploy/conf/", "-confkey", "discovery.toml"]),
            Ok(flags(Some("deploy/conf/discovery.toml"), None))
        );
        assert!(run(&["-confkey", "x.toml"]).unwrap_err().contains("-conf"));
    }

    #[test]
    fn help_and_version() {
        for a in ["-h", "--help", "-help"] {
            assert_eq!(run(&[a]), Ok(Command::Help), "{a}");
        }
        for a in ["-V", "--version", "-version"] {
            assert_eq!(run(&[a]), Ok(Command::Version), "{a}");
        }
        assert_eq!(run(&["-conf", "x", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn errors_point_to_help() {
        for args in [
            &["-config", "x"][..],
            &["--verbose"],
            &["-x"],
            &["-"],
            &["--"],
            &["positional"],
            &["-conf"],
            &["--conf="],
            &["-threads"],
            &["-threads", "many"],
            &["-threads", "-1"],
            &["-threads=1025"],
            &["-help=yes"],
            &["-H"],
        ] {
            let e = run(args).unwrap_err();
            assert!(e.contains("see --help"), "{args:?}: {e}");
        }
        assert!(run(&["-conf"]).unwrap_err().contains("-conf needs a value"));
        assert!(run(&["--bogus=1"]).unwrap_err().contains("--bogus=1"));
    }

    #[test]
    fn help_mentions_everything() {
        for word in [
            "-conf",
            "-threads",
            "--help",
            "--version",
            "127.0.0.1:7171",
            "REGION",
            "ZONE",
            "DEPLOY_ENV",
            "HOSTNAME",
            "RUST_LOG",
            "MONOIO_FORCE_LEGACY_DRIVER=1",
            "SIGTERM",
            "SIGINT",
            "ulimit -n",
            "infra.discovery",
        ] {
            assert!(HELP.contains(word), "{word}");
        }
    }
}
