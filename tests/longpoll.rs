//! Long-polls: immediate answers, wake-ups on every kind of change, the hold deadline, many
//! parked polls at once, and clients that leave while parked.
//!
//! A poll is known to be parked when `/metrics` counts it in `discovery_polls_parked`; the
//! change that follows must then wake it long before the 30 s hold of these servers ends, so
//! an answer with data (not -304) proves the wake-up.

mod common;

use std::time::{Duration, Instant};

use common::{hosts, ident, reg, Conn, Server, Setup};
use serde_json::Value;

/// Sends a poll (`/discovery/poll` or `/discovery/polls` with `query`) without reading the answer.
fn send_poll(s: &Server, what: &str, query: &str) -> Conn {
    let mut c = s.connect();
    c.send_request("GET", &format!("/discovery/{what}?{query}"), "");
    c
}

/// Reads a poll's answer, which must carry data (code 0).
fn answer(c: &mut Conn) -> Value {
    let r = c.read_response();
    assert_eq!(r.code(), 0, "poll answer: {}", r.text());
    r.data()
}

#[test]
fn newer_app_answers_at_once() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("a", "h2").set("zone", "sh002"));
    s.register(&reg("a", "w1").set("status", "2"));
    let latest = s.latest("a");

    for since in [0, latest - 1] {
        let r = s.get(&format!(
            "/discovery/poll?appid=a&env=dev&hostname=c1&latest_timestamp={since}"
        ));
        assert_eq!(r.code(), 0, "{}", r.text());
        let info = r.data();
        assert_eq!(info["latest_timestamp"], latest);
        // Only UP instances, of every zone.
        assert_eq!(hosts(&info, "sh001"), ["h1"]);
        assert_eq!(hosts(&info, "sh002"), ["h2"]);
    }
    // Without latest_timestamp a poll counts as having nothing.
    let r = s.get("/discovery/poll?appid=a&env=dev&hostname=c1");
    assert_eq!(r.code(), 0, "{}", r.text());
    // With a zone, only that zone.
    let info = s
        .get("/discovery/poll?appid=a&env=dev&hostname=c1&zone=sh002&latest_timestamp=0")
        .data();
    let zones: Vec<&String> = info["instances"].as_object().unwrap().keys().collect();
    assert_eq!(zones, ["sh002"]);
    let r = s.get("/discovery/polls?appid=a&env=dev&hostname=c1&latest_timestamp=0");
    assert_eq!(hosts(&r.data()["a"], "sh001"), ["h1"]);
}

#[test]
fn register_wakes_a_parked_poll() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    let latest = s.latest("a");
    let mut c = send_poll(
        &s,
        "poll",
        &format!("appid=a&env=dev&hostname=c1&latest_timestamp={latest}"),
    );
    s.wait_parked(1);
    s.register(&reg("a", "h2"));
    let info = answer(&mut c);
    assert_eq!(hosts(&info, "sh001"), ["h1", "h2"]);
    assert!(info["latest_timestamp"].as_i64().unwrap() > latest);
    s.wait_parked(0);
    // The connection is kept for the next poll.
    assert_eq!(c.get("/discovery/nodes").code(), 0);
}

#[test]
fn cancel_wakes_a_parked_poll() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("a", "h2"));
    let latest = s.latest("a");
    let mut c = send_poll(
        &s,
        "polls",
        &format!("appid=a&env=dev&hostname=c1&latest_timestamp={latest}"),
    );
    s.wait_parked(1);
    assert_eq!(s.post("/discovery/cancel", &ident("a", "h2")).code(), 0);
    let data = answer(&mut c);
    assert_eq!(hosts(&data["a"], "sh001"), ["h1"]);
}

