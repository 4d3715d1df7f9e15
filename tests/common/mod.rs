//! Shared harness of the integration tests: starts the real `discovery` binary on
//! `127.0.0.1:0` with a temporary config directory, follows its log, and talks raw HTTP/1.1
//! to it over `std::net::TcpStream`.
//!
//! Nothing here sleeps to synchronise: readiness comes from the log, changes from answers and
//! `/metrics`. Every wait is bounded by [`WAIT`] and fails the test with what it waited for.

// Each test file uses its own subset of the harness.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value;

/// Upper bound of every wait; generous so a loaded 2-core machine does not fail a test.
pub const WAIT: Duration = Duration::from_secs(20);

/// Pause between two looks at something polled (`/metrics`, a fetch, a child's exit).
const POLL_PAUSE: Duration = Duration::from_millis(5);

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_discovery");

/// Repeats `look` every few milliseconds until it returns `Some`, or fails naming `what`.
pub fn wait_until<T>(what: &str, mut look: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = look() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        std::thread::sleep(POLL_PAUSE);
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "discovery-it-{tag}-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            UNIX_EPOCH.elapsed().expect("clock after 1970").as_nanos()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The configuration of a server to start; every knob not set keeps the binary's default,
/// except `pollHold` (30s, the default, unless set) and two worker threads so that polls and
/// writes meet across cores on any machine.
#[derive(Clone)]
pub struct Setup {
    top: Vec<String>,
    zone: String,
    host: String,
    nodes: Vec<String>,
    zones: BTreeMap<String, Vec<String>>,
    client: BTreeMap<String, String>,
    http: BTreeMap<String, String>,
    registry: BTreeMap<String, String>,
    auth: BTreeMap<String, String>,
    cluster: BTreeMap<String, String>,
    raw_tables: Vec<(String, String)>,
    files: Vec<(String, String)>,
    args: Vec<String>,
    /// Pass the config file itself to `-conf` rather than its directory.
    conf_file: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup::new()
    }
}

impl Setup {
    pub fn new() -> Setup {
        let mut http = BTreeMap::new();
        http.insert("addr".into(), "\"127.0.0.1:0\"".into());
        http.insert("threads".into(), "2".into());
        Setup {
            top: Vec::new(),
            zone: "sh001".into(),
            host: "test-node".into(),
            nodes: Vec::new(),
            zones: BTreeMap::new(),
            client: BTreeMap::new(),
            http,
            registry: BTreeMap::new(),
            auth: BTreeMap::new(),
            cluster: BTreeMap::new(),
            raw_tables: Vec::new(),
            files: Vec::new(),
            args: Vec::new(),
            conf_file: false,
        }
    }

    /// Starts with `-conf <dir>/discovery.toml` instead of `-conf <dir>`.
    pub fn conf_file(mut self) -> Setup {
        self.conf_file = true;
        self
    }

    /// A top-level TOML line such as `enableprotect = true`.
    pub fn top(mut self, line: &str) -> Setup {
        self.top.push(line.into());
        self
    }

    /// This node's zone and host name (`[env]`); sh001 and test-node by default.
    pub fn identity(mut self, zone: &str, host: &str) -> Setup {
        self.zone = zone.into();
        self.host = host.into();
        self
    }

    /// The `nodes` seeds (this zone's discovery nodes).
    pub fn nodes(mut self, addrs: &[SocketAddr]) -> Setup {
        self.nodes = addrs.iter().map(|a| a.to_string()).collect();
        self
    }

    /// A `[zones]` entry: seeds of another zone.
    pub fn zone_seeds(mut self, zone: &str, addrs: &[SocketAddr]) -> Setup {
        self.zones
            .insert(zone.into(), addrs.iter().map(|a| a.to_string()).collect());
        self
    }

    /// A duration key of `[httpClient]` (peer calls), e.g. `("timeout", "1s")`.
    pub fn client(mut self, key: &str, value: &str) -> Setup {
        self.client.insert(key.into(), format!("{value:?}"));
        self
    }

