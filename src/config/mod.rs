//! Service configuration: the `discovery.toml` file, its defaults, and the start flags and
//! environment variables layered over it.
//!
//! Read once by the binary before anything starts; the rest of the service reads the
//! resulting [`Config`]. [`Config::load`] runs the steps in order, one file each:
//!
//! - `file` — every key, its default and its check (the schema's reader);
//! - `toml_walk` — matching keys the way the Go original does: case-insensitive, unknown keys
//!   reported and ignored;
//! - `units` — Go duration strings and byte sizes;
//! - `overrides` — [`Overrides`] from the flags, then environment variables, where the file
//!   leaves a value empty; the identity check;
//! - `env` — the environment variables and the system hostname.
//!
//! No I/O beyond reading the file, the environment and the hostname.

mod effective;
mod env;
mod file;
mod overrides;
mod toml_walk;
mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use overrides::Overrides;

use env::Vars;

/// Name of the config file looked up inside a `-conf` directory.
const FILE_NAME: &str = "discovery.toml";

/// Upper bound for `httpServer.threads` and `-threads`.
pub(crate) const MAX_THREADS: usize = 1024;

/// The embedded default used when no `-conf` is given: a single node on 127.0.0.1:7171.
const DEFAULT_TOML: &str = include_str!("../../configs/default.toml");

/// The whole service configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses of every node of this zone's cluster, this node included (`nodes`).
    pub(crate) nodes: Vec<String>,
    /// Other zones' node addresses by zone name (`[zones]`).
    pub(crate) zones: BTreeMap<String, Vec<String>>,
    /// Start in protect mode (`enableprotect`): reads are refused until a peer
    /// sync succeeds or `registry.protect_timeout` passes.
    pub(crate) enable_protect: bool,
    /// Where this node runs (`[env]`).
    pub(crate) env: EnvConfig,
    /// The HTTP listener (`[httpServer]`).
    pub http_server: HttpServerConfig,
    /// The client used to replicate to peer nodes (`[httpClient]`).
    pub(crate) http_client: HttpClientConfig,
    /// Log destinations (`[log]`).
    pub log: LogConfig,
    /// Registry timings (`[registry]`); defaults are the original's hard-coded values.
    pub(crate) registry: RegistryConfig,
    /// `[auth]`.
    pub(crate) auth: AuthConfig,
    /// `[cluster]`.
    pub(crate) cluster: ClusterConfig,
    /// `[limits]`.
    pub(crate) limits: LimitsConfig,
    /// Directory of the loaded file, where scheduler `*.json` files live; `None` for the embedded default.
    pub(crate) dir: Option<PathBuf>,
    /// Unknown keys met while loading. Loading happens before logging is set up,
    /// so the caller logs these once it is.
    pub warnings: Vec<String>,
}

/// Identity of this node (`[env]`).
#[derive(Debug, Clone)]
pub(crate) struct EnvConfig {
    /// Region (`region`, else `-region`, else `REGION`).
    pub(crate) region: String,
    /// Zone, usually a data centre (`zone`, else `-zone`, else `ZONE`).
    pub(crate) zone: String,
    /// Host name (`host`, else `HOSTNAME`, else the system hostname).
    pub(crate) host: String,
    /// Deployment environment such as `dev` or `prod` (`deployenv`, else `-deploy.env`, else
    /// `DEPLOY_ENV`).
    pub(crate) deploy_env: String,
}

/// HTTP listener settings (`[httpServer]`).
#[derive(Debug, Clone)]
pub struct HttpServerConfig {
    /// Listen address `ip:port` (`addr`); also how peers reach this node.
    pub addr: SocketAddr,
    /// The original's request time limit (`timeout`, default 40s). Parsed and validated for
    /// compatibility; this server bounds requests with `idle_timeout`, `header_timeout` and
    /// `registry.poll_hold` instead.
    #[allow(dead_code, reason = "only read by tests: the key is checked, not used")]
    pub(crate) timeout: Duration,
    /// Worker threads (`threads`, replaced by `-threads`); 0 means one per core.
    pub threads: usize,
    /// Largest accepted request body in bytes (`maxBody`, default 1 MiB).
    pub(crate) max_body_bytes: usize,
    /// How long an idle keep-alive connection is kept (`idleTimeout`, default 90s).
    pub(crate) idle_timeout: Duration,
    /// How long a client may take to send a whole request once its first byte arrived, head
    /// and body (`headerTimeout`, default 10s).
    pub(crate) header_timeout: Duration,
    /// A client that reads nothing of an answer for this long is disconnected (`writeTimeout`,
    /// default 30s).
    pub(crate) write_timeout: Duration,
    /// Open client connections, all cores together (`maxConns`, default 200000); more are
    /// answered 503 and closed.
    pub(crate) max_conns: usize,
    /// Open client connections from one source address (`maxConnsPerIp`, default 30000).
    pub(crate) max_conns_per_ip: usize,
    /// Long polls parked at once, all cores together (`maxParkedPolls`, default 200000); a
    /// poll beyond it is answered 503 instead of parking.
    pub(crate) max_parked_polls: usize,
    /// The I/O driver (`driver`: "auto", "io_uring" or "epoll"; default auto).
    pub(crate) driver: Driver,
}