#[test]
fn set_wakes_a_parked_poll() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("a", "h2"));
    let latest = s.latest("a");
    let mut c = send_poll(
        &s,
        "poll",
        &format!("appid=a&env=dev&hostname=c1&latest_timestamp={latest}"),
    );
    s.wait_parked(1);
    let r = s.post("/discovery/set", &ident("a", "h2").set("status", "2"));
    assert_eq!(r.code(), 0, "{}", r.text());
    // Polls see UP instances only: h2 went WAITING.
    let info = answer(&mut c);
    assert_eq!(hosts(&info, "sh001"), ["h1"]);

    // Metadata only, with a set_timestamp older than the app's: still a change.
    let latest = info["latest_timestamp"].as_i64().unwrap();
    let mut c = send_poll(
        &s,
        "poll",
        &format!("appid=a&env=dev&hostname=c1&latest_timestamp={latest}"),
    );
    s.wait_parked(1);
    let r = s.post(
        "/discovery/set",
        &ident("a", "h1")
            .set("metadata", r#"{"weight":"3"}"#)
            .set("set_timestamp", "1"),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    let info = answer(&mut c);
    assert_eq!(info["instances"]["sh001"][0]["metadata"]["weight"], "3");
    assert!(info["latest_timestamp"].as_i64().unwrap() > latest);
}

#[test]
fn first_register_wakes_a_poll_on_an_unknown_app() {
    let s = Server::start();
    s.register(&reg("known", "h1"));
    let latest = s.latest("known");
    let mut c = send_poll(
        &s,
        "polls",
        &format!("appid=known,newborn&env=dev&hostname=c1&latest_timestamp={latest},0"),
    );
    s.wait_parked(1);
    s.register(&reg("newborn", "n1"));
    let r = c.read_response();
    assert_eq!(r.code(), 0, "{}", r.text());
    let body = r.json();
    let apps: Vec<&String> = body["data"].as_object().unwrap().keys().collect();
    assert_eq!(apps, ["newborn"]);
    assert_eq!(hosts(&body["data"]["newborn"], "sh001"), ["n1"]);
    assert_eq!(body["error"]["-404"], serde_json::json!([]));
}

#[test]
fn hold_ends_with_not_modified() {
    let s = Setup::new().registry("pollHold", "1s").start();
    s.register(&reg("a", "h1"));
    let latest = s.latest("a");
    let started = Instant::now();
    let mut c = send_poll(
        &s,
        "poll",
        &format!("appid=a&env=dev&hostname=c1&latest_timestamp={latest}"),
    );
    s.wait_parked(1);
    // A renew is not a change: the poll stays parked.
    assert_eq!(s.post("/discovery/renew", &ident("a", "h1")).code(), 0);
    let r = c.read_response();
    assert_eq!(r.code(), -304, "{}", r.text());
    assert!(r.json().get("data").is_none());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "answered after {:?}, before the 1s hold",
        started.elapsed()
    );
    assert_eq!(s.metric("discovery_poll_timeouts_total"), 1);
    s.wait_parked(0);
    // polls too, and the connection stays usable.
    c.send_request(
        "GET",
        &format!("/discovery/polls?appid=a&env=dev&hostname=c1&latest_timestamp={latest}"),
        "",
    );
    assert_eq!(c.read_response().code(), -304);
    assert_eq!(c.get("/discovery/nodes").code(), 0);
}

#[test]
fn every_poll_of_one_hostname_is_answered() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("b", "h1"));
    let (la, lb) = (s.latest("a"), s.latest("b"));
    let mut conns = [
        send_poll(
            &s,
            "poll",
            &format!("appid=a&env=dev&hostname=same&latest_timestamp={la}"),
        ),
        send_poll(
            &s,
            "poll",
            &format!("appid=a&env=dev&hostname=same&latest_timestamp={la}"),
        ),
        send_poll(
            &s,
            "polls",
            &format!(
                "appid=a&appid=b&env=dev&hostname=same&latest_timestamp={la}&latest_timestamp={lb}"
            ),
        ),
        send_poll(
            &s,
            "poll",
            &format!("appid=b&env=dev&hostname=same&latest_timestamp={lb}"),
        ),
    ];
    s.wait_parked(4);
    s.register(&reg("a", "h2"));
    for c in &mut conns[..3] {
        let r = c.read_response();
        assert_eq!(r.code(), 0, "{}", r.text());
        let data = r.data();
        let info = if data.get("a").is_some() {
            &data["a"]
        } else {
            &data
        };
        assert_eq!(hosts(info, "sh001"), ["h1", "h2"]);
    }
    // The poll on b alone is still parked.
    s.wait_parked(1);
    s.register(&reg("b", "h2"));
    let info = answer(&mut conns[3]);
    assert_eq!(hosts(&info, "sh001"), ["h1", "h2"]);
}

