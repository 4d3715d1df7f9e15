//! Service configuration: the `discovery.toml` file and its defaults.
//!
//! This module owns reading the TOML file named by `-conf` (or the embedded
//! default), matching its keys the way the Go original does (case-insensitive,
//! unknown keys ignored), filling `[env]` from environment variables and
//! validating the values the rest of the service relies on. It performs no I/O
//! beyond reading the file and asking the system for its hostname.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

/// Name of the config file looked up inside a `-conf` directory.
pub const FILE_NAME: &str = "discovery.toml";

/// Upper bound for `httpServer.threads` and `--threads`.
pub const MAX_THREADS: usize = 1024;

/// Smallest accepted `httpServer.maxBody`: registrations with metadata need room.
pub const MIN_BODY_BYTES: usize = 1024;

/// The embedded default used when no `-conf` is given: a single node on 127.0.0.1:7171.
const DEFAULT_TOML: &str = include_str!("../configs/default.toml");

/// The whole service configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses of every node of this zone's cluster, this node included (`nodes`).
    pub nodes: Vec<String>,
    /// Other zones' node addresses by zone name (`[zones]`).
    pub zones: BTreeMap<String, Vec<String>>,
    /// Start in protect mode (`enableprotect`): reads are refused until a peer
    /// sync succeeds or `registry.protect_timeout` passes.
    pub enable_protect: bool,
    /// Where this node runs (`[env]`).
    pub env: EnvConfig,
    /// The HTTP listener (`[httpServer]`).
    pub http_server: HttpServerConfig,
    /// The client used to replicate to peer nodes (`[httpClient]`).
    pub http_client: HttpClientConfig,
    /// Log destinations (`[log]`).
    pub log: LogConfig,
    /// Registry timings (`[registry]`); defaults are the original's hard-coded values.
    pub registry: RegistryConfig,
    /// Directory of the loaded file, where scheduler `*.json` files live; `None` for the embedded default.
    pub dir: Option<PathBuf>,
    /// Unknown keys met while loading. Loading happens before logging is set up,
    /// so the caller logs these once it is.
    pub warnings: Vec<String>,
}

/// Identity of this node (`[env]`).
#[derive(Debug, Clone)]
pub struct EnvConfig {
    /// Region (`region`, else `REGION`).
    pub region: String,
    /// Zone, usually a data centre (`zone`, else `ZONE`).
    pub zone: String,
    /// Host name (`host`, else `HOSTNAME`, else the system hostname).
    pub host: String,
    /// Deployment environment such as `dev` or `prod` (`deployenv`, else `DEPLOY_ENV`).
    pub deploy_env: String,
}

/// HTTP listener settings (`[httpServer]`).
#[derive(Debug, Clone)]
pub struct HttpServerConfig {
    /// Listen address `ip:port` (`addr`); also how peers reach this node.
    pub addr: SocketAddr,
    /// The original's request time limit (`timeout`, default 40s). Parsed and validated for
    /// compatibility; this server bounds requests with `idle_timeout`, `header_timeout` and
    /// `registry.poll_hold` instead.
    pub timeout: Duration,
    /// Worker threads (`threads`); 0 means one per core.
    pub threads: usize,
    /// Largest accepted request body in bytes (`maxBody`, default 1 MiB).
    pub max_body_bytes: usize,
    /// How long an idle keep-alive connection is kept (`idleTimeout`, default 90s).
    pub idle_timeout: Duration,
    /// How long a client may take to send a whole request once its first byte arrived, head
    /// and body (`headerTimeout`, default 10s).
    pub header_timeout: Duration,
}

/// Client used to replicate to peer nodes (`[httpClient]`).
#[derive(Debug, Clone)]
pub struct HttpClientConfig {
    /// Connect timeout (`dial`, default 1s).
    pub dial: Duration,
    /// The original's idle-connection lifetime (`keepAlive`, default 60s). Parsed for
    /// compatibility; a peer connection here stays open until it fails.
    pub keep_alive: Duration,
    /// Whole-request timeout (`timeout`, default 1s).
    pub timeout: Duration,
}