/// The I/O driver the runtimes use (`[httpServer] driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// io_uring where the kernel allows it, else epoll (monoio's fusion driver).
    Auto,
    /// io_uring only: the node does not start where it is refused.
    IoUring,
    /// epoll only (what container runtimes' default seccomp profiles leave).
    Epoll,
}

impl Driver {
    /// The name the config and the logs use.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Auto => "auto",
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

/// Client used to replicate to peer nodes (`[httpClient]`).
#[derive(Debug, Clone)]
pub(crate) struct HttpClientConfig {
    /// Connect timeout (`dial`, default 1s).
    pub(crate) dial: Duration,
    /// The original's idle-connection lifetime (`keepAlive`, default 60s). Parsed for
    /// compatibility; a peer connection here stays open until it fails.
    #[allow(dead_code, reason = "only read by tests: the key is checked, not used")]
    pub(crate) keep_alive: Duration,
    /// Whole-request timeout (`timeout`, default 1s).
    pub(crate) timeout: Duration,
}

/// Log destinations (`[log]`).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Log to standard output (`stdout`, default true).
    pub(crate) stdout: bool,
    /// Also append to `<dir>/discovery.log` (`dir`, relative to the config file's directory;
    /// else `-log.dir`, else `LOG_DIR`, both used as given).
    pub(crate) dir: Option<PathBuf>,
    /// How lines are written (`format`: "text", the default, or "json": one object a line).
    pub(crate) format: LogFormat,
}

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// The name the config file uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Registry timings (`[registry]`), an extension of ours.
#[derive(Debug, Clone)]
pub(crate) struct RegistryConfig {
    /// How long a long poll is held before answering "not modified" (`pollHold`, default 30s).
    pub(crate) poll_hold: Duration,
    /// How often expired instances are evicted (`evictInterval`, default 60s). Renews are
    /// counted for self-preservation per window of the same length, as in the original.
    pub(crate) evict_interval: Duration,
    /// An instance not renewed for this long is evicted (`evictAfter`, default 90s).
    pub(crate) evict_after: Duration,
    /// The same while self-preservation is on (`evictAfterProtected`, default 3600s).
    pub(crate) evict_after_protected: Duration,
    /// How often the expected renew count is recomputed (`guardRecount`, default 15m).
    pub(crate) guard_recount: Duration,
    /// Protect mode (see [`Config::enable_protect`]) ends after this long at most (`protectTimeout`, default 60s).
    pub(crate) protect_timeout: Duration,
    /// How often this node renews its own `infra.discovery` instance (`selfRenewInterval`, default 30s).
    pub(crate) self_renew_interval: Duration,
    /// How often scheduler `*.json` files are checked for changes (`schedulerReload`, default 5s).
    pub(crate) scheduler_reload: Duration,
    /// Timestamps a request or a peer sends may be at most this far ahead of this node's
    /// clock (`maxClockSkew`, default 5m).
    pub(crate) max_clock_skew: Duration,
    /// Where the registry is saved for a warm restart (`snapshot`, relative to the config
    /// file's directory; off by default, on in the embedded default).
    pub(crate) snapshot: Option<PathBuf>,
    /// How often it is saved (`snapshotInterval`, default 30s), and at a graceful stop.
    pub(crate) snapshot_interval: Duration,
}