#[test]
fn one_register_wakes_250_parked_polls() {
    const POLLS: usize = 250;
    let s = Server::start();
    s.register(&reg("crowd", "h1"));
    let latest = s.latest("crowd");
    let mut conns: Vec<Conn> = (0..POLLS)
        .map(|n| {
            let what = if n % 2 == 0 { "poll" } else { "polls" };
            send_poll(
                &s,
                what,
                &format!("appid=crowd&env=dev&hostname=client{n}&latest_timestamp={latest}"),
            )
        })
        .collect();
    s.wait_parked(POLLS as i64);
    s.register(&reg("crowd", "newcomer"));
    for (n, c) in conns.iter_mut().enumerate() {
        let data = answer(c);
        let info = if n % 2 == 0 { &data } else { &data["crowd"] };
        assert_eq!(hosts(info, "sh001"), ["h1", "newcomer"], "poll {n}");
    }
    s.wait_parked(0);
}

#[test]
fn a_client_leaving_while_parked_is_forgotten() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    let latest = s.latest("a");
    let query = format!("appid=a&env=dev&hostname=c1&latest_timestamp={latest}");
    let leaving = send_poll(&s, "poll", &query);
    let leaving_too = send_poll(&s, "polls", &query);
    let mut staying = send_poll(&s, "poll", &query);
    s.wait_parked(3);
    let open = s.metric("discovery_connections_open");
    drop(leaving);
    leaving_too
        .stream
        .shutdown(std::net::Shutdown::Both)
        .expect("shutdown");
    s.wait_parked(1);
    s.wait_metric("discovery_connections_open", "to drop by two", |v| {
        v <= open - 2
    });
    drop(leaving_too);
    s.register(&reg("a", "h2"));
    assert_eq!(hosts(&answer(&mut staying), "sh001"), ["h1", "h2"]);
    s.wait_parked(0);
}

#[test]
fn a_woken_poll_leaves_its_connection_ready_for_the_next_request() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    let query = |latest: i64| format!("appid=a&env=dev&hostname=c1&latest_timestamp={latest}");
    let mut c = send_poll(&s, "poll", &query(s.latest("a")));
    s.wait_parked(1);
    s.register(&reg("a", "h2"));
    assert_eq!(hosts(&answer(&mut c), "sh001"), ["h1", "h2"]);
    // Answered, the poll no longer counts as parked although its connection is still open
    // and waiting for the client.
    s.wait_parked(0);
    // The same connection parks again and is woken again.
    c.send_request(
        "GET",
        &format!("/discovery/poll?{}", query(s.latest("a"))),
        "",
    );
    s.wait_parked(1);
    s.register(&reg("a", "h3"));
    assert_eq!(hosts(&answer(&mut c), "sh001"), ["h1", "h2", "h3"]);
    // And serves an ordinary request after that.
    let r = c.get("/discovery/fetch?appid=a&env=dev&status=1");
    assert_eq!(hosts(&r.data(), "sh001"), ["h1", "h2", "h3"]);
}

#[test]
fn a_woken_poll_whose_client_reads_slowly_gets_its_whole_answer() {
    // About 4.8 MB of answer to a client whose receive buffer is a few KB: the answer cannot
    // go out at once, and the rest must follow as the client reads.
    let s = Server::start();
    let blob = "x".repeat(60_000);
    let metadata = format!("{{\"blob\":\"{blob}\"}}");
    for n in 0..80 {
        s.register(&reg("big", &format!("h{n:02}")).set("metadata", &metadata));
    }
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&s.addr.into()).expect("connect");
    let mut c = Conn::from_stream(socket.into());
    let latest = s.latest("big");
    c.send_request(
        "GET",
        &format!("/discovery/poll?appid=big&env=dev&hostname=c1&latest_timestamp={latest}"),
        "",
    );
    s.wait_parked(1);
    s.register(&reg("big", "h80").set("metadata", &metadata));
    let info = answer(&mut c);
    let hosts = hosts(&info, "sh001");
    assert_eq!(hosts.len(), 81);
    for host in ["h00", "h40", "h80"] {
        let md = &common::instance(&info, "sh001", host)["metadata"];
        assert_eq!(md["blob"].as_str().map(str::len), Some(60_000), "{host}");
    }
    // The connection goes on.
    let r = c.get("/discovery/fetch?appid=big&env=dev&status=1");
    assert_eq!(r.code(), 0);
}
