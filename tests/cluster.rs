//! A cluster of real nodes on loopback: three in zone sh001 and one in sh002. Each node gets only
//! the nodes started before it as seeds; the others are learnt through `infra.discovery`
//! (self-discovery), which is part of what these tests show.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::{hosts, ident, reg, wait_until, Server, Setup};

/// A node of `zone` named `host` seeded with `seeds` of its own zone.
fn node(zone: &str, host: &str, seeds: &[SocketAddr]) -> Setup {
    // A node learnt through self-discovery (not in the others' configs) is admitted as a peer
    // by the shared peer token.
    Setup::new()
        .identity(zone, host)
        .nodes(seeds)
        .client("timeout", "2s")
        .auth("peerToken", "\"cluster-secret\"")
}

/// Three nodes of sh001 (a, b, c) and one of sh002 (d), each knowing the whole cluster.
struct Cluster {
    a: Server,
    b: Server,
    c: Server,
    d: Server,
    b_setup: Setup,
}

impl Cluster {
    fn start() -> Cluster {
        let a = node("sh001", "node-a", &[]).start();
        let b_setup = node("sh001", "node-b", &[a.addr]);
        let b = b_setup.clone().start();
        let c = node("sh001", "node-c", &[a.addr, b.addr]).start();
        // d starts once the zone's nodes know each other: a write that reaches a before a
        // knows c reaches c only with its next renew (30 s for d's own registration), as with
        // the original; c's start-up sync may have come before it.
        for s in [&a, &b, &c] {
            wait_for_nodes(s, 3);
        }
        let d = node("sh002", "node-d", &[])
            .zone_seeds("sh001", &[a.addr])
            .start();
        let cluster = Cluster {
            a,
            b,
            c,
            d,
            b_setup,
        };
        // Every node (d included) knows the four discovery instances.
        for s in cluster.all() {
            wait_for_hosts(
                s,
                "infra.discovery",
                "sh001",
                &["node-a", "node-b", "node-c"],
            );
            wait_for_hosts(s, "infra.discovery", "sh002", &["node-d"]);
        }
        cluster
    }

    fn all(&self) -> [&Server; 4] {
        [&self.a, &self.b, &self.c, &self.d]
    }
}

/// Waits until `server` lists `count` nodes of its zone, every one up.
fn wait_for_nodes(server: &Server, count: usize) {
    wait_until(&format!("{count} nodes up on {}", server.addr), || {
        let r = server.get("/discovery/nodes");
        let nodes = r.data();
        let list = nodes.as_array()?;
        (list.len() == count && list.iter().all(|n| n["status"] == 0)).then_some(())
    });
}

/// Sorted hostnames of `appid` in `zone` on `server` (empty if absent).
fn hosts_on(server: &Server, appid: &str, zone: &str) -> Vec<String> {
    let r = server.fetch(appid);
    if r.code() != 0 {
        return Vec::new();
    }
    let mut h = hosts(&r.data(), zone);
    h.sort();
    h
}

fn wait_for_hosts(server: &Server, appid: &str, zone: &str, want: &[&str]) {
    wait_until(
        &format!("{appid} in {zone} = {want:?} on {}", server.addr),
        || (hosts_on(server, appid, zone) == want).then_some(()),
    );
}

#[test]
fn every_write_reaches_every_node_in_both_zones() {
    let cl = Cluster::start();
    cl.a.register(&reg("demo", "h1"));
    for s in cl.all() {
        wait_for_hosts(s, "demo", "sh001", &["h1"]);
    }
    // A write of zone sh002 at d reaches sh001 (one node there forwards inside its zone).
    cl.d.register(&reg("demo", "z2").set("zone", "sh002"));
    for s in cl.all() {
        wait_for_hosts(s, "demo", "sh002", &["z2"]);
    }
    // set at c changes the status everywhere.
    let set = ident("demo", "h1")
        .without("hostname")
        .set("hostname", "h1")
        .set("status", "2");
    let r = cl.c.post("/discovery/set", &set);
    assert_eq!(r.code(), 0, "{}", r.text());
    for s in cl.all() {
        wait_until(&format!("h1 waiting on {}", s.addr), || {
            let info = s.fetch("demo").data();
            (common::instance(&info, "sh001", "h1")["status"] == 2).then_some(())
        });
    }
    // renew at b is answered and accepted by the others (no -404 loop: the instance exists).
    let r = cl.b.post("/discovery/renew", &ident("demo", "h1"));
    assert_eq!(r.code(), 0, "{}", r.text());
    // cancel at b removes it everywhere.
    let r = cl.b.post("/discovery/cancel", &ident("demo", "h1"));
    assert_eq!(r.code(), 0, "{}", r.text());
    for s in cl.all() {
        wait_for_hosts(s, "demo", "sh001", &[]);
    }
    // Between our nodes writes travel in batches; the counters say what was delivered.
    let m = cl.a.metrics();
    assert!(m["discovery_replication_ops_total"] > 0, "{m:?}");
    assert_eq!(m["discovery_replication_dropped_total"], 0, "{m:?}");
}

#[test]
fn a_poll_parked_on_one_node_wakes_on_a_register_at_another() {
    let cl = Cluster::start();
    let waiting = cl.b.addr;
    let poll = std::thread::spawn(move || {
        common::Conn::open(waiting)
            .get("/discovery/polls?appid=fresh.app&env=dev&hostname=c1&latest_timestamp=0")
    });
    cl.b.wait_parked(1);
    cl.a.register(&reg("fresh.app", "h1"));
    let r = poll.join().expect("poll thread");
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(hosts(&r.data()["fresh.app"], "sh001"), ["h1"]);
}