/// Who may do what (`[auth]`), an extension of ours; see `docs/SECURITY.md`. Every field
/// empty means the Go-compatible default: peer-only actions from known peers' addresses only,
/// everything else open.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthConfig {
    /// Sent by our nodes on every peer call and required for peer-only actions (`peerToken`).
    pub(crate) peer_token: Option<String>,
    /// Source addresses admitted to peer-only actions without a token, for Go nodes
    /// (`peerAddrs`, CIDRs). `None` when the key is absent.
    pub(crate) peer_addrs: Option<Vec<ipnet::IpNet>>,
    /// Required for register, renew, cancel and set (`writeToken`).
    pub(crate) write_token: Option<String>,
    /// Source addresses admitted to writes without the write token (`writeFrom`, CIDRs).
    pub(crate) write_from: Vec<ipnet::IpNet>,
    /// Required for set, `fetch/all` and `/metrics` (`adminToken`).
    pub(crate) admin_token: Option<String>,
    /// Required for fetch, fetchs, poll, polls and nodes (`readToken`).
    pub(crate) read_token: Option<String>,
}

impl AuthConfig {
    /// True when any `[auth]` key is set.
    pub(crate) fn is_configured(&self) -> bool {
        self.peer_token.is_some()
            || self.peer_addrs.is_some()
            || self.write_token.is_some()
            || !self.write_from.is_empty()
            || self.admin_token.is_some()
            || self.read_token.is_some()
    }
}

/// Size limits of messages (`[limits]`), an extension of ours; see `wire::Limits`.
#[derive(Debug, Clone)]
pub(crate) struct LimitsConfig {
    /// Apps named by one fetchs or polls (`maxAppids`, default 10000).
    pub(crate) max_appids: usize,
    /// Addresses of one instance (`maxAddrs`, default 64).
    pub(crate) max_addrs: usize,
    /// An instance's metadata keys and values, in bytes (`maxMetadataBytes`, default 64KiB).
    pub(crate) max_metadata_bytes: usize,
    /// An instance's metadata keys (`maxMetadataKeys`, default 256).
    pub(crate) max_metadata_keys: usize,
    /// Lines of one replicate batch (`maxBatchLines`, default 1024).
    pub(crate) max_batch_lines: usize,
}

/// Cluster limits (`[cluster]`), an extension of ours.
#[derive(Debug, Clone)]
pub(crate) struct ClusterConfig {
    /// Most peers the node keeps, seeds first (`maxPeers`, default 64).
    pub(crate) max_peers: usize,
}

/// A config that cannot be used; the message names the file (when there is one) and the key.
#[derive(Debug)]
pub struct ConfigError {
    file: Option<PathBuf>,
    message: String,
}

impl ConfigError {
    fn new(message: String) -> ConfigError {
        ConfigError {
            file: None,
            message,
        }
    }

    fn key(key: &str, problem: impl fmt::Display) -> ConfigError {
        ConfigError::new(format!("key `{key}`: {problem}"))
    }

    fn in_file(mut self, file: &Path) -> ConfigError {
        self.file = Some(file.to_path_buf());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "config {}: {}", file.display(), self.message),
            None => write!(f, "config: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads `path`, a directory (reads `<dir>/discovery.toml`) or a file, or the embedded
    /// default for `None`; then layers `overrides` and the process environment over it.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::load_with(path, overrides, &env::process_var)
    }

