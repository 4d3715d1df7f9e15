//! Reading `discovery.toml`: every key the file may hold, its default and its check.
//!
//! Sits between `config::toml_walk` (case-insensitive key matching) and the schema in
//! `config`; the values it leaves empty are filled by `config::overrides`. Key names follow
//! the Go original's `toml` decoding, which ignores case; `[registry]` and a few
//! `[httpServer]` keys are ours.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use super::toml_walk::{as_bool, as_string, as_strings, as_table, wrong_type, Section};
use super::units::{parse_go_duration, parse_size};
use super::{
    AuthConfig, ClusterConfig, Config, ConfigError, Driver, EnvConfig, HttpClientConfig,
    HttpServerConfig, LimitsConfig, LogConfig, LogFormat, RegistryConfig, MAX_THREADS,
};

/// Smallest accepted `httpServer.maxBody`: registrations with metadata need room.
const MIN_BODY_BYTES: usize = 1024;

/// Reads and checks every key of `text`. `dir`, the file's directory, is recorded as
/// [`Config::dir`] and anchors a relative `log.dir`. Empty `[env]` fields are left empty for
/// `config::overrides` to fill.
pub(super) fn parse(text: &str, dir: Option<PathBuf>) -> Result<Config, ConfigError> {
    let table: Table = text
        .parse()
        .map_err(|e| ConfigError::new(format!("invalid TOML: {e}")))?;
    let mut warnings = Vec::new();
    let mut top = Section::new(String::new(), table)?;

    let nodes = top.get("nodes", as_strings)?.unwrap_or_default();
    let zones = top.get("zones", as_zones)?.unwrap_or_default();
    let enable_protect = top.get("enableprotect", as_bool)?.unwrap_or(false);

    let mut s = top.section("env")?;
    let env = EnvConfig {
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
        driver: s.get("driver", as_driver)?.unwrap_or(Driver::Auto),
        write_timeout: s.get("writetimeout", as_period)?.unwrap_or(secs(30)),
        max_conns: s.get("maxconns", as_limit)?.unwrap_or(200_000),
        max_conns_per_ip: s.get("maxconnsperip", as_limit)?.unwrap_or(30_000),
        max_parked_polls: s.get("maxparkedpolls", as_limit)?.unwrap_or(200_000),
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
        format: s.get("format", as_log_format)?.unwrap_or_default(),
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
        max_clock_skew: s.get("maxclockskew", as_period)?.unwrap_or(secs(300)),
        snapshot: s
            .get("snapshot", as_string)?
            .filter(|p| !p.is_empty())
            .map(|p| match &dir {
                Some(base) => base.join(p),
                None => PathBuf::from(p),
            }),
        snapshot_interval: s.get("snapshotinterval", as_period)?.unwrap_or(secs(30)),
    };
    s.finish(&mut warnings);

    let mut s = top.section("auth")?;
    let auth = AuthConfig {
        peer_token: s.get("peertoken", as_token)?,
        peer_addrs: s.get("peeraddrs", as_cidrs)?,
        write_token: s.get("writetoken", as_token)?,
        write_from: s.get("writefrom", as_cidrs)?.unwrap_or_default(),
        admin_token: s.get("admintoken", as_token)?,
        read_token: s.get("readtoken", as_token)?,
    };
    s.finish(&mut warnings);

    let mut s = top.section("cluster")?;
    let cluster = ClusterConfig {
        max_peers: s.get("maxpeers", as_max_peers)?.unwrap_or(64),
    };
    s.finish(&mut warnings);

    let mut s = top.section("limits")?;
    let limits = LimitsConfig {
        max_appids: s.get("maxappids", as_count)?.unwrap_or(10_000),
        max_addrs: s.get("maxaddrs", as_count)?.unwrap_or(64),
        max_metadata_bytes: s.get("maxmetadatabytes", as_size)?.unwrap_or(64 * 1024),
        max_metadata_keys: s.get("maxmetadatakeys", as_count)?.unwrap_or(256),
        max_batch_lines: s.get("maxbatchlines", as_count)?.unwrap_or(1024),
    };
    s.finish(&mut warnings);
    top.finish(&mut warnings);

    Ok(Config {
        nodes,
        zones,
        enable_protect,
        env,
        http_server,
        http_client,
        log,
        registry,
        auth,
        cluster,
        limits,
        dir,
        warnings,
    })
}

/// A secret: a non-empty string without spaces (it travels in `Authorization: Bearer`).
fn as_token(v: Value) -> Result<String, String> {
    let s = as_string(v)?;
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a non-empty token without spaces".into());
    }
    Ok(s)
}

