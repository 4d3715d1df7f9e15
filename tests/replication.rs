//! Replication that loses nothing it can retry, on real nodes: a peer that is briefly away gets
//! every write once it is back, an op the peer refuses (413) costs only that op, a peer that
//! answers a batch with the wrong number of results is not taken as having received it, and a
//! peer that answers only after the timeout keeps getting the writes queued for it.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{hosts, reg, wait_until, Server, Setup};

/// Two nodes of one zone (a knows b, b knows a) with short peer timeouts.
fn pair(b_setup: impl FnOnce(Setup) -> Setup) -> (Server, Server) {
    let a_addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let b = b_setup(
        Setup::new()
            .identity("sh001", "node-b")
            .client("timeout", "500ms"),
    )
    .nodes(&[a_addr])
    .start();
    let a = Setup::new()
        .identity("sh001", "node-a")
        .client("timeout", "500ms")
        .nodes(&[b.addr])
        .http("addr", &a_addr.to_string())
        .start();
    (a, b)
}

fn hosts_on(s: &Server, appid: &str) -> usize {
    let r = s.fetch(appid);
    if r.code() != 0 {
        return 0;
    }
    hosts(&r.data(), "sh001").len()
}

#[test]
fn a_peer_that_was_away_gets_every_write_when_it_is_back() {
    let (a, b) = pair(|s| s);
    a.register(&reg("warm", "h0"));
    wait_until("b to take writes", || {
        (hosts_on(&b, "warm") == 1).then_some(())
    });
    // b stops answering (as a paused VM); a keeps taking writes meanwhile.
    b.signal(libc::SIGSTOP);
    for n in 0..40 {
        a.register(&reg("away", &format!("h{n}")));
    }
    a.wait_metric("discovery_replication_retried_total", "above 0", |v| v > 0);
    b.signal(libc::SIGCONT);
    wait_until("b to receive all 40 writes", || {
        (hosts_on(&b, "away") == 40).then_some(())
    });
    assert_eq!(a.metric("discovery_replication_dropped_total"), 0);
}

