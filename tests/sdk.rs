//! The client crate (`client/`, `discovery-client`) end to end against real servers: a provider
//! registers and a consumer's watch sees it come and go, a watch outlives the node it polls, a
//! renew answered -404 registers again, shutdown and drop cancel, a silent node is timed out and
//! passed over, and the bearer token goes out.
//!
//! By default the servers are this repository's binary. With `SDK_TEST_SERVER_BIN` naming
//! another build that takes `-conf <dir>` and the same `discovery.toml` (the Go original, as
//! `tests/interop/run.sh` does), the same tests run against it: the SDK must work with either.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use discovery_client::{Apps, Backoff, Client, Config, Error, Service, Status, Watch};
use serde_json::Value;

use common::{Conn, Form, Server, Setup, TempDir, WAIT};

const APP: &str = "demo.sdk";
const ZONE: &str = "sh001";

// ---- the servers under test ------------------------------------------------------------

/// A node of either implementation.
enum Node {
    Ours(Server),
    Other(OtherServer),
}

impl Node {
    fn addr(&self) -> SocketAddr {
        match self {
            Node::Ours(s) => s.addr,
            Node::Other(s) => s.addr,
        }
    }

    /// SIGKILL, and wait until the process is gone.
    fn kill(&mut self) {
        match self {
            Node::Ours(s) => {
                s.signal(libc::SIGKILL);
                s.wait_exit();
            }
            Node::Other(s) => {
                let _ = s.child.kill();
                let _ = s.child.wait();
            }
        }
    }
}

/// The binary named by `SDK_TEST_SERVER_BIN`, if any.
fn other_bin() -> Option<PathBuf> {
    std::env::var_os("SDK_TEST_SERVER_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// One node, alone in its zone.
fn start_one(host: &str) -> Node {
    match other_bin() {
        None => Node::Ours(Setup::new().identity(ZONE, host).start()),
        Some(bin) => {
            let addr = free_addr();
            Node::Other(OtherServer::start(&bin, host, addr, &[addr]))
        }
    }
}

/// Two peers of one zone that both list both in `infra.discovery`.
fn start_pair() -> (Node, Node) {
    let (a, b) = match other_bin() {
        None => {
            // b gets a as its seed; a learns b through infra.discovery, admitting it as a peer
            // by the shared peer token.
            let a = Setup::new()
                .identity(ZONE, "node-a")
                .auth("peerToken", r#""sdk-secret""#)
                .start();
            let b = Setup::new()
                .identity(ZONE, "node-b")
                .nodes(&[a.addr])
                .client("timeout", "2s")
                .auth("peerToken", r#""sdk-secret""#)
                .start();
            (Node::Ours(a), Node::Ours(b))
        }
        Some(bin) => {
            let (a, b) = (free_addr(), free_addr());
            let first = OtherServer::start(&bin, "node-a", a, &[a, b]);
            let second = OtherServer::start(&bin, "node-b", b, &[a, b]);
            (Node::Other(first), Node::Other(second))
        }
    };
    for n in [&a, &b] {
        let addr = n.addr();
        common::wait_until(&format!("both nodes in infra.discovery on {addr}"), || {
            (hosts_on(addr, "infra.discovery").len() == 2).then_some(())
        });
    }
    (a, b)
}

/// A loopback address whose port was free a moment ago (for servers that cannot be told to
/// pick one and report it).
fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr")
}

/// A server that is not ours: started with the same config layout; ready when `nodes`
/// answers 200. Killed on drop; its log is shown when a test fails.
struct OtherServer {
    addr: SocketAddr,
    child: Child,
    dir: TempDir,
}

impl OtherServer {
    fn start(bin: &PathBuf, host: &str, addr: SocketAddr, zone_nodes: &[SocketAddr]) -> Self {
        let dir = TempDir::new("other");
        let nodes: Vec<String> = zone_nodes
            .iter()
            .map(|a| format!("{:?}", a.to_string()))
            .collect();
        let toml = format!(
            "nodes = [{}]\nenableprotect = false\n[env]\nregion = \"sh\"\nzone = \"{ZONE}\"\n\
             host = \"{host}\"\nDeployEnv = \"dev\"\n[httpServer]\naddr = \"{addr}\"\n\
             timeout = \"40s\"\n[httpClient]\ndial = \"1s\"\nkeepAlive = \"60s\"\ntimeout = \"1s\"\n\
             [log]\nstdout = true\n",
            nodes.join(", ")
        );
        std::fs::write(dir.path().join("discovery.toml"), toml).expect("write config");
        let log = std::fs::File::create(dir.path().join("node.log")).expect("create log");
        let mut cmd = Command::new(bin);
        cmd.arg("-conf")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        // SAFETY: prctl(2) in the child before exec, async-signal-safe: the node dies with the
        // test process even if that is killed.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut server = OtherServer { addr, child, dir };
        common::wait_until(&format!("{host} answering on {addr}"), || {
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                panic!("{host} exited during start-up: {status}\n{}", server.log());
            }
            TcpStream::connect(addr).ok()?;
            (Conn::open(addr).get("/discovery/nodes").status == 200).then_some(())
        });
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }
}

impl Drop for OtherServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- node {} log:\n{}\n---", self.addr, self.log());
        }
    }
}