/// Log destinations (`[log]`).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Log to standard output (`stdout`, default true).
    pub stdout: bool,
    /// Also append to `<dir>/discovery.log` (`dir`); relative to the config file's directory.
    pub dir: Option<PathBuf>,
}

/// Registry timings (`[registry]`), an extension of ours.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// How long a long poll is held before answering "not modified" (`pollHold`, default 30s).
    pub poll_hold: Duration,
    /// How often expired instances are evicted (`evictInterval`, default 60s). Renews are
    /// counted for self-preservation per window of the same length, as in the original.
    pub evict_interval: Duration,
    /// An instance not renewed for this long is evicted (`evictAfter`, default 90s).
    pub evict_after: Duration,
    /// The same while self-preservation is on (`evictAfterProtected`, default 3600s).
    pub evict_after_protected: Duration,
    /// How often the expected renew count is recomputed (`guardRecount`, default 15m).
    pub guard_recount: Duration,
    /// Protect mode (see [`Config::enable_protect`]) ends after this long at most (`protectTimeout`, default 60s).
    pub protect_timeout: Duration,
    /// How often this node renews its own `infra.discovery` instance (`selfRenewInterval`, default 30s).
    pub self_renew_interval: Duration,
    /// How often scheduler `*.json` files are checked for changes (`schedulerReload`, default 5s).
    pub scheduler_reload: Duration,
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
    /// Loads `path`: a directory (reads `<dir>/discovery.toml`) or a file.
    /// `None` loads the embedded default.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Config::from_toml(DEFAULT_TOML, None)
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
        Config::from_toml(&text, Some(dir)).map_err(|e| e.in_file(&file))
    }

    /// Parses TOML text; `dir` is recorded as [`Config::dir`] and anchors a relative `log.dir`.
    pub fn from_toml(text: &str, dir: Option<PathBuf>) -> Result<Config, ConfigError> {
        parse(text, dir, &|name| std::env::var(name).ok())
    }
}

