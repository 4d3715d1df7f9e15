//! Trust boundaries on the real binary: who may join, replicate, write and read, with and
//! without `[auth]`, and the refusal of timestamps from the future. Strangers connect from
//! 127.0.0.2 while every node listens on 127.0.0.1, so a node's known peers (all on 127.0.0.1)
//! and a stranger differ by source address as they would across hosts.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{ident, instance, reg, wait_until, Conn, Form, Server, Setup};

const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// A node whose only seed is a peer address on 127.0.0.1 (nothing listens there), so
/// 127.0.0.1 is a known peer address and 127.0.0.2 is not.
fn node_with_a_known_peer() -> Server {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    Setup::new().nodes(&[dead]).start()
}

fn stranger(s: &Server) -> Conn {
    Conn::open_from(s.addr, STRANGER)
}

fn assert_forbidden(r: &common::Response, why: &str) {
    assert_eq!(r.status, 403, "{}", r.text());
    let body = r.json();
    assert_eq!(body["code"], -403, "{}", r.text());
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{}", r.text());
}

#[test]
fn a_stranger_cannot_join_replicate_or_act_as_a_peer() {
    let s = node_with_a_known_peer();
    let peers_before = s.metric("discovery_peers");
    let mut c = stranger(&s);
    // Joining: registering a discovery node, plainly or as a peer.
    let join = reg("infra.discovery", "evil").set("addrs", "http://10.6.6.6:7171");
    for form in [join.clone(), join.clone().set("replication", "true")] {
        let r = c.post("/discovery/register", &form.encode());
        assert_forbidden(&r, "peer-only action");
    }
    // Replicating, and writes that claim to be replicated.
    let r = c.post(
        "/discovery/replicate",
        "op=register&zone=sh001&env=dev&appid=a&hostname=h&addrs=x&status=1\n",
    );
    assert_forbidden(&r, "peer-only action");
    for flag in ["replication", "from_zone"] {
        let r = c.post(
            "/discovery/register",
            &reg("a", "h1").set(flag, "true").encode(),
        );
        assert_forbidden(&r, "peer-only action");
    }
    assert_eq!(s.metric("discovery_auth_refused_total"), 5);
    assert_eq!(s.metric("discovery_peers"), peers_before);
    let nodes = s.get("/discovery/nodes").data();
    assert!(!nodes.to_string().contains("10.6.6.6"), "{nodes}");
    // Plain client writes stay open, as in the Go original.
    assert_eq!(
        c.post("/discovery/register", &reg("a", "h1").encode())
            .code(),
        0
    );
    // The known peer's address may replicate.
    let mut peer = s.connect();
    let r = peer.post(
        "/discovery/register",
        &reg("a", "h2").set("replication", "true").encode(),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    let log = s.log_text();
    assert!(log.contains("refused remote=127.0.0.2"), "{log}");
}

#[test]
fn timestamps_from_the_future_are_refused() {
    let s = Setup::new()
        .registry("maxClockSkew", "60s")
        .test_client_is_a_peer()
        .start();
    s.register(&reg("a", "h1"));
    let latest = s.latest("a");
    let sec = 1_000_000_000i64;
    let cases: [(&str, &str, Form); 4] = [
        ("/discovery/register", "latest_timestamp", reg("a", "h2")),
        ("/discovery/register", "dirty_timestamp", reg("a", "h2")),
        (
            "/discovery/cancel",
            "latest_timestamp",
            ident("a", "h1").set("replication", "true"),
        ),
        (
            "/discovery/set",
            "set_timestamp",
            ident("a", "h1").set("status", "2"),
        ),
    ];
    for (path, key, form) in cases {
        for bad in [i64::MAX, now_ns() + 61 * sec] {
            let r = s.post(path, &form.clone().set(key, &bad.to_string()));
            assert_eq!(r.code(), -400, "{path} {key}={bad}: {}", r.text());
            assert!(
                r.message().starts_with(&format!("{key} is ")),
                "{}",
                r.text()
            );
            assert!(r.message().contains("maxClockSkew"), "{}", r.text());
        }
        let r = s.post(path, &form.clone().set(key, "soon"));
        assert_eq!(r.code(), -400, "{}", r.text());
    }
    let r = s.post(
        "/discovery/renew",
        &ident("a", "h1")
            .set("replication", "true")
            .set("dirty_timestamp", &i64::MAX.to_string()),
    );
    assert_eq!(r.code(), -400, "{}", r.text());
    // Nothing moved the app's clock: watchers still see every change.
    assert_eq!(s.latest("a"), latest);
    // Within the skew, and negative (read as not sent), are accepted.
    let soon = now_ns() + 59 * sec;
    let r = s.post(
        "/discovery/register",
        &reg("a", "h3").set("latest_timestamp", &soon.to_string()),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(s.latest("a"), soon);
    let r = s.post(
        "/discovery/register",
        &reg("a", "h4").set("dirty_timestamp", "-7"),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
}

/// A hostile peer: answers every call with -409 and an instance of its choosing.
fn hostile_peer(answer_instance: String) -> SocketAddr {
    common::scripted_peer(
        "go",
        format!(r#"{{"code":-409,"message":"conflict","ttl":1,"data":{answer_instance}}}"#),
    )
}

#[test]
fn a_conflict_answer_cannot_hand_over_another_instance_or_a_future_one() {
    let evil = |hostname: &str, dirty: i64| {
        format!(
            r#"{{"region":"sh","zone":"sh001","env":"dev","appid":"a","hostname":"{hostname}","addrs":["http://6.6.6.6:1"],"version":"evil","metadata":null,"status":1,"reg_timestamp":1,"up_timestamp":1,"renew_timestamp":1,"dirty_timestamp":{dirty},"latest_timestamp":1}}"#
        )
    };
    for (hostname, dirty) in [("victim", 1), ("h1", i64::MAX)] {
        let peer = hostile_peer(evil(hostname, dirty));
        let s = Setup::new().nodes(&[peer]).start();
        s.register(&reg("a", "h1"));
        // Each renew is forwarded to the peer, which answers -409 with its instance.
        for _ in 0..3 {
            assert_eq!(s.post("/discovery/renew", &ident("a", "h1")).code(), 0);
        }
        s.wait_log("conflict answer");
        let info = s.fetch("a").data();
        let mine = instance(&info, "sh001", "h1");
        assert_eq!(mine["version"], "v1", "{info}");
        assert!(!info.to_string().contains("6.6.6.6"), "{info}");
    }
}

#[test]
fn client_tokens_guard_writes_reads_and_admin_actions() {
    let s = Setup::new()
        .auth("writeToken", r#""w-secret""#)
        .auth("readToken", r#""r-secret""#)
        .auth("adminToken", r#""a-secret""#)
        .start();
    let mut c = s.connect();
    let form = reg("a", "h1").encode();
    // Writes: the write or admin token, as a header or a parameter.
    assert_forbidden(
        &c.post("/discovery/register", &form),
        "write token required",
    );
    assert_forbidden(
        &c.call_with_token("POST", "/discovery/register", &form, "wrong"),
        "write token",
    );
    assert_forbidden(
        &c.call_with_token("POST", "/discovery/register", &form, "r-secret"),
        "write token",
    );
    assert_eq!(
        c.call_with_token("POST", "/discovery/register", &form, "w-secret")
            .code(),
        0
    );
    let with_param = reg("a", "h2").set("token", "w-secret").encode();
    assert_eq!(c.post("/discovery/register", &with_param).code(), 0);
    assert_eq!(
        c.call_with_token(
            "POST",
            "/discovery/renew",
            &ident("a", "h1").encode(),
            "a-secret"
        )
        .code(),
        0
    );
    // Reads: the read token, or any higher one.
    let fetch = "/discovery/fetch?appid=a&env=dev&status=1";
    assert_forbidden(&c.get(fetch), "read token required");
    for t in ["r-secret", "w-secret", "a-secret"] {
        assert_eq!(c.call_with_token("GET", fetch, "", t).code(), 0, "{t}");
    }
    assert_eq!(c.get(&format!("{fetch}&token=r-secret")).code(), 0);
    // Admin: set, fetch/all and /metrics.
    let set = ident("a", "h1").set("status", "2").encode();
    assert_forbidden(
        &c.call_with_token("POST", "/discovery/set", &set, "w-secret"),
        "admin token required",
    );
    assert_eq!(
        c.call_with_token("POST", "/discovery/set", &set, "a-secret")
            .code(),
        0
    );
    assert_forbidden(
        &c.call_with_token("GET", "/discovery/fetch/all", "", "r-secret"),
        "admin token",
    );
    assert_eq!(
        c.call_with_token("GET", "/discovery/fetch/all", "", "a-secret")
            .code(),
        0
    );
    assert_eq!(c.get("/metrics").status, 403);
    let m = c.call_with_token("GET", "/metrics?x=1", "", "a-secret");
    assert_eq!(m.status, 200);
    assert!(
        m.text().contains("discovery_auth_refused_total 7"),
        "{}",
        m.text()
    );
    // A token sent as a parameter never reaches the access log.
    assert!(!s.log_text().contains("w-secret"));
}

#[test]
fn write_from_admits_writes_by_address() {
    let s = Setup::new()
        .auth("writeToken", r#""w-secret""#)
        .auth("writeFrom", r#"["127.0.0.1/32"]"#)
        .start();
    assert_eq!(s.post("/discovery/register", &reg("a", "h1")).code(), 0);
    let r = stranger(&s).post("/discovery/register", &reg("a", "h2").encode());
    assert_forbidden(&r, "write token required");
    // Reads stay open without a read token.
    assert_eq!(
        stranger(&s)
            .get("/discovery/fetch?appid=a&env=dev&status=1")
            .code(),
        0
    );
}

#[test]
fn a_peer_token_admits_peers_and_only_them() {
    let s = Setup::new().auth("peerToken", r#""p-secret""#).start();
    let line = "op=register&zone=sh001&env=dev&appid=a&hostname=h&addrs=x&status=1\n";
    let mut c = s.connect();
    // Without the token even a local caller is no peer (the token replaces address trust).
    assert_forbidden(&c.post("/discovery/replicate", line), "send the peer token");
    assert_forbidden(
        &c.call_with_token("POST", "/discovery/replicate", line, "nope"),
        "peer token",
    );
    let r = c.call_with_token("POST", "/discovery/replicate", line, "p-secret");
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(r.data()[0]["code"], 0, "{}", r.text());
}

#[test]
fn the_peer_set_is_capped_and_node_addresses_are_limited() {
    let s = Setup::new().auth("peerToken", r#""p-secret""#).start();
    let mut c = s.connect();
    let many: Vec<String> = (0..9)
        .map(|n| format!("addrs=http://10.9.9.{n}:7171"))
        .collect();
    let form = format!(
        "{}&replication=true&{}",
        reg("infra.discovery", "n1").without("addrs").encode(),
        many.join("&")
    );
    let r = c.call_with_token("POST", "/discovery/register", &form, "p-secret");
    assert_eq!(r.code(), -400, "{}", r.text());
    assert!(r.message().contains("at most 8 addrs"), "{}", r.text());

    let capped = Setup::new()
        .auth("peerToken", r#""p-secret""#)
        .cluster_key("maxPeers", "2")
        .start();
    let mut c = capped.connect();
    for n in 0..5 {
        let form = reg("infra.discovery", &format!("n{n}"))
            .set("addrs", &format!("http://10.9.9.{n}:7171"))
            .set("replication", "true")
            .encode();
        assert_eq!(
            c.call_with_token("POST", "/discovery/register", &form, "p-secret")
                .code(),
            0
        );
    }
    capped.wait_log("peer set is full");
    wait_until("the peer set to settle at its cap", || {
        (capped.metric("discovery_peers") == 2).then_some(())
    });
}

#[test]
fn a_node_without_auth_on_an_open_address_warns() {
    let s = Setup::new().http("addr", "0.0.0.0:0").start();
    s.wait_log("no [auth] configured on a non-loopback address");
    let quiet = Server::start();
    assert!(!quiet.log_text().contains("no [auth] configured"));
}

#[test]
fn the_dashboard_follows_the_same_rules() {
    let s = Setup::new()
        .auth("readToken", r#""r-secret""#)
        .auth("adminToken", r#""a-secret""#)
        .start();
    let mut c = s.connect();
    // The page and its assets hold no data: it loads, to ask for a token.
    assert_eq!(c.get("/").status, 200);
    assert_eq!(c.get("/ui/app.js").status, 200);
    // Its data follows the read rule, its config page the admin rule.
    assert_forbidden(&c.get("/ui/api/apps"), "read token required");
    assert_eq!(
        c.call_with_token("GET", "/ui/api/apps", "", "r-secret")
            .status,
        200
    );
    let overview = c.call_with_token("GET", "/ui/api/overview", "", "r-secret");
    assert_eq!(overview.status, 200, "{}", overview.text());
    assert_eq!(
        overview.json()["data"]["admin"],
        true,
        "{}",
        overview.text()
    );
    assert_forbidden(
        &c.call_with_token("GET", "/ui/api/config", "", "r-secret"),
        "admin token",
    );
    let config = c.call_with_token("GET", "/ui/api/config", "", "a-secret");
    assert_eq!(config.status, 200);
    assert!(!config.text().contains("a-secret") && !config.text().contains("r-secret"));
}