// ---- raw HTTP, to look behind the client's back ------------------------------------------

/// The answer envelope of GET `target` on `addr`.
fn raw_get(addr: SocketAddr, target: &str) -> Value {
    let r = Conn::open(addr).get(target);
    assert_eq!(r.status, 200, "GET {target} on {addr}: {}", r.text());
    r.json()
}

/// The answer envelope of a form POST on `addr`.
fn raw_post(addr: SocketAddr, path: &str, form: &Form) -> Value {
    let r = Conn::open(addr).post(path, &form.encode());
    assert_eq!(r.status, 200, "POST {path} on {addr}: {}", r.text());
    r.json()
}

/// The instances of `appid` on `addr` by hostname, any status (empty when the app is absent).
fn instances_on(addr: SocketAddr, appid: &str) -> BTreeMap<String, Value> {
    let v = raw_get(
        addr,
        &format!("/discovery/fetch?appid={appid}&env=dev&status=3"),
    );
    if v["code"] == -404 {
        return BTreeMap::new();
    }
    assert_eq!(v["code"], 0, "fetch {appid} on {addr}: {v}");
    v["data"]["instances"]
        .as_object()
        .expect("instances")
        .values()
        .flat_map(|list| list.as_array().expect("zone list").iter())
        .map(|i| {
            (
                i["hostname"].as_str().expect("hostname").to_string(),
                i.clone(),
            )
        })
        .collect()
}

fn hosts_on(addr: SocketAddr, appid: &str) -> Vec<String> {
    instances_on(addr, appid).into_keys().collect()
}

/// Runs a blocking look at a server from async code.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Repeats `look` (blocking) every few milliseconds until it returns `Some`.
async fn eventually<T>(what: &str, mut look: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = blocking(&mut look) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- clients ----------------------------------------------------------------------------

fn config(seeds: &[SocketAddr], hostname: &str) -> Config {
    Config::new(seeds.iter().map(|a| a.to_string()))
        .region("sh")
        .zone(ZONE)
        .env("dev")
        .hostname(hostname)
        .request_timeout(Duration::from_secs(5))
        .backoff(Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
        ))
}

fn client(seeds: &[SocketAddr], hostname: &str) -> Client {
    Client::new(config(seeds, hostname)).expect("client")
}

fn service(port: u16) -> Service {
    Service::new(APP, [format!("grpc://127.0.0.1:{port}")]).version("v1")
}

fn hostnames(apps: &Apps, appid: &str) -> Vec<String> {
    let mut h: Vec<String> = apps
        .get(appid)
        .map(|info| info.iter().map(|i| i.hostname.clone()).collect())
        .unwrap_or_default();
    h.sort();
    h
}

/// How long a watch may take to see a change. The Go original checks a poll's timestamps
/// before it parks the poll, so a change landing in between wakes nobody and reaches the watch
/// only when that poll ends at the original's 30 s poll wait (`docs/COMPATIBILITY.md`); the SDK
/// then asks again and gets it at once. Against the original a watch may take that long.
fn watch_wait() -> Duration {
    const GO_POLL_WAIT: Duration = Duration::from_secs(30);
    match other_bin() {
        None => WAIT,
        Some(_) => WAIT + GO_POLL_WAIT,
    }
}

/// Reads the watch until `appid` has exactly `want`; every set on the way must be non-empty
/// and pass `check`.
async fn watch_until(watch: &mut Watch, appid: &str, want: &[&str], check: impl Fn(&Apps)) -> Apps {
    let wait = watch_wait();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let apps = tokio::time::timeout_at(deadline, watch.next())
            .await
            .unwrap_or_else(|_| panic!("no set with {appid} = {want:?} within {wait:?}"))
            .expect("the watch ended");
        assert!(
            apps.values().all(|info| !info.is_empty()),
            "an empty set was yielded: {apps:?}"
        );
        check(&apps);
        if hostnames(&apps, appid) == want {
            return apps;
        }
    }
}