/// Parses and validates; `lookup` reads environment variables so tests need not touch the process's.
fn parse(
    text: &str,
    dir: Option<PathBuf>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let table: Table = text
        .parse()
        .map_err(|e| ConfigError::new(format!("invalid TOML: {e}")))?;
    let mut warnings = Vec::new();
    let mut top = Section::new(String::new(), table)?;

    let nodes = top.get("nodes", as_strings)?.unwrap_or_default();
    let zones = top.get("zones", as_zones)?.unwrap_or_default();
    let enable_protect = top.get("enableprotect", as_bool)?.unwrap_or(false);

    let mut s = top.section("env")?;
    let mut env = EnvConfig {
        region: s.get("region", as_string)?.unwrap_or_default(),
        zone: s.get("zone", as_string)?.unwrap_or_default(),
        host: s.get("host", as_string)?.unwrap_or_default(),
        deploy_env: s.get("deployenv", as_string)?.unwrap_or_default(),
    };
    s.finish(&mut warnings);

    let mut s = top.section("httpserver")?;
    let http_server = HttpServerConfig {
        addr: s
            .get("addr", as_socket_addr)?
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7171))),
        timeout: s.get("timeout", as_duration)?.unwrap_or(secs(40)),
        threads: s.get("threads", as_threads)?.unwrap_or(0),
        max_body_bytes: s.get("maxbody", as_body_size)?.unwrap_or(1 << 20),
        idle_timeout: s.get("idletimeout", as_duration)?.unwrap_or(secs(90)),
        header_timeout: s.get("headertimeout", as_duration)?.unwrap_or(secs(10)),
    };
    s.finish(&mut warnings);

    let mut s = top.section("httpclient")?;
    let http_client = HttpClientConfig {
        dial: s.get("dial", as_duration)?.unwrap_or(secs(1)),
        keep_alive: s.get("keepalive", as_duration)?.unwrap_or(secs(60)),
        timeout: s.get("timeout", as_duration)?.unwrap_or(secs(1)),
    };
    s.finish(&mut warnings);

    let mut s = top.section("log")?;
    let log = LogConfig {
        stdout: s.get("stdout", as_bool)?.unwrap_or(true),
        dir: s
            .get("dir", as_string)?
            .filter(|d| !d.is_empty())
            .map(|d| match &dir {
                Some(base) => base.join(d),
                None => PathBuf::from(d),
            }),
    };
    s.finish(&mut warnings);

    let mut s = top.section("registry")?;
    let registry = RegistryConfig {
        poll_hold: s.get("pollhold", as_duration)?.unwrap_or(secs(30)),
        evict_interval: s.get("evictinterval", as_period)?.unwrap_or(secs(60)),
        evict_after: s.get("evictafter", as_duration)?.unwrap_or(secs(90)),
        evict_after_protected: s
            .get("evictafterprotected", as_duration)?
            .unwrap_or(secs(3600)),
        guard_recount: s.get("guardrecount", as_period)?.unwrap_or(secs(15 * 60)),
        protect_timeout: s.get("protecttimeout", as_duration)?.unwrap_or(secs(60)),
        self_renew_interval: s.get("selfrenewinterval", as_period)?.unwrap_or(secs(30)),
        scheduler_reload: s.get("schedulerreload", as_period)?.unwrap_or(secs(5)),
    };
    s.finish(&mut warnings);
    top.finish(&mut warnings);
    // Last, so that a mistyped key is reported before a missing identity.
    fill_env(&mut env, lookup)?;

    Ok(Config {
        nodes,
        zones,
        enable_protect,
        env,
        http_server,
        http_client,
        log,
        registry,
        dir,
        warnings,
    })
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Fills empty `[env]` fields from the environment as the original does, then
/// insists on the fields the registry cannot work without.
fn fill_env(
    env: &mut EnvConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
    if env.region.is_empty() {
        env.region = var("REGION").unwrap_or_default();
    }
    if env.zone.is_empty() {
        env.zone = var("ZONE").unwrap_or_default();
    }
    if env.deploy_env.is_empty() {
        env.deploy_env = var("DEPLOY_ENV").unwrap_or_default();
    }
    if env.host.is_empty() {
        env.host = var("HOSTNAME").or_else(system_hostname).unwrap_or_default();
    }
    for (key, var, value) in [
        ("env.zone", "ZONE", &env.zone),
        ("env.DeployEnv", "DEPLOY_ENV", &env.deploy_env),
        ("env.host", "HOSTNAME", &env.host),
    ] {
        if value.is_empty() {
            return Err(ConfigError::key(
                key,
                format!("empty, and {var} is not set"),
            ));
        }
    }
    Ok(())
}