#[test]
fn an_op_the_peer_refuses_costs_only_that_op() {
    // b takes bodies of at most 16 KiB; a register whose metadata is 6,000 `%` grows to 18 KB
    // once form-encoded for the peer, so b answers 413 to it alone.
    let (a, b) = pair(|s| s.http("maxBody", "16KiB"));
    let big = format!(r#"{{"blob":"{}"}}"#, "%".repeat(6_000));
    a.register(&reg("mixed", "big").set("metadata", &big));
    for n in 0..200 {
        a.register(&reg("mixed", &format!("h{n}")));
    }
    wait_until("b to receive the 200 normal writes", || {
        (hosts_on(&b, "mixed") == 200).then_some(())
    });
    a.wait_metric(
        "discovery_replication_dropped_total",
        "to count the refused op",
        |v| v >= 1,
    );
    let text = a.get("/metrics").text().to_string();
    assert!(text.contains("reason=\"refused\"} 1"), "{text}");
    assert!(text.contains("reason=\"unreachable\"} 0"), "{text}");
}

/// A peer that says it is ours and answers every batch with no results at all.
fn short_answering_peer() -> SocketAddr {
    common::scripted_peer(
        "discovery-rs",
        r#"{"code":0,"message":"0","ttl":1,"data":[]}"#.to_string(),
    )
}

#[test]
fn a_short_batch_answer_is_a_failure_not_a_delivery() {
    let peer = short_answering_peer();
    let a = Setup::new()
        .nodes(&[peer])
        .client("timeout", "500ms")
        .start();
    // The first single op teaches a that the peer is ours; then writes go in batches.
    for n in 0..30 {
        a.register(&reg("short", &format!("h{n}")));
    }
    a.wait_metric("discovery_replication_retried_total", "above 0", |v| v > 0);
    let text = a.get("/metrics").text().to_string();
    let sent: i64 = text
        .lines()
        .find(|l| l.starts_with("discovery_peer_ops_sent_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("a sent series for the peer");
    assert!(
        sent < 31,
        "{sent} ops counted as delivered to a peer that answered none\n{text}"
    );
}

fn version_on(s: &Server, host: &str) -> Option<(String, i64)> {
    let r = s.fetch("versions");
    if r.code() != 0 {
        return None;
    }
    let i = common::instance(&r.data(), "sh001", host);
    Some((i["version"].as_str()?.to_string(), i["status"].as_i64()?))
}

#[test]
fn a_set_reaches_a_peer_that_missed_the_last_register() {
    let (a, b) = pair(|s| s);
    a.register(&reg("versions", "h1").set("version", "v2"));
    wait_until("b to hold v2", || {
        (version_on(&b, "h1") == Some(("v2".into(), 1))).then_some(())
    });
    // b's copy goes back to v1 at the same version stamp, as if it had missed the register.
    let dirty =
        common::instance(&a.fetch("versions").data(), "sh001", "h1")["dirty_timestamp"].to_string();
    let stale = reg("versions", "h1")
        .set("version", "v1")
        .set("replication", "true")
        .set("dirty_timestamp", &dirty);
    let mut c = common::Conn::open(b.addr);
    let r = c.post("/discovery/register", &stale.encode());
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(version_on(&b, "h1"), Some(("v1".into(), 1)));
    // A set on a reaches b as the whole instance, so b ends with v2 and the new status (the set
    // applied to b's own copy would leave it at v1).
    let r = a.post(
        "/discovery/set",
        &common::ident("versions", "h1").set("status", "2"),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    wait_until("b to hold v2 with status 2", || {
        (version_on(&b, "h1") == Some(("v2".into(), 2))).then_some(())
    });
}

#[test]
fn a_renew_from_another_zone_compares_versions() {
    let s = Setup::new().test_client_is_a_peer().start();
    s.register(&reg("zones", "h1"));
    let dirty = common::instance(&s.fetch("zones").data(), "sh001", "h1")["dirty_timestamp"]
        .as_i64()
        .unwrap();
    let from_zone = |ts: i64| {
        common::ident("zones", "h1")
            .set("replication", "false")
            .set("from_zone", "true")
            .set("dirty_timestamp", &ts.to_string())
    };
    assert_eq!(
        s.post("/discovery/renew", &from_zone(dirty + 1)).code(),
        -404
    );
    assert_eq!(
        s.post("/discovery/renew", &from_zone(dirty - 1)).code(),
        -409
    );
    assert_eq!(s.post("/discovery/renew", &from_zone(dirty)).code(), 0);
}

#[test]
fn a_peer_answering_after_the_timeout_keeps_getting_new_writes() {
    let late = Arc::new(AtomicBool::new(false));
    let (peer, got) = common::recording_peer(
        "discovery-rs",
        r#"{"code":0,"message":"0","ttl":1,"data":null}"#.to_string(),
        late.clone(),
        Duration::from_millis(1500),
    );
    let a = Setup::new()
        .nodes(&[peer])
        .client("timeout", "500ms")
        .start();
    let seen = |what: &str| {
        let got = got.lock().unwrap();
        got.iter().any(|body| body.contains(what)).then_some(())
    };
    // Answered in time: a learns that the peer is a node of ours, which takes batches.
    a.register(&reg("late", "h0").set("version", "v0"));
    wait_until("the peer to get v0", || seen("version=v0"));
    // From now on every attempt times out at a, though the peer has each one.
    late.store(true, Ordering::Relaxed);
    a.register(&reg("late", "h0").set("version", "v1"));
    wait_until("the peer to get v1", || seen("version=v1"));
    // The attempt that carried v1 waits for its answer; these queue behind it, in the same
    // lane (one instance's ops keep their order).
    for n in 2..=20 {
        a.register(&reg("late", "h0").set("version", &format!("v{n}")));
    }
    // They ride on its retries, so the peer gets them long before that batch's attempts run
    // out (about 15 s, and only then would the ops behind it have been sent otherwise).
    wait_until("the peer to get v20", || seen("version=v20"));
    assert!(a.metric("discovery_replication_retried_total") > 0);
    assert_eq!(a.metric("discovery_replication_dropped_total"), 0);
}