// ---- the tests ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_providers_register_change_and_cancel() {
    let node = blocking(|| start_one("node-1"));
    let seeds = [node.addr()];
    let consumer = client(&seeds, "consumer-1");
    // Watching an app that does not exist yet.
    let mut watch = consumer.watch([APP, "other.app"]).expect("watch");
    let p1 = client(&seeds, "provider-1")
        .register(
            service(9001)
                .metadata("weight", "10")
                .metadata("list", "a,b"),
        )
        .await
        .expect("register p1");
    let apps = watch_until(&mut watch, APP, &["provider-1"], |_| {}).await;
    let seen = apps[APP].iter().next().expect("one instance").clone();
    assert_eq!(seen.addrs, ["grpc://127.0.0.1:9001"]);
    assert_eq!(seen.version, "v1");
    assert_eq!(seen.zone, ZONE);
    assert_eq!(seen.metadata["list"], "a,b");
    assert_eq!(seen.status, Status::Up);

    let p2 = client(&seeds, "provider-2")
        .register(service(9002))
        .await
        .expect("register p2");
    watch_until(&mut watch, APP, &["provider-1", "provider-2"], |_| {}).await;
    p2.cancel().await.expect("cancel p2");
    watch_until(&mut watch, APP, &["provider-1"], |_| {}).await;

    // One-shot reads agree.
    let info = consumer.fetch(APP).await.expect("fetch");
    assert_eq!(
        info.iter().map(|i| i.hostname.as_str()).collect::<Vec<_>>(),
        ["provider-1"]
    );
    assert_eq!(info.preferred(ZONE).len(), 1);
    let apps = consumer.fetchs([APP, "unknown.app"]).await.expect("fetchs");
    assert_eq!(
        apps.keys().collect::<Vec<_>>(),
        [APP],
        "unknown apps are left out"
    );
    let e = consumer
        .fetch("unknown.app")
        .await
        .expect_err("unknown app");
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.ecode(), Some(-404));

    // set: status and metadata reach the node (and, on ours, the watch at once; the Go
    // original wakes no poll on a set).
    p1.set_metadata(BTreeMap::from([("weight".to_string(), "20".to_string())]))
        .await
        .expect("set metadata");
    let addr = node.addr();
    eventually("weight 20 on the node", || {
        let i = instances_on(addr, APP).remove("provider-1")?;
        (i["metadata"]["weight"] == "20" && i["metadata"]["list"] == "a,b").then_some(())
    })
    .await;
    if other_bin().is_none() {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let apps = tokio::time::timeout_at(deadline, watch.next())
                .await
                .expect("the set reaches the watch")
                .expect("watch open");
            if apps[APP]
                .iter()
                .any(|i| i.metadata.get("weight").map(String::as_str) == Some("20"))
            {
                break;
            }
        }
    }
    assert_eq!(p1.service().metadata["weight"], "20");

    // The last provider leaves: the watch keeps its last set rather than yield an empty one;
    // the next set it yields is the next provider.
    p1.cancel().await.expect("cancel p1");
    let e = consumer.fetch(APP).await.expect_err("no instance left");
    assert!(e.is_not_found(), "{e}");
    let _p3 = client(&seeds, "provider-3")
        .register(service(9003))
        .await
        .expect("register p3");
    watch_until(&mut watch, APP, &["provider-3"], |apps| {
        assert!(!hostnames(apps, APP).is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_goes_on_at_another_node_when_its_node_is_killed() {
    let (a, b) = blocking(start_pair);
    let mut nodes = [a, b];
    // The consumer knows only node a; it learns b from infra.discovery.
    let consumer = client(&[nodes[0].addr()], "consumer-1");
    let (a_addr, b_addr) = (nodes[0].addr().to_string(), nodes[1].addr().to_string());
    eventually("the consumer to learn both nodes", || {
        let mut known = consumer.nodes();
        known.sort();
        let mut want = vec![a_addr.clone(), b_addr.clone()];
        want.sort();
        (known == want).then_some(())
    })
    .await;

    let mut watch = consumer.watch([APP]).expect("watch");
    let both = [nodes[0].addr(), nodes[1].addr()];
    let renewing = config(&both, "provider-1").renew_interval(Duration::from_millis(200));
    let _p1 = Client::new(renewing)
        .expect("client")
        .register(service(9001))
        .await
        .expect("register p1");
    watch_until(&mut watch, APP, &["provider-1"], |_| {}).await;
    for addr in both {
        eventually(&format!("provider-1 on {addr}"), || {
            (hosts_on(addr, APP) == ["provider-1"]).then_some(())
        })
        .await;
    }

    // Kill the node the consumer polls.
    let victim = consumer.nodes()[0].clone();
    let (dead, alive) = if victim == a_addr { (0, 1) } else { (1, 0) };
    blocking(|| nodes[dead].kill());
    let survivor = nodes[alive].addr();
    // The provider's renews go on at the survivor (the dead node forwards nothing any more).
    let renewed_at = |addr| {
        let r = raw_get(addr, "/discovery/fetch/all");
        r["data"][APP][0]["renew_timestamp"].as_i64()
    };
    let before = blocking(|| renewed_at(survivor)).expect("provider-1 on the survivor");
    eventually("a renew of provider-1 at the survivor", || {
        (renewed_at(survivor)? > before).then_some(())
    })
    .await;

    let _p2 = Client::new(config(&[survivor], "provider-2").self_discovery(false))
        .expect("client")
        .register(service(9002))
        .await
        .expect("register p2 on the survivor");
    // Every set after the kill still has provider-1: nothing is lost on the way.
    watch_until(&mut watch, APP, &["provider-1", "provider-2"], |apps| {
        assert!(
            hostnames(apps, APP).contains(&"provider-1".to_string()),
            "{apps:?}"
        );
    })
    .await;
    assert_eq!(
        consumer.nodes()[0],
        survivor.to_string(),
        "the consumer moved on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renew_answered_not_found_registers_again_with_the_current_state() {
    let node = blocking(|| start_one("node-1"));
    let addr = node.addr();
    let provider =
        Client::new(config(&[addr], "provider-1").renew_interval(Duration::from_millis(200)))
            .expect("client");
    let reg = provider
        .register(service(9001).metadata("weight", "10"))
        .await
        .expect("register");
    reg.set_status(Status::Waiting).await.expect("set status");
    eventually("status 2 on the node", || {
        (instances_on(addr, APP).get("provider-1")?["status"] == 2).then_some(())
    })
    .await;
    // Renews land.
    let first_renew = blocking(|| {
        let r = raw_get(addr, "/discovery/fetch/all");
        r["data"][APP][0]["renew_timestamp"]
            .as_i64()
            .expect("renew_timestamp")
    });
    eventually("a renew", || {
        let r = raw_get(addr, "/discovery/fetch/all");
        (r["data"][APP][0]["renew_timestamp"].as_i64()? > first_renew).then_some(())
    })
    .await;

    // Cancelled behind the provider's back: its next renew gets -404 and it registers again,
    // with the status and metadata it has now.
    let cancel = Form::new()
        .set("zone", ZONE)
        .set("env", "dev")
        .set("appid", APP)
        .set("hostname", "provider-1");
    let answer = blocking(|| raw_post(addr, "/discovery/cancel", &cancel));
    assert_eq!(answer["code"], 0, "{answer}");
    let back = eventually("provider-1 registered again", || {
        instances_on(addr, APP).remove("provider-1")
    })
    .await;
    assert_eq!(back["status"], 2, "{back}");
    assert_eq!(back["metadata"]["weight"], "10", "{back}");
    assert_eq!(back["addrs"][0], "grpc://127.0.0.1:9001");
    reg.cancel().await.expect("cancel");
    assert!(blocking(|| hosts_on(addr, APP)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_and_drop_cancel_and_end_the_watches() {
    let node = blocking(|| start_one("node-1"));
    let addr = node.addr();
    let provider = client(&[addr], "provider-1");
    let kept = provider.register(service(9001)).await.expect("register");
    let _other = provider
        .register(Service::new("demo.other", ["http://127.0.0.1:8000"]))
        .await
        .expect("register another app");
    match provider.register(service(9009)).await {
        Err(Error::AlreadyRegistered(appid)) => assert_eq!(appid, APP),
        other => panic!("a second registration of {APP}: {other:?}"),
    }
    let mut watch = provider.watch([APP]).expect("watch");
    watch_until(&mut watch, APP, &["provider-1"], |_| {}).await;

    // Dropping a registration cancels it in the background.
    let dropper = client(&[addr], "provider-2");
    let dropped = dropper.register(service(9002)).await.expect("register");
    drop(dropped);
    eventually("provider-2 gone after its drop", || {
        (!hosts_on(addr, APP).contains(&"provider-2".to_string())).then_some(())
    })
    .await;

    provider.shutdown().await;
    // shutdown returns after the cancels were answered.
    assert!(blocking(|| hosts_on(addr, APP)).is_empty());
    assert!(blocking(|| hosts_on(addr, "demo.other")).is_empty());
    // The watch ends (after any set it had already taken).
    tokio::time::timeout(WAIT, async { while watch.next().await.is_some() {} })
        .await
        .expect("the watch ends");
    assert!(matches!(provider.fetch(APP).await, Err(Error::Closed)));
    assert!(matches!(
        provider.register(service(9001)).await,
        Err(Error::Closed)
    ));
    // The handle's own cancel after shutdown is a no-op that reports success.
    kept.cancel().await.expect("cancel after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_is_timed_out_and_the_next_one_answers() {
    let node = blocking(|| start_one("node-1"));
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let provider = client(&[node.addr()], "provider-1");
    let _reg = provider.register(service(9001)).await.expect("register");

    let timeout = Duration::from_millis(300);
    let mut tried_silent_first = false;
    // Each client orders its seeds its own (random) way: take the first that starts with the
    // silent node (each does with probability 1/2).
    for n in 0..40 {
        let consumer = Client::new(
            config(&[silent_addr, node.addr()], &format!("consumer-{n}"))
                .self_discovery(false)
                .request_timeout(timeout),
        )
        .expect("client");
        if consumer.nodes()[0] != silent_addr.to_string() {
            continue;
        }
        tried_silent_first = true;
        let started = Instant::now();
        let info = consumer
            .fetch(APP)
            .await
            .expect("fetch through the other node");
        assert_eq!(info.len(), 1);
        assert!(
            started.elapsed() >= timeout,
            "the silent node was waited for"
        );
        assert_eq!(
            consumer.nodes()[0],
            node.addr().to_string(),
            "the silent node is set aside"
        );
        break;
    }
    assert!(
        tried_silent_first,
        "no client ordered the silent node first"
    );

    // Alone, the silent node gives a typed timeout.
    let lonely = Client::new(
        config(&[silent_addr], "consumer-x")
            .self_discovery(false)
            .request_timeout(timeout),
    )
    .expect("client");
    match lonely.fetch(APP).await {
        Err(Error::Timeout { node, after }) => {
            assert_eq!(node, silent_addr.to_string());
            assert_eq!(after, timeout);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_goes_out_as_a_bearer_header() {
    // A fake node that records the request head and answers a recorded fetch.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/client/tests/fixtures/ours/fetch.json"
    ))
    .expect("fixture");
    let fake = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let mut out = stream;
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .expect("write head");
        out.write_all(&body).expect("write body");
        head
    });
    let consumer = Client::new(
        config(&[addr], "consumer-1")
            .self_discovery(false)
            .token("s3cret-token"),
    )
    .expect("client");
    let info = consumer.fetch("demo.fixture").await.expect("fetch");
    assert_eq!(info.len(), 2);
    let head = blocking(|| fake.join().expect("fake node"));
    assert!(
        head[0].starts_with("GET /discovery/fetch?appid=demo.fixture&env=dev&status=1 "),
        "{head:?}"
    );
    assert!(
        head.iter()
            .any(|h| h.eq_ignore_ascii_case("authorization: Bearer s3cret-token")),
        "{head:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_request() {
    let none: [&str; 0] = [];
    assert!(matches!(
        Client::new(Config::new(none).env("dev").hostname("h")),
        Err(Error::Config(_))
    ));
    let c = Client::new(
        Config::new(["127.0.0.1:9"])
            .env("dev")
            .hostname("h")
            .zone(""),
    )
    .expect("client");
    assert!(matches!(
        c.register(service(1)).await,
        Err(Error::Config(_))
    ));
    let c = client(&["127.0.0.1:9".parse().expect("addr")], "h");
    assert!(matches!(
        c.register(Service::new(APP, none)).await,
        Err(Error::Config(_))
    ));
    assert!(matches!(c.watch(none), Err(Error::Config(_))));
}

#[test]
fn a_client_needs_a_runtime() {
    let r = Client::new(Config::new(["127.0.0.1:9"]).env("dev").hostname("h"));
    assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
}