/// The kernel's hostname, the last resort for `env.host`.
fn system_hostname() -> Option<String> {
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

/// One TOML table whose keys are matched case-insensitively, like the Go
/// decoder does; keys are removed as they are read so the rest can be reported.
struct Section {
    /// The table's key path as the user spelled it; empty at top level.
    path: String,
    /// Lower-cased key → (key as written, value).
    entries: BTreeMap<String, (String, Value)>,
}

impl Section {
    fn new(path: String, table: Table) -> Result<Section, ConfigError> {
        let mut entries: BTreeMap<String, (String, Value)> = BTreeMap::new();
        for (key, value) in table {
            let lower = key.to_lowercase();
            // Go would pick one of the two at random (map order), so refuse instead.
            if let Some((first, _)) = entries.get(&lower) {
                return Err(ConfigError::new(format!(
                    "keys `{}` and `{}` are the same key (keys ignore case)",
                    join_key(&path, first),
                    join_key(&path, &key)
                )));
            }
            entries.insert(lower, (key, value));
        }
        Ok(Section { path, entries })
    }

    /// Removes `name` (lower case) and converts its value; a failure names the key as written.
    fn get<T>(
        &mut self,
        name: &str,
        convert: fn(Value) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((key, value)) = self.entries.remove(name) else {
            return Ok(None);
        };
        convert(value)
            .map(Some)
            .map_err(|e| ConfigError::key(&join_key(&self.path, &key), e))
    }

    /// Removes the sub-table `name`; a missing one reads as empty.
    fn section(&mut self, name: &str) -> Result<Section, ConfigError> {
        let path = match self.entries.get(name) {
            Some((key, _)) => join_key(&self.path, key),
            None => join_key(&self.path, name),
        };
        let table = self.get(name, as_table)?.unwrap_or_default();
        Section::new(path, table)
    }

    /// Records every key nobody asked for; they are ignored, as in the original.
    fn finish(self, warnings: &mut Vec<String>) {
        for (key, _) in self.entries.into_values() {
            warnings.push(format!(
                "unknown config key `{}` ignored",
                join_key(&self.path, &key)
            ));
        }
    }
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

// Converters for `Section::get`. Their errors say what is wrong with the value;
// `get` adds the key.

fn wrong_type(want: &str, got: &Value) -> String {
    format!("expected {want}, found {}", got.type_str())
}

fn as_table(v: Value) -> Result<Table, String> {
    match v {
        Value::Table(t) => Ok(t),
        other => Err(wrong_type("a table", &other)),
    }
}

fn as_string(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(wrong_type("a string", &other)),
    }
}

fn as_bool(v: Value) -> Result<bool, String> {
    match v {
        Value::Boolean(b) => Ok(b),
        other => Err(wrong_type("true or false", &other)),
    }
}

fn as_strings(v: Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else {
        return Err(wrong_type("an array of strings", &v));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            other => Err(format!(
                "expected an array of strings, found a {} in it",
                other.type_str()
            )),
        })
        .collect()
}

/// `[zones]`: zone name → node addresses. Zone names are data, so their case is kept.
fn as_zones(v: Value) -> Result<BTreeMap<String, Vec<String>>, String> {
    as_table(v)?
        .into_iter()
        .map(|(zone, addrs)| {
            let addrs = as_strings(addrs).map_err(|e| format!("zone {zone:?}: {e}"))?;
            Ok((zone, addrs))
        })
        .collect()
}

fn as_socket_addr(v: Value) -> Result<SocketAddr, String> {
    let s = as_string(v)?;
    s.parse()
        .map_err(|_| format!("{s:?} is not an `ip:port` address"))
}

fn as_threads(v: Value) -> Result<usize, String> {
    let n = match v {
        Value::Integer(n) => usize::try_from(n).map_err(|_| format!("{n} is negative"))?,
        other => return Err(wrong_type("an integer", &other)),
    };
    if n > MAX_THREADS {
        return Err(format!("{n} is above the limit of {MAX_THREADS}"));
    }
    Ok(n)
}

/// A byte count: an integer or a size string such as "512KiB" or "1MB".
fn as_body_size(v: Value) -> Result<usize, String> {
    let n = match v {
        Value::Integer(n) => usize::try_from(n).map_err(|_| format!("{n} is negative"))?,
        Value::String(s) => parse_size(&s)?,
        other => return Err(wrong_type("a byte count or a size like \"1MiB\"", &other)),
    };
    if n < MIN_BODY_BYTES {
        return Err(format!(
            "{n} bytes is below the minimum of {MIN_BODY_BYTES}"
        ));
    }
    Ok(n)
}

/// A Go duration string such as "40s".
fn as_duration(v: Value) -> Result<Duration, String> {
    match v {
        Value::String(s) => parse_go_duration(&s),
        other => Err(wrong_type("a duration string like \"30s\"", &other)),
    }
}