    /// A string key of `[httpServer]`, e.g. `("maxBody", "2KiB")`.
    pub fn http(mut self, key: &str, value: &str) -> Setup {
        self.http.insert(key.into(), format!("{value:?}"));
        self
    }

    /// An integer key of `[httpServer]`, e.g. `("maxConns", 3)`.
    pub fn http_int(mut self, key: &str, value: i64) -> Setup {
        self.http.insert(key.into(), value.to_string());
        self
    }

    /// A duration key of `[registry]`, e.g. `("pollHold", "1s")`.
    pub fn registry(mut self, key: &str, value: &str) -> Setup {
        self.registry.insert(key.into(), format!("{value:?}"));
        self
    }

    /// A key of `[auth]` with its TOML value as written, e.g. `("peerAddrs", r#"["127.0.0.1"]"#)`.
    pub fn auth(mut self, key: &str, toml_value: &str) -> Setup {
        self.auth.insert(key.into(), toml_value.into());
        self
    }

    /// A key of `[cluster]` with its TOML value as written, e.g. `("maxPeers", "2")`.
    pub fn cluster_key(mut self, key: &str, toml_value: &str) -> Setup {
        self.cluster.insert(key.into(), toml_value.into());
        self
    }

    /// A whole table with its lines as written, e.g. `("limits", "maxAddrs = 3")`.
    pub fn raw_table(mut self, table: &str, lines: &str) -> Setup {
        self.raw_tables.push((table.into(), lines.into()));
        self
    }

    /// Declares the tests' own address (127.0.0.1) a peer, for tests that play one.
    pub fn test_client_is_a_peer(self) -> Setup {
        self.auth("peerAddrs", r#"["127.0.0.1"]"#)
    }

    /// More command-line arguments after `-conf <dir>`.
    pub fn args(mut self, args: &[&str]) -> Setup {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// A file written into the config directory before start (scheduler `*.json` files).
    pub fn file(mut self, name: &str, contents: &str) -> Setup {
        self.files.push((name.into(), contents.into()));
        self
    }

    fn toml(&self) -> String {
        let quoted = |list: &[String]| {
            let items: Vec<String> = list.iter().map(|a| format!("{a:?}")).collect();
            format!("[{}]", items.join(", "))
        };
        let mut t = format!("nodes = {}\n", quoted(&self.nodes));
        for line in &self.top {
            t.push_str(line);
            t.push('\n');
        }
        t.push_str(&format!(
            "[env]\nregion = \"sh\"\nzone = {:?}\nhost = {:?}\nDeployEnv = \"dev\"\n",
            self.zone, self.host
        ));
        t.push_str("[zones]\n");
        for (zone, addrs) in &self.zones {
            t.push_str(&format!("{zone:?} = {}\n", quoted(addrs)));
        }
        let tables = [
            ("httpServer", &self.http),
            ("httpClient", &self.client),
            ("registry", &self.registry),
            ("auth", &self.auth),
            ("cluster", &self.cluster),
        ];
        for (table, keys) in tables {
            t.push_str(&format!("[{table}]\n"));
            for (k, v) in keys {
                t.push_str(&format!("{k} = {v}\n"));
            }
        }
        for (table, lines) in &self.raw_tables {
            t.push_str(&format!("[{table}]\n{lines}\n"));
        }
        t
    }

    /// Writes the config directory, starts the binary and waits until it listens.
    pub fn start(self) -> Server {
        let dir = TempDir::new("node");
        std::fs::write(dir.path().join("discovery.toml"), self.toml()).expect("write config");
        for (name, contents) in &self.files {
            std::fs::write(dir.path().join(name), contents).expect("write config file");
        }
        let conf = if self.conf_file {
            dir.path().join("discovery.toml")
        } else {
            dir.path().to_path_buf()
        };
        let mut child = Command::new(BIN)
            .arg("-conf")
            .arg(conf)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the discovery binary");
        let log = Arc::new(Log::default());
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        drain(stdout, log.clone());
        drain(stderr, log.clone());
        let mut server = Server {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            log,
            dir,
        };
        let line = server.wait_log("discovery listening addr=");
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in the readiness line {line:?}"));
        server.addr = addr;
        server
    }
}

/// The child's output, line by line, shared with the threads draining its pipes.
#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    grew: Condvar,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// Pipes closed (the child exited): no line will come any more.
    closed: usize,
}

/// Reads a pipe to its end so it never fills and blocks the server.
fn drain(pipe: impl Read + Send + 'static, log: Arc<Log>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    log.state.lock().expect("log lock").lines.push(text);
                    log.grew.notify_all();
                }
            }
        }
        log.state.lock().expect("log lock").closed += 1;
        log.grew.notify_all();
    });
}