    /// [`Config::load`] reading environment variables from `vars`.
    fn load_with(
        path: Option<&Path>,
        overrides: &Overrides,
        vars: Vars,
    ) -> Result<Config, ConfigError> {
        let read = |text: &str, dir: Option<PathBuf>| {
            let mut config = file::parse(text, dir)?;
            // Last, so that a bad value in the file is reported before a missing identity.
            overrides::apply(&mut config, overrides, vars)?;
            Ok::<_, ConfigError>(config)
        };
        let Some(path) = path else {
            return read(DEFAULT_TOML, None)
                .map_err(|e| ConfigError::new(format!("embedded default: {}", e.message)));
        };
        let (file, dir) = if path.is_dir() {
            (path.join(FILE_NAME), path.to_path_buf())
        } else {
            // `-conf discovery.toml` has an empty parent; it means the working directory.
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (path.to_path_buf(), parent)
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| ConfigError::new(format!("cannot read: {e}")).in_file(&file))?;
        read(&text, Some(dir)).map_err(|e| e.in_file(&file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid file plus `extra`, with `[env]` complete as a deployment has it.
    fn with_env(extra: &str) -> String {
        format!("[env]\nzone = \"z1\"\nhost = \"h1\"\ndeployenv = \"dev\"\n{extra}")
    }

    #[test]
    fn embedded_default_loads() {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(c.nodes, ["127.0.0.1:7171"]);
        assert_eq!(c.http_server.addr, "127.0.0.1:7171".parse().unwrap());
        assert_eq!(c.env.zone, "sh001");
        assert_eq!(c.env.deploy_env, "dev");
        assert!(!c.env.host.is_empty());
        assert_eq!(c.dir, None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "discovery-config-{tag}-{}-{}",
                std::process::id(),
                std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos()
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_from_dir_or_file() {
        let tmp = TempDir::new("load");
        let text = with_env("[log]\ndir = \"logs\"\n");
        std::fs::write(tmp.0.join(FILE_NAME), &text).unwrap();
        std::fs::write(tmp.0.join("other.toml"), &text).unwrap();

        let c = Config::load(Some(&tmp.0), &Overrides::default()).unwrap();
        assert_eq!(c.dir.as_deref(), Some(tmp.0.as_path()));
        assert_eq!(c.log.dir, Some(tmp.0.join("logs")));

        let c = Config::load(Some(&tmp.0.join("other.toml")), &Overrides::default()).unwrap();
        assert_eq!(c.dir.as_deref(), Some(tmp.0.as_path()));

        let missing = tmp.0.join("nope");
        let e = Config::load(Some(&missing), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("cannot read"), "{e}");

        std::fs::write(tmp.0.join("bad.toml"), "[httpServer]\ntimeout = 40\n").unwrap();
        let e = Config::load(Some(&tmp.0.join("bad.toml")), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad.toml") && e.contains("`httpServer.timeout`"),
            "{e}"
        );

        let empty = TempDir::new("empty");
        let e = Config::load(Some(&empty.0), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(FILE_NAME), "{e}");
    }

    #[test]
    fn load_layers_flags_and_variables_over_the_file() {
        let tmp = TempDir::new("layers");
        let text = "[env]\nzone = \"file-z\"\n[httpServer]\nthreads = 2\n";
        std::fs::write(tmp.0.join(FILE_NAME), text).unwrap();
        let flags = Overrides {
            zone: Some("flag-z".into()),
            region: Some("flag-r".into()),
            threads: Some(6),
            log_dir: Some(PathBuf::from("flag/log")),
            ..Overrides::default()
        };
        let vars = |name: &str| match name {
            "REGION" => Some("env-r".into()),
            "DEPLOY_ENV" => Some("env-d".into()),
            "HOSTNAME" => Some("env-h".into()),
            "LOG_DIR" => Some("env/log".into()),
            _ => None,
        };
        let c = Config::load_with(Some(&tmp.0), &flags, &vars).unwrap();
        let e = &c.env;
        assert_eq!(
            [&e.region, &e.zone, &e.host, &e.deploy_env],
            ["flag-r", "file-z", "env-h", "env-d"]
        );
        assert_eq!(c.http_server.threads, 6);
        assert_eq!(c.log.dir, Some(PathBuf::from("flag/log")));

        // The embedded default names region, zone and DeployEnv, which win over the flags.
        let c = Config::load_with(None, &flags, &vars).unwrap();
        let e = &c.env;
        assert_eq!(
            [&e.region, &e.zone, &e.host, &e.deploy_env],
            ["sh", "sh001", "env-h", "dev"]
        );
        assert_eq!(c.log.dir, Some(PathBuf::from("flag/log")));
    }

    #[test]
    fn a_bad_value_is_reported_before_a_missing_identity() {
        let tmp = TempDir::new("order");
        let file = tmp.0.join("x.toml");
        std::fs::write(&file, "[registry]\npollHold = \"soon\"\n").unwrap();
        let none = |_: &str| None;
        let e = Config::load_with(Some(&file), &Overrides::default(), &none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml") && e.contains("`registry.pollHold`"),
            "{e}"
        );

        std::fs::write(&file, "").unwrap();
        let e = Config::load_with(Some(&file), &Overrides::default(), &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml") && e.contains("ZONE is not set"), "{e}");
    }

    #[test]
    fn embedded_default_takes_host_from_the_environment() {
        let vars = |name: &str| (name == "HOSTNAME").then(|| "h".into());
        let c = Config::load_with(None, &Overrides::default(), &vars).unwrap();
        assert_eq!(c.env.host, "h");
    }
}