/// A duration that drives a timer, where zero would spin.
fn as_period(v: Value) -> Result<Duration, String> {
    let d = as_duration(v)?;
    if d.is_zero() {
        return Err("must be greater than zero".to_string());
    }
    Ok(d)
}

/// Parses a byte size: "1048576", "1024B", "512KiB", "1MiB", "1GiB", "1KB", "1MB", "1GB"
/// (units ignore case; KB/MB/GB are powers of 1000).
fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let bad = || format!("invalid size {s:?} (use bytes or a size like \"512KiB\" or \"1MiB\")");
    let number: usize = number.parse().map_err(|_| bad())?;
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    number.checked_mul(multiplier).ok_or_else(bad)
}

/// Parses Go's `time.ParseDuration` syntax: "40s", "1s", "500ms", "1m30s", "1.5h",
/// "2us"/"2µs", "100ns", "0". Negative durations are rejected because none of
/// the settings can be negative; the range is Go's (about 292 years).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration {s:?}: {why}");
    let rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err(bad("negative"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut rest = rest;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad("expected a number"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad("unknown unit")),
        };
        // Go keeps 64-bit nanoseconds; anything past that cannot be represented there either.
        let limit = i64::MAX as u128;
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad("out of range"))?
        };
        // Digits beyond nanosecond-of-an-hour precision cannot change the result.
        let frac_digits = &frac_part[..frac_part.len().min(20)];
        let frac: u128 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| bad("out of range"))?
        };
        let scale = 10u128.pow(frac_digits.len() as u32);
        total = int
            .checked_mul(unit_ns)
            .and_then(|v| v.checked_add(frac * unit_ns / scale))
            .and_then(|v| total.checked_add(v))
            .filter(|&v| v <= limit)
            .ok_or_else(|| bad("out of range"))?;
        rest = after;
    }
    let secs = (total / 1_000_000_000) as u64;
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Go original's `cmd/discovery/discovery.toml`, verbatim.
    const ORIGINAL: &str = r#"
# 同一discovery集群的所有node节点地址，包含本node
nodes = ["127.0.0.1:7171"]
enableprotect=false

# 本可用区zone(一般指机房)标识
[env]
region = "sh"
zone = "sh001"
host = "test1"
DeployEnv = "dev"


# 其他可用区zone访问host和其标识
# [zones]
# "sh002" = ["10.2.0.10:7171", "10.2.0.11:7171", "10.2.0.12:7171"]
# "sh003" = ["10.3.0.10:7171", "10.3.0.11:7171", "10.3.0.12:7171"]

# 本节点监听端口
# 注意：ip别配置为0.0.0.0或者127.0.0.1
[httpServer]
addr = "127.0.0.1:7171"
timeout="40s"

# 当前节点同步其他节点使用的http client
# dial 连接建立超时时间
# keepAlive 连接复用保持时间
[httpClient]
dial = "1s"
keepAlive = "120s"
timeout="40s"