/// A running server; killed (SIGKILL) on drop if still running.
pub struct Server {
    /// The address the server really listens on.
    pub addr: SocketAddr,
    child: Child,
    log: Arc<Log>,
    dir: TempDir,
}

impl Server {
    /// A server with the default [`Setup`].
    pub fn start() -> Server {
        Setup::new().start()
    }

    /// The config directory (scheduler files live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server printed so far.
    pub fn log_text(&self) -> String {
        self.log.state.lock().expect("log lock").lines.join("\n")
    }

    /// Waits for the first log line containing `needle` and returns it.
    pub fn wait_log(&self, needle: &str) -> String {
        self.wait_logs(needle, 1).remove(0)
    }

    /// Waits until `count` log lines contain `needle` and returns them.
    pub fn wait_logs(&self, needle: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut state = self.log.state.lock().expect("log lock");
        loop {
            let found: Vec<String> = state
                .lines
                .iter()
                .filter(|l| l.contains(needle))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            let now = Instant::now();
            if now >= deadline || state.closed == 2 {
                let why = if state.closed == 2 {
                    "the server exited"
                } else {
                    "timed out"
                };
                panic!(
                    "{why} waiting for {count} log line(s) with {needle:?}; log:\n{}",
                    state.lines.join("\n")
                );
            }
            state = self
                .log
                .grew
                .wait_timeout(state, deadline - now)
                .expect("log lock")
                .0;
        }
    }

    /// The process id, for signals.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with the pid of our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Waits for the server to exit on its own.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        wait_until("the server to exit", || child.try_wait().expect("try_wait"))
    }

    /// A new connection to the server.
    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One GET on a new connection.
    pub fn get(&self, target: &str) -> Response {
        self.connect().get(target)
    }

    /// One form POST on a new connection.
    pub fn post(&self, path: &str, form: &Form) -> Response {
        self.connect().post(path, &form.encode())
    }

    /// POST `/discovery/register` that must succeed.
    pub fn register(&self, form: &Form) {
        let r = self.post("/discovery/register", form);
        assert_eq!(r.code(), 0, "register {:?}: {}", form.encode(), r.text());
    }

    /// GET `/discovery/fetch` of `appid` in env dev with status mask 3; the whole envelope.
    pub fn fetch(&self, appid: &str) -> Response {
        self.get(&format!("/discovery/fetch?appid={appid}&env=dev&status=3"))
    }

    /// The app's current latest_timestamp (the app must exist).
    pub fn latest(&self, appid: &str) -> i64 {
        let r = self.fetch(appid);
        assert_eq!(r.code(), 0, "fetch {appid}: {}", r.text());
        r.data()["latest_timestamp"]
            .as_i64()
            .expect("latest_timestamp")
    }

    /// Every sample of `/metrics` by name.
    pub fn metrics(&self) -> HashMap<String, i64> {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let name = parts.next()?.to_string();
                let value = parts.next()?.parse().ok()?;
                Some((name, value))
            })
            .collect()
    }

    /// One metric's current value.
    pub fn metric(&self, name: &str) -> i64 {
        *self
            .metrics()
            .get(name)
            .unwrap_or_else(|| panic!("no metric {name}"))
    }

    /// Waits until metric `name` satisfies `ok`; returns its value.
    pub fn wait_metric(&self, name: &str, what: &str, ok: impl Fn(i64) -> bool) -> i64 {
        wait_until(&format!("{name} {what}"), || {
            let v = self.metric(name);
            ok(v).then_some(v)
        })
    }

    /// Waits until `n` long-polls are parked.
    pub fn wait_parked(&self, n: i64) {
        self.wait_metric("discovery_polls_parked", &format!("== {n}"), |v| v == n);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let exited = self.child.try_wait().ok().flatten();
        if exited.is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // A failing test shows what the server did, and whether it was still running.
        if std::thread::panicking() {
            eprintln!(
                "--- server {} ({}) log:\n{}\n---",
                self.addr,
                exited.map_or("still running".to_string(), |s| format!("exited: {s}")),
                self.log_text()
            );
        }
    }
}

