//! The hand-rolled HTTP/1.1 layer at its edges: keep-alive, pipelining, body framings,
//! `100-continue`, HTTP/1.0, malformed and oversized requests, and the idle and header timeouts.

mod common;

use std::io::{ErrorKind, Write};
use std::time::Duration;

use common::{ident, reg, Conn, Server, Setup};

/// A form POST head and body as one string.
fn post_bytes(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Whether the server still answers on a fresh connection.
fn still_serves(s: &Server) {
    let r = s.get("/discovery/nodes");
    assert_eq!(r.code(), 0, "{}", r.text());
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let s = Server::start();
    let mut c = s.connect();
    for n in 0..5 {
        let r = c.post("/discovery/register", &reg("a", &format!("h{n}")).encode());
        assert_eq!(r.code(), 0, "{}", r.text());
        assert!(!r.closes());
        assert_eq!(r.version, "HTTP/1.1");
        let r = c.get("/discovery/fetch?appid=a&env=dev&status=3");
        assert_eq!(
            common::hosts(&r.data(), "sh001").len(),
            n + 1,
            "{}",
            r.text()
        );
    }
    // `Connection: close` is honoured: the answer says so and the connection ends.
    c.send("GET /discovery/nodes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.code(), 0);
    assert!(r.closes());
    c.expect_closed();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = Server::start();
    let mut c = s.connect();
    let mut batch = String::new();
    batch.push_str(&post_bytes(
        "/discovery/register",
        &reg("piped", "h1").encode(),
    ));
    for appid in ["first", "second", "third"] {
        batch.push_str(&format!(
            "GET /discovery/fetch?appid={appid}&env=dev&status=3 HTTP/1.1\r\nHost: x\r\n\r\n"
        ));
    }
    batch.push_str("GET /discovery/fetch?appid=piped&env=dev&status=3 HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send(&batch);
    assert_eq!(c.read_response().code(), 0);
    for appid in ["first", "second", "third"] {
        let r = c.read_response();
        assert_eq!(r.code(), -404);
        assert_eq!(r.message(), format!("{appid} not found"));
    }
    let r = c.read_response();
    assert_eq!(common::hosts(&r.data(), "sh001"), ["h1"]);
    // A request pipelined behind a parked long-poll waits for the poll's answer.
    let latest = s.latest("piped");
    c.send(format!(
        "GET /discovery/poll?appid=piped&env=dev&hostname=c&latest_timestamp={latest} HTTP/1.1\r\n\r\n\
         GET /discovery/nodes HTTP/1.1\r\n\r\n"
    ));
    s.wait_parked(1);
    s.register(&reg("piped", "h2"));
    let r = c.read_response();
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(common::hosts(&r.data(), "sh001"), ["h1", "h2"]);
    let r = c.read_response();
    assert_eq!(r.data()[0]["zone"], "sh001");
}

#[test]
fn long_pipelines_with_large_answers_stay_in_order() {
    let s = Server::start();
    for n in 0..40 {
        s.register(
            &reg("wide", &format!("host-{n:02}"))
                .set("metadata", &format!(r#"{{"pad":"{}"}}"#, "p".repeat(200))),
        );
    }
    let mut c = s.connect();
    let mut batch = String::new();
    for n in 0..60 {
        // Alternate a large answer and a small one that names its request.
        batch.push_str("GET /discovery/fetch?appid=wide&env=dev&status=3 HTTP/1.1\r\n\r\n");
        batch.push_str(&format!(
            "GET /discovery/fetch?appid=probe-{n}&env=dev&status=3 HTTP/1.1\r\n\r\n"
        ));
    }
    c.send(&batch);
    let mut bytes = 0;
    for n in 0..60 {
        let r = c.read_response();
        bytes += r.body.len();
        assert_eq!(common::hosts(&r.data(), "sh001").len(), 40);
        let r = c.read_response();
        assert_eq!(r.message(), format!("probe-{n} not found"));
    }
    assert!(
        bytes > 4 * 64 * 1024,
        "answers span several flushes: {bytes} bytes"
    );
}

#[test]
fn content_length_and_chunked_bodies() {
    let s = Server::start();
    let mut c = s.connect();
    let body = reg("framed", "by-length").encode();
    c.send(post_bytes("/discovery/register", &body));
    assert_eq!(c.read_response().code(), 0);

    // The same form, chunked, torn apart inside a percent escape, with extensions and a trailer.
    let body = reg("framed", "by-chunks")
        .set("metadata", r#"{"k":"v,w"}"#)
        .encode();
    let cut = body.find('%').expect("an escape") + 1;
    let (one, two) = body.split_at(cut);
    c.send(format!(
        "POST /discovery/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x};ext=1\r\n{one}\r\n{:x}\r\n{two}\r\n0\r\nX-Trailer: t\r\n\r\n",
        one.len(),
        two.len()
    ));
    let r = c.read_response();
    assert_eq!(r.code(), 0, "{}", r.text());
    let info = s.fetch("framed").data();
    assert_eq!(common::hosts(&info, "sh001"), ["by-chunks", "by-length"]);
    assert_eq!(
        common::instance(&info, "sh001", "by-chunks")["metadata"]["k"],
        "v,w"
    );
    // The body arriving in several writes is waited for.
    let body = reg("framed", "slow").encode();
    let (one, two) = body.split_at(body.len() / 2);
    c.send(format!(
        "POST /discovery/register HTTP/1.1\r\nContent-Length: {}\r\n\r\n{one}",
        body.len()
    ));
    c.stream.flush().expect("flush");
    c.send(two);
    assert_eq!(c.read_response().code(), 0);
    assert_eq!(common::hosts(&s.fetch("framed").data(), "sh001").len(), 3);
}

#[test]
fn expect_100_continue() {
    let s = Server::start();
    let mut c = s.connect();
    let body = reg("eager", "h1").encode();
    c.send(format!(
        "POST /discovery/register HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    c.expect_bytes("HTTP/1.1 100 Continue\r\n\r\n");
    c.send(&body);
    let r = c.read_response();
    assert_eq!(r.code(), 0, "{}", r.text());
    // A client that sends the body right away gets no interim answer.
    c.send(format!(
        "POST /discovery/register HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        body
    ));
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.code(), 0);
}

#[test]
fn http_1_0_closes_unless_kept_alive() {
    let s = Server::start();
    let mut c = s.connect();
    c.send("GET /discovery/nodes HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.version, "HTTP/1.0");
    assert_eq!(r.code(), 0);
    c.expect_closed();

    let mut c = s.connect();
    for _ in 0..3 {
        c.send("GET /discovery/nodes HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.version, "HTTP/1.0");
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.code(), 0);
    }
    let body = reg("old", "h1").encode();
    c.send(format!(
        "POST /discovery/register HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let r = c.read_response();
    assert_eq!(r.code(), 0);
    assert!(r.closes());
    c.expect_closed();
    assert_eq!(s.fetch("old").code(), 0);
}

#[test]
fn malformed_requests_get_400_and_a_close() {
    let s = Server::start();
    let mut bystander = s.connect();
    assert_eq!(bystander.get("/discovery/nodes").code(), 0);
    for garbage in [
        &b"GE T / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET nowhere HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST /discovery/register HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut c = s.connect();
        c.send(garbage);
        let r = c.read_response();
        assert_eq!(
            r.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(garbage),
            r.text()
        );
        assert!(r.closes());
        c.expect_closed();
    }
    // A good request before the garbage on the same connection is still answered.
    let mut c = s.connect();
    c.send("GET /discovery/nodes HTTP/1.1\r\n\r\nGARBAGE GARBAGE\r\n\r\n");
    assert_eq!(c.read_response().code(), 0);
    assert_eq!(c.read_response().status, 400);
    c.expect_closed();
    // Other connections are unaffected.
    assert_eq!(bystander.get("/discovery/nodes").code(), 0);
    still_serves(&s);
}

#[test]
fn oversized_head_gets_431() {
    let s = Server::start();
    // Exactly 1 MiB (the Go original's `MaxHeaderBytes`) without the end of the head: the
    // server has read every byte when it gives up, so its close cannot turn into a reset that
    // swallows the answer.
    let mut c = s.connect();
    let mut head = b"GET /discovery/nodes HTTP/1.1\r\nX-Pad: ".to_vec();
    head.resize(1024 * 1024, b'a');
    c.send(&head);
    let r = c.read_response();
    assert_eq!(r.status, 431, "{}", r.text());
    assert!(r.closes());
    c.expect_closed();

    // Just under the limit is fine.
    let mut c = s.connect();
    let mut head = b"GET /discovery/nodes HTTP/1.1\r\nX-Pad: ".to_vec();
    head.resize(1024 * 1024 - 4, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    c.send(&head);
    assert_eq!(c.read_response().code(), 0);

    // Too many header fields count as a head too large.
    let mut c = s.connect();
    let mut head = "GET /discovery/nodes HTTP/1.1\r\n".to_string();
    for n in 0..100 {
        head.push_str(&format!("X-{n}: v\r\n"));
    }
    head.push_str("\r\n");
    c.send(head);
    assert_eq!(c.read_response().status, 431);
    c.expect_closed();
    still_serves(&s);
}

#[test]
fn oversized_body_gets_413() {
    let s = Setup::new().http("maxBody", "2KiB").start();
    // Refused from the head alone, before any body byte is sent.
    let mut c = s.connect();
    c.send("POST /discovery/register HTTP/1.1\r\nContent-Length: 2049\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.closes());
    c.expect_closed();

    // With `Expect: 100-continue` the refusal comes instead of the interim answer.
    let mut c = s.connect();
    c.send(
        "POST /discovery/register HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4096\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status, 413, "{}", r.text());
    c.expect_closed();

    // A chunked body whose first chunk size alone is over the limit.
    let mut c = s.connect();
    c.send("POST /discovery/register HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n801\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 413, "{}", r.text());
    c.expect_closed();

    // Exactly the limit is accepted and parsed: a renew padded to it is answered (-404: no
    // such instance), not refused. (A register that large would be refused with -400: its
    // form to the peers, which add their own fields, could not fit their maxBody.)
    let base = ident("big", "h1").set("pad", "").encode();
    let body = format!("{base}{}", "x".repeat(2048 - base.len()));
    assert_eq!(body.len(), 2048);
    let mut c = s.connect();
    c.send(post_bytes("/discovery/renew", &body));
    let r = c.read_response();
    assert_eq!(r.code(), -404, "{}", r.text());
    let r = c.post(
        "/discovery/register",
        &reg("big", "h1")
            .set("metadata", &format!(r#"{{"p":"{}"}}"#, "x".repeat(1900)))
            .encode(),
    );
    assert_eq!(r.code(), -400, "{}", r.text());
    assert!(
        r.message().contains("once forwarded to a peer"),
        "{}",
        r.text()
    );
    still_serves(&s);
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let s = Setup::new()
        .http("idleTimeout", "300ms")
        .http("headerTimeout", "300ms")
        .registry("pollHold", "1s")
        .start();
    let mut c = s.connect();
    assert_eq!(c.get("/discovery/nodes").code(), 0);
    c.expect_closed();
    // A parked long-poll is not idle: it outlives both timeouts and gets its -304.
    s.register(&reg("a", "h1"));
    let latest = s.latest("a");
    let mut c = s.connect();
    let r = c.get(&format!(
        "/discovery/poll?appid=a&env=dev&hostname=c&latest_timestamp={latest}"
    ));
    assert_eq!(r.code(), -304, "{}", r.text());
    assert!(!r.closes());
    assert_eq!(c.get("/discovery/nodes").code(), 0);
    c.expect_closed();
    // A connection that never sends anything is closed as well.
    Conn::open(s.addr).expect_closed();
    still_serves(&s);
}

#[test]
fn slow_heads_get_408() {
    let s = Setup::new().http("headerTimeout", "300ms").start();
    let mut c = s.connect();
    c.send("GET /discovery/nodes HTTP/1.1\r\nHost: exa");
    let r = c.read_response();
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.closes());
    c.expect_closed();

    // A body that stops short is timed out the same way.
    let mut c = s.connect();
    c.send("POST /discovery/register HTTP/1.1\r\nContent-Length: 100\r\n\r\nzone=sh001");
    let r = c.read_response();
    assert_eq!(r.status, 408, "{}", r.text());
    c.expect_closed();
    still_serves(&s);
}

/// Sends `prefix`, then one byte of `drip` every 50ms, until the server answers; returns the
/// answer, or fails once all of `drip` went out unanswered.
fn dribble(c: &mut Conn, prefix: &str, drip: &[u8]) -> common::Response {
    c.send(prefix);
    let pace = Duration::from_millis(50);
    c.stream.set_read_timeout(Some(pace)).expect("read timeout");
    for byte in drip {
        let mut probe = [0u8; 1];
        match c.stream.peek(&mut probe) {
            Ok(_) => {
                c.stream
                    .set_read_timeout(Some(common::WAIT))
                    .expect("read timeout");
                return c.read_response();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("connection failed while dribbling: {e}"),
        }
        c.send([*byte]);
    }
    panic!(
        "no answer after dribbling {} bytes over {:?}",
        drip.len(),
        pace * drip.len() as u32
    );
}

#[test]
fn a_request_dribbled_byte_by_byte_still_times_out() {
    // Each byte comes well within the 300ms limit, but the whole request does not.
    let s = Setup::new().http("headerTimeout", "300ms").start();
    let mut c = s.connect();
    let r = dribble(
        &mut c,
        "GET /discovery/nodes HTTP/1.1\r\nX-Slow: ",
        &[b'a'; 100],
    );
    assert_eq!(r.status, 408, "{}", r.text());
    c.expect_closed();

    let mut c = s.connect();
    let r = dribble(
        &mut c,
        "POST /discovery/register HTTP/1.1\r\nContent-Length: 200\r\n\r\n",
        &[b'a'; 100],
    );
    assert_eq!(r.status, 408, "{}", r.text());
    c.expect_closed();
    still_serves(&s);
}