[log]
stdout = true
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_no_env(text: &str) -> Result<Config, ConfigError> {
        parse(text, None, &no_env)
    }

    /// A minimal valid file plus `extra`, with `[env]` complete so no fallback is needed.
    fn with_env(extra: &str) -> String {
        format!("[env]\nzone = \"z1\"\nhost = \"h1\"\ndeployenv = \"dev\"\n{extra}")
    }

    fn err_of(text: &str) -> String {
        parse_no_env(text).unwrap_err().to_string()
    }

    #[test]
    fn original_file_loads() {
        let c = parse_no_env(ORIGINAL).unwrap();
        assert_eq!(c.nodes, ["127.0.0.1:7171"]);
        assert!(c.zones.is_empty());
        assert!(!c.enable_protect);
        assert_eq!(c.env.region, "sh");
        assert_eq!(c.env.zone, "sh001");
        assert_eq!(c.env.host, "test1");
        assert_eq!(c.env.deploy_env, "dev");
        assert_eq!(c.http_server.addr, "127.0.0.1:7171".parse().unwrap());
        assert_eq!(c.http_server.timeout, secs(40));
        assert_eq!(c.http_client.dial, secs(1));
        assert_eq!(c.http_client.keep_alive, secs(120));
        assert_eq!(c.http_client.timeout, secs(40));
        assert!(c.log.stdout);
        assert_eq!(c.log.dir, None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn defaults_for_missing_keys() {
        let c = parse_no_env(&with_env("")).unwrap();
        assert!(c.nodes.is_empty());
        assert!(!c.enable_protect);
        let s = &c.http_server;
        assert_eq!(s.addr, "127.0.0.1:7171".parse().unwrap());
        assert_eq!(
            (
                s.timeout,
                s.threads,
                s.max_body_bytes,
                s.idle_timeout,
                s.header_timeout
            ),
            (secs(40), 0, 1 << 20, secs(90), secs(10))
        );
        let h = &c.http_client;
        assert_eq!(
            (h.dial, h.keep_alive, h.timeout),
            (secs(1), secs(60), secs(1))
        );
        assert!(c.log.stdout);
        let r = &c.registry;
        assert_eq!(
            [
                r.poll_hold,
                r.evict_interval,
                r.evict_after,
                r.evict_after_protected,
                r.guard_recount,
                r.protect_timeout,
                r.self_renew_interval,
                r.scheduler_reload
            ],
            [
                secs(30),
                secs(60),
                secs(90),
                secs(3600),
                secs(900),
                secs(60),
                secs(30),
                secs(5)
            ]
        );
    }

    #[test]
    fn keys_ignore_case() {
        let text = r#"
            NODES = ["10.0.0.1:7171", "10.0.0.2:7171"]
            EnableProtect = true
            [ENV]
            Region = "bj"
            ZONE = "bj01"
            Host = "box"
            deployenv = "prod"
            [HTTPServer]
            ADDR = "0.0.0.0:0"
            Threads = 4
            MaxBody = "512KiB"
            IDLETIMEOUT = "5s"
            headertimeout = "2s"
            [HttpClient]
            KEEPALIVE = "2s"
            [Log]
            Stdout = false
            DIR = "logs"
            [Registry]
            PollHold = "1s"
            evictafterprotected = "2h"
            [zones]
            "SH002" = ["10.2.0.10:7171"]
        "#;
        let c = parse(text, Some(PathBuf::from("base")), &no_env).unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert!(c.enable_protect);
        assert_eq!(
            [&c.env.region, &c.env.zone, &c.env.host, &c.env.deploy_env],
            ["bj", "bj01", "box", "prod"]
        );
        assert_eq!(c.http_server.addr.port(), 0);
        assert_eq!(c.http_server.threads, 4);
        assert_eq!(c.http_server.max_body_bytes, 512 * 1024);
        assert_eq!(c.http_server.idle_timeout, secs(5));
        assert_eq!(c.http_server.header_timeout, secs(2));
        assert_eq!(c.http_client.keep_alive, secs(2));
        assert!(!c.log.stdout);
        assert_eq!(c.log.dir, Some(Path::new("base").join("logs")));
        assert_eq!(c.registry.poll_hold, secs(1));
        assert_eq!(c.registry.evict_after_protected, secs(7200));
        assert_eq!(c.zones["SH002"], ["10.2.0.10:7171"]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn same_key_in_two_cases_is_rejected() {
        let e = err_of(&with_env("[log]\nstdout = true\nStdout = false\n"));
        assert!(e.contains("log.Stdout") && e.contains("log.stdout"), "{e}");
    }

    #[test]
    fn unknown_keys_are_reported_not_fatal() {
        let c = parse_no_env(&with_env(
            "[httpServer]\nadr = \"x\"\n[log]\nv = 3\n[tracing]\nx = 1\n",
        ))
        .unwrap();
        assert_eq!(
            c.warnings,
            [
                "unknown config key `httpServer.adr` ignored",
                "unknown config key `log.v` ignored",
                "unknown config key `tracing` ignored",
            ]
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("[httpServer]\ntimeout = \"40x\"", "httpServer.timeout"),
            ("[HTTPClient]\nDial = 1", "HTTPClient.Dial"),
            ("[registry]\npollHold = \"-1s\"", "registry.pollHold"),
            (
                "[registry]\nEvictInterval = \"0s\"",
                "registry.EvictInterval",
            ),
            ("[httpServer]\naddr = \"localhost\"", "httpServer.addr"),
            ("[httpServer]\nthreads = 1025", "httpServer.threads"),
            ("[httpServer]\nthreads = -1", "httpServer.threads"),
            ("[httpServer]\nmaxBody = 1023", "httpServer.maxBody"),
            ("[httpServer]\nmaxBody = \"1 parsec\"", "httpServer.maxBody"),
            ("[httpServer]\nmaxBody = 1.5", "httpServer.maxBody"),
            ("[log]\nstdout = \"yes\"", "log.stdout"),
            ("[log]\ndir = 7", "log.dir"),
            ("nodes = \"a\"", "nodes"),
            ("nodes = [1]", "nodes"),
            ("enableProtect = 1", "enableProtect"),
            ("registry = 5", "registry"),
            ("[zones]\nsh2 = \"a\"", "zones"),
            ("[HTTPSERVER]\nMaxBody = 10", "HTTPSERVER.MaxBody"),
            ("[Registry]\nGuardRecount = \"0\"", "Registry.GuardRecount"),
        ];
        for (extra, key) in cases {
            // Top-level keys must come before the first table header.
            let text = if extra.starts_with('[') {
                with_env(extra)
            } else {
                format!("{extra}\n{}", with_env(""))
            };
            let e = err_of(&text);
            assert!(e.contains(&format!("`{key}`")), "{extra:?} gave {e}");
        }
        assert!(err_of("[env]\nzone = 1").contains("`env.zone`"));
        assert!(err_of("nodes = [").contains("invalid TOML"));
    }

    #[test]
    fn sizes() {
        for (s, n) in [
            ("2048", 2048),
            ("1024B", 1024),
            ("512KiB", 512 * 1024),
            ("1MiB", 1 << 20),
            ("1mib", 1 << 20),
            ("2GiB", 2 << 30),
            ("1KB", 1000),
            ("1MB", 1_000_000),
            ("3 kb", 3000),
        ] {
            assert_eq!(parse_size(s), Ok(n), "{s}");
        }
        for s in [
            "",
            "MiB",
            "1.5MiB",
            "1 TiB",
            "-1",
            "99999999999999999999GiB",
        ] {
            assert!(parse_size(s).is_err(), "{s}");
        }
    }

    #[test]
    fn env_falls_back_to_variables() {
        let vars = |name: &str| {
            let v = match name {
                "REGION" => "sh",
                "ZONE" => "sh001",
                "DEPLOY_ENV" => "uat",
                "HOSTNAME" => "node-7",
                _ => return None,
            };
            Some(v.to_string())
        };
        let c = parse("", None, &vars).unwrap();
        assert_eq!(
            [&c.env.region, &c.env.zone, &c.env.host, &c.env.deploy_env],
            ["sh", "sh001", "node-7", "uat"]
        );
        // Values in the file win; an empty string in the file counts as missing.
        let c = parse("[env]\nzone = \"\"\nhost = \"mine\"\n", None, &vars).unwrap();
        assert_eq!(
            (c.env.zone.as_str(), c.env.host.as_str()),
            ("sh001", "mine")
        );
    }

    #[test]
    fn host_falls_back_to_system_hostname() {
        let vars = |name: &str| match name {
            "ZONE" | "DEPLOY_ENV" => Some("x".to_string()),
            "HOSTNAME" => Some(String::new()),
            _ => None,
        };
        let c = parse("", None, &vars).unwrap();
        assert_eq!(Some(c.env.host), system_hostname());
    }

    #[test]
    fn missing_identity_is_an_error() {
        let e = err_of("[env]\nhost = \"h\"\ndeployenv = \"dev\"\n");
        assert!(e.contains("env.zone") && e.contains("ZONE"), "{e}");
        let e = err_of("[env]\nhost = \"h\"\nzone = \"z\"\n");
        assert!(e.contains("DEPLOY_ENV"), "{e}");
        // Region is optional.
        assert_eq!(parse_no_env(&with_env("")).unwrap().env.region, "");
    }

    #[test]
    fn embedded_default_loads() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.nodes, ["127.0.0.1:7171"]);
        assert_eq!(c.http_server.addr, "127.0.0.1:7171".parse().unwrap());
        assert_eq!(c.env.zone, "sh001");
        assert_eq!(c.env.deploy_env, "dev");
        assert!(!c.env.host.is_empty());
        assert_eq!(c.dir, None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn example_file_matches_defaults() {
        let c = parse_no_env(include_str!("../configs/discovery.toml")).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let d = parse_no_env(&with_env("")).unwrap();
        // Debug output compares every field without requiring PartialEq.
        assert_eq!(
            format!("{:?}", c.http_server),
            format!("{:?}", d.http_server)
        );
        assert_eq!(
            format!("{:?}", c.http_client),
            format!("{:?}", d.http_client)
        );
        assert_eq!(format!("{:?}", c.registry), format!("{:?}", d.registry));
        assert_eq!(format!("{:?}", c.log), format!("{:?}", d.log));
        assert_eq!(c.nodes, ["127.0.0.1:7171"]);
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

        let c = Config::load(Some(&tmp.0)).unwrap();
        assert_eq!(c.dir.as_deref(), Some(tmp.0.as_path()));
        assert_eq!(c.log.dir, Some(tmp.0.join("logs")));

        let c = Config::load(Some(&tmp.0.join("other.toml"))).unwrap();
        assert_eq!(c.dir.as_deref(), Some(tmp.0.as_path()));

        let missing = tmp.0.join("nope");
        let e = Config::load(Some(&missing)).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("cannot read"), "{e}");

        std::fs::write(tmp.0.join("bad.toml"), "[httpServer]\ntimeout = 40\n").unwrap();
        let e = Config::load(Some(&tmp.0.join("bad.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad.toml") && e.contains("`httpServer.timeout`"),
            "{e}"
        );

        let empty = TempDir::new("empty");
        let e = Config::load(Some(&empty.0)).unwrap_err().to_string();
        assert!(e.contains(FILE_NAME), "{e}");
    }

    #[test]
    fn go_durations() {
        let ok = [
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("40s", secs(40)),
            ("1s", secs(1)),
            ("500ms", Duration::from_millis(500)),
            ("1m30s", secs(90)),
            ("1.5h", secs(5400)),
            ("2us", Duration::from_micros(2)),
            ("2µs", Duration::from_micros(2)),
            ("2μs", Duration::from_micros(2)),
            ("100ns", Duration::from_nanos(100)),
            (".5s", Duration::from_millis(500)),
            ("5.s", secs(5)),
            ("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006)),
            ("+3s", secs(3)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("2562047h", secs(2562047 * 3600)),
        ];
        for (s, d) in ok {
            assert_eq!(parse_go_duration(s), Ok(d), "{s}");
        }
        for s in [
            "",
            "s",
            "1",
            "10",
            "-1s",
            ".s",
            "1x",
            "1d",
            "1 s",
            "1s ",
            "1.2.3s",
            "3000000h",
            "9999999999999999999999s",
        ] {
            assert!(parse_go_duration(s).is_err(), "{s:?} should fail");
        }
    }
}