/// Form parameters in wire order.
#[derive(Debug, Clone, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn new() -> Form {
        Form(Vec::new())
    }

    /// Sets `key` to the single value `value`, replacing earlier values.
    pub fn set(mut self, key: &str, value: &str) -> Form {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.into(), value.into()));
        self
    }

    /// Adds one more value of `key`.
    pub fn add(mut self, key: &str, value: &str) -> Form {
        self.0.push((key.into(), value.into()));
        self
    }

    /// Removes every value of `key`.
    pub fn without(mut self, key: &str) -> Form {
        self.0.retain(|(k, _)| k != key);
        self
    }

    /// `application/x-www-form-urlencoded`.
    pub fn encode(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// A register of `appid`/`hostname` in zone sh001, env dev, UP.
pub fn reg(appid: &str, hostname: &str) -> Form {
    Form::new()
        .set("region", "sh")
        .set("zone", "sh001")
        .set("env", "dev")
        .set("appid", appid)
        .set("hostname", hostname)
        .set("addrs", "http://127.0.0.1:8000")
        .set("version", "v1")
        .set("status", "1")
}

/// The identity params of an instance (renew, cancel), zone sh001, env dev.
pub fn ident(appid: &str, hostname: &str) -> Form {
    Form::new()
        .set("zone", "sh001")
        .set("env", "dev")
        .set("appid", appid)
        .set("hostname", hostname)
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when the server announced it closes the connection.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// The envelope's `code`; the answer must be an HTTP 200 envelope.
    pub fn code(&self) -> i64 {
        assert_eq!(self.status, 200, "HTTP status of {}", self.text());
        self.json()["code"].as_i64().expect("numeric code")
    }

    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .expect("string message")
            .to_string()
    }

    /// The envelope's `data` (Null when absent).
    pub fn data(&self) -> Value {
        self.json()["data"].clone()
    }
}