#[test]
fn nodes_lists_the_zone_with_each_peer_status() {
    let cl = Cluster::start();
    let listed = |s: &Server| -> Vec<(String, i64)> {
        let r = s.get("/discovery/nodes");
        r.data()
            .as_array()
            .expect("nodes list")
            .iter()
            .map(|n| {
                assert_eq!(n["zone"], "sh001");
                (
                    n["addr"].as_str().expect("addr").to_string(),
                    n["status"].as_i64().expect("status"),
                )
            })
            .collect()
    };
    let on_a = listed(&cl.a);
    assert_eq!(
        on_a[0],
        (cl.a.addr.to_string(), 0),
        "this node first: {on_a:?}"
    );
    let mut addrs: Vec<&str> = on_a.iter().map(|(a, _)| a.as_str()).collect();
    addrs.sort();
    let mut want = vec![
        cl.a.addr.to_string(),
        cl.b.addr.to_string(),
        cl.c.addr.to_string(),
    ];
    want.sort();
    assert_eq!(addrs, want);
    // A peer that stops answering is marked lost (1) on the next write that fails to reach it.
    let c_addr = cl.c.addr.to_string();
    let Cluster { a, mut c, .. } = cl;
    c.signal(libc::SIGKILL);
    c.wait_exit();
    let mut n = 0;
    wait_until("node c marked lost on a", || {
        n += 1;
        a.register(&reg("probe", &format!("h{n}")));
        listed(&a).contains(&(c_addr.clone(), 1)).then_some(())
    });
}

#[test]
fn a_killed_node_comes_back_with_every_instance_without_renews() {
    let mut cl = Cluster::start();
    cl.a.register(&reg("demo", "before"));
    wait_for_hosts(&cl.b, "demo", "sh001", &["before"]);
    let b_addr = cl.b.addr;
    cl.b.signal(libc::SIGKILL);
    cl.b.wait_exit();
    cl.a.register(&reg("demo", "while-down"));
    cl.d.register(&reg("demo", "z2").set("zone", "sh002"));
    wait_for_hosts(&cl.c, "demo", "sh001", &["before", "while-down"]);
    wait_for_hosts(&cl.c, "demo", "sh002", &["z2"]);
    // Same address, same config; nothing renews in between.
    cl.b = cl.b_setup.clone().http("addr", &b_addr.to_string()).start();
    cl.b.wait_log("start-up sync done");
    wait_for_hosts(&cl.b, "demo", "sh001", &["before", "while-down"]);
    wait_for_hosts(&cl.b, "demo", "sh002", &["z2"]);
}

#[test]
fn protect_mode_without_a_reachable_peer_refuses_reads_and_takes_writes() {
    // A seed that refuses connections: bind, learn the port, close.
    let dead = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let s = node("sh001", "lonely", &[dead])
        .top("enableprotect = true")
        .registry("protectTimeout", "60s")
        .start();
    s.wait_log("start-up sync failed");
    for target in [
        "/discovery/fetch?appid=demo&env=dev&status=1",
        "/discovery/nodes",
        "/discovery/fetch/all",
    ] {
        let r = s.get(target);
        assert_eq!(
            (r.status, &r.json()["code"]),
            (503, &serde_json::json!(-500)),
            "{target}: {}",
            r.text()
        );
    }
    s.register(&reg("demo", "h1"));
    let r = s.post("/discovery/renew", &ident("demo", "h1"));
    assert_eq!(r.code(), 0, "{}", r.text());
}

#[test]
fn a_peer_that_never_answers_does_not_slow_writes() {
    // Accepts connections (the kernel completes them) but never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let s = node("sh001", "writer", &[silent.local_addr().expect("addr")])
        .client("timeout", "3s")
        .start();
    let slowest = (0..40)
        .map(|n| {
            let started = Instant::now();
            s.register(&reg("demo", &format!("h{n}")));
            started.elapsed()
        })
        .max()
        .expect("some writes");
    // Writes are answered before replication, so none waits for the silent peer; half the
    // peer timeout is a bound no healthy write comes near even on a loaded machine.
    assert!(
        slowest < Duration::from_millis(1500),
        "slowest write took {slowest:?}"
    );
    // The stuck calls time out, the peer is marked lost and its ops are tried again (they are
    // dropped, and counted, only after every attempt failed).
    s.wait_metric("discovery_replication_retried_total", "> 0", |v| v > 0);
    assert_eq!(s.metric("discovery_peers_up"), 0);
    drop(silent);
}

#[test]
fn writes_survive_a_peer_closing_idle_connections() {
    // b closes connections idle for 300 ms; a's kept-alive connections to it go stale.
    let a = node("sh001", "node-a", &[]).start();
    let b = node("sh001", "node-b", &[a.addr])
        .http("idleTimeout", "300ms")
        .start();
    wait_for_nodes(&a, 2);
    for n in 0..16 {
        a.register(&reg("demo", &format!("h{n:02}")));
    }
    let all: Vec<String> = (0..16).map(|n| format!("h{n:02}")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    wait_for_hosts(&b, "demo", "sh001", &all);
    // Only the connection asking is left open on b once the idle ones were closed.
    b.wait_metric(
        "discovery_connections_open",
        "== 1 (idle ones closed)",
        |v| v == 1,
    );
    for n in 0..16 {
        let r = a.post("/discovery/cancel", &ident("demo", &format!("h{n:02}")));
        assert_eq!(r.code(), 0, "{}", r.text());
    }
    wait_for_hosts(&b, "demo", "sh001", &[]);
    assert_eq!(a.metric("discovery_replication_dropped_total"), 0);
}