/// A list of networks in CIDR notation; a bare address is a network of one.
fn as_cidrs(v: Value) -> Result<Vec<ipnet::IpNet>, String> {
    as_strings(v)?
        .into_iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{s:?} is not a network like \"10.0.0.0/24\""))
        })
        .collect()
}

fn as_driver(v: Value) -> Result<Driver, String> {
    match as_string(v)?.as_str() {
        "auto" => Ok(Driver::Auto),
        "io_uring" => Ok(Driver::IoUring),
        "epoll" => Ok(Driver::Epoll),
        other => Err(format!(
            "{other:?} is not one of \"auto\", \"io_uring\", \"epoll\""
        )),
    }
}

/// A positive count.
fn as_count(v: Value) -> Result<usize, String> {
    match v {
        Value::Integer(n) if n >= 1 => usize::try_from(n).map_err(|_| format!("{n} is too large")),
        Value::Integer(n) => Err(format!("{n} must be at least 1")),
        other => Err(wrong_type("an integer", &other)),
    }
}

/// A positive byte count: an integer or a size like "64KiB".
fn as_size(v: Value) -> Result<usize, String> {
    let n = match v {
        Value::Integer(n) => usize::try_from(n).map_err(|_| format!("{n} is negative"))?,
        Value::String(s) => parse_size(&s)?,
        other => return Err(wrong_type("a byte count or a size like \"64KiB\"", &other)),
    };
    if n == 0 {
        return Err("must be greater than zero".into());
    }
    Ok(n)
}

fn as_max_peers(v: Value) -> Result<usize, String> {
    match v {
        Value::Integer(n) if (1..=4096).contains(&n) => Ok(n as usize),
        Value::Integer(n) => Err(format!("{n} is outside 1..=4096")),
        other => Err(wrong_type("an integer", &other)),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
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

fn as_log_format(v: Value) -> Result<LogFormat, String> {
    match as_string(v)?.to_ascii_lowercase().as_str() {
        "text" | "" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!(
            "{other:?} is not a log format (\"text\" or \"json\")"
        )),
    }
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

/// A count limit: a positive integer.
fn as_limit(v: Value) -> Result<usize, String> {
    match v {
        Value::Integer(n) if n > 0 => usize::try_from(n).map_err(|_| format!("{n} is too large")),
        Value::Integer(n) => Err(format!("{n} is not a positive count")),
        other => Err(wrong_type("a positive integer", &other)),
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

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

    fn parse_no_env(text: &str) -> Result<Config, ConfigError> {
        parse(text, None)
    }

    /// A minimal valid file plus `extra`, with `[env]` complete as a deployment has it.
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
        assert_eq!(
            (
                s.write_timeout,
                s.max_conns,
                s.max_conns_per_ip,
                s.max_parked_polls
            ),
            (secs(30), 200_000, 30_000, 200_000)
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
            WriteTimeout = "3s"
            MAXCONNS = 7
            maxConnsPerIP = 3
            MaxParkedPolls = 5
            [HttpClient]
            KEEPALIVE = "2s"
            [Log]
            Stdout = false
            DIR = "logs"
            Format = "JSON"
            [Registry]
            PollHold = "1s"
            evictafterprotected = "2h"
            [zones]
            "SH002" = ["10.2.0.10:7171"]
        "#;
        let c = parse(text, Some(PathBuf::from("base"))).unwrap();
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
        assert_eq!(c.http_server.write_timeout, secs(3));
        assert_eq!(
            (
                c.http_server.max_conns,
                c.http_server.max_conns_per_ip,
                c.http_server.max_parked_polls
            ),
            (7, 3, 5)
        );
        assert_eq!(c.http_client.keep_alive, secs(2));
        assert!(!c.log.stdout);
        assert_eq!(c.log.dir, Some(Path::new("base").join("logs")));
        assert_eq!(c.log.format, LogFormat::Json);
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
            ("[httpServer]\nmaxConns = 0", "httpServer.maxConns"),
            (
                "[httpServer]\nmaxConnsPerIp = -1",
                "httpServer.maxConnsPerIp",
            ),
            (
                "[httpServer]\nmaxParkedPolls = \"9\"",
                "httpServer.maxParkedPolls",
            ),
            (
                "[httpServer]\nwriteTimeout = \"0s\"",
                "httpServer.writeTimeout",
            ),
            ("[httpServer]\nmaxBody = \"1 parsec\"", "httpServer.maxBody"),
            ("[httpServer]\nmaxBody = 1.5", "httpServer.maxBody"),
            ("[log]\nstdout = \"yes\"", "log.stdout"),
            ("[log]\ndir = 7", "log.dir"),
            ("[log]\nformat = \"xml\"", "log.format"),
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
    fn example_file_matches_defaults() {
        let c = parse_no_env(include_str!("../../configs/discovery.toml")).unwrap();
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
}