/// Hostnames of the instances of `zone` in an InstanceInfo, in answer order.
pub fn hosts(info: &Value, zone: &str) -> Vec<String> {
    info["instances"][zone]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|i| i["hostname"].as_str().expect("hostname").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The instance `hostname` of `zone` in an InstanceInfo.
pub fn instance(info: &Value, zone: &str, hostname: &str) -> Value {
    info["instances"][zone]
        .as_array()
        .and_then(|list| list.iter().find(|i| i["hostname"] == hostname))
        .unwrap_or_else(|| panic!("no {hostname} in zone {zone} of {info}"))
        .clone()
}

/// One client connection speaking raw HTTP/1.1.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// The start of what was last sent, for failure messages.
    last_sent: String,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Conn::from_stream(stream)
    }

    /// A connection from source address `from` (any 127.x works on loopback): a stranger to
    /// a cluster whose nodes all listen on 127.0.0.1.
    pub fn open_from(addr: SocketAddr, from: std::net::IpAddr) -> Conn {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket
            .bind(&SocketAddr::new(from, 0).into())
            .unwrap_or_else(|e| panic!("bind {from}: {e}"));
        socket
            .connect(&addr.into())
            .unwrap_or_else(|e| panic!("connect {addr} from {from}: {e}"));
        Conn::from_stream(socket.into())
    }

    /// A connection over a stream the caller connected (from a chosen source address, say).
    pub fn from_stream(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
            last_sent: String::new(),
        }
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        let line = bytes.split(|&b| b == b'\r').next().unwrap_or_default();
        self.last_sent = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write {:?}: {e}", self.last_sent));
    }

    /// Writes a GET (`body` empty) or a form POST with Content-Length.
    pub fn send_request(&mut self, method: &str, target: &str, body: &str) {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if method == "POST" {
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.send(req);
    }

    pub fn get(&mut self, target: &str) -> Response {
        self.send_request("GET", target, "");
        self.read_response()
    }

    pub fn post(&mut self, path: &str, body: &str) -> Response {
        self.send_request("POST", path, body);
        self.read_response()
    }

    /// A GET (`body` empty) or form POST sent with `Authorization: Bearer <bearer>`.
    pub fn call_with_token(
        &mut self,
        method: &str,
        target: &str,
        body: &str,
        bearer: &str,
    ) -> Response {
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\n"
        );
        if method == "POST" {
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.send(req);
        self.read_response()
    }

    /// Reads more bytes; `Ok(0)` at end of stream. A read on a socket with a timeout fails with
    /// EINTR when the test process was stopped and continued (even without a signal handler), so
    /// that error is retried.
    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads until `buf` holds at least `n` bytes.
    fn fill_to(&mut self, n: usize, what: &str) {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) => panic!(
                    "connection closed while reading {what} after {:?}; got {:?}",
                    self.last_sent,
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "no {what} within {WAIT:?} after {:?} ({e}); got {:?}",
                    self.last_sent,
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Reads exactly `text.len()` bytes and checks they are `text` (interim responses).
    pub fn expect_bytes(&mut self, text: &str) {
        self.fill_to(text.len(), &format!("{text:?}"));
        let got: Vec<u8> = self.buf.drain(..text.len()).collect();
        assert_eq!(String::from_utf8_lossy(&got), text);
    }

    /// Reads one whole response (Content-Length framed, as the server always answers).
    pub fn read_response(&mut self) -> Response {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            let want = self.buf.len() + 1;
            self.fill_to(want, "a response head");
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().expect("version").to_string();
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {l:?}"));
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().expect("numeric Content-Length"))
            .unwrap_or(0);
        let body_at = head_end + 4;
        self.fill_to(body_at + length, "a response body");
        let body = self.buf[body_at..body_at + length].to_vec();
        self.buf.drain(..body_at + length);
        Response {
            version,
            status,
            headers,
            body,
        }
    }

    /// Asserts the server closes the connection without sending anything more.
    pub fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unread bytes before close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        match self.fill() {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Ok(_) => panic!(
                "expected the connection to close, got {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => panic!("connection still open after {WAIT:?} ({e})"),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A scripted peer on 127.0.0.1: it answers every request (whatever it asks) with `body`,
/// naming itself `server` in the `Server` header. Bounded: 64 connections, 10,000 requests each.
pub fn scripted_peer(server: &'static str, body: String) -> SocketAddr {
    let never = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    recording_peer(server, body, never, Duration::ZERO).0
}

/// A [`scripted_peer`] that also keeps every request's body, in order of arrival, and holds
/// each answer for `hold` while `late` is set.
pub fn recording_peer(
    server: &'static str,
    body: String,
    late: std::sync::Arc<std::sync::atomic::AtomicBool>,
    hold: Duration,
) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(stream) = stream else { return };
            let (body, log, late) = (body.clone(), log.clone(), late.clone());
            std::thread::spawn(move || {
                let Ok(read_half) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(read_half);
                let mut out = stream;
                for _ in 0..10_000 {
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut got = vec![0; len];
                    if reader.read_exact(&mut got).is_err() {
                        return;
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push(String::from_utf8_lossy(&got).into_owned());
                    }
                    if late.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(hold);
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nServer: {server}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if out
                        .write_all(head.as_bytes())
                        .and_then(|_| out.write_all(body.as_bytes()))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, kept)
}
