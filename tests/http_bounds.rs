//! The HTTP layer's bounds, on the real binary: chunked framing overhead, the 1 MiB head, the
//! write timeout, buffers given back after a large request, the connection caps (total and per
//! source address), the parked-poll cap, and bodies read as parameters only for POST.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{reg, wait_until, Conn, Server, Setup};

/// A chunked POST head for `path`.
fn chunked_head(path: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
}

/// `data` as one-byte chunks, each padded with an extension of `pad` bytes.
fn padded_chunks(data: &[u8], pad: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    for &b in data {
        raw.extend_from_slice(format!("1;{}\r\n", "p".repeat(pad)).as_bytes());
        raw.push(b);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

#[test]
fn chunked_framing_beyond_twice_max_body_gets_413() {
    let s = Setup::new().http("maxBody", "4KiB").start();
    // A valid register in padded 1-byte chunks: ~400 bytes of data, ~40 KB of framing, more than
    // 2 x maxBody (8 KiB). Refused with a 413 naming the limit, before the padding is all read.
    let form = reg("padded", "h1").encode();
    let mut c = s.connect();
    c.send(chunked_head("/discovery/register"));
    let body = padded_chunks(form.as_bytes(), 96);
    assert!(body.len() > 2 * 4096 + form.len());
    // The server may close before all is sent; the answer is what counts.
    let _ = c.stream.write_all(&body);
    let r = c.read_response();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("maxBody"), "{}", r.text());
    assert!(r.closes());

    // The same form with modest framing is accepted, even sent one byte per write.
    let mut c = s.connect();
    c.send(chunked_head("/discovery/register"));
    for b in padded_chunks(form.as_bytes(), 0).chunks(7) {
        c.send(b);
    }
    let r = c.read_response();
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(s.fetch("padded").code(), 0);
}

#[test]
fn a_go_sdk_polls_for_1500_appids_fits_the_head() {
    let s = Server::start();
    s.register(&reg("service.app-0000.main", "h1"));
    // As the Go SDK sends it: every appid and its timestamp in the URL, ~70 KB of head, over
    // the old 64 KiB limit and well within the Go original's 1 MiB.
    let mut target = "/discovery/polls?env=dev&hostname=c".to_string();
    for n in 0..1500 {
        target.push_str(&format!("&appid=service.app-{n:04}.main"));
    }
    for _ in 0..1500 {
        target.push_str("&latest_timestamp=0");
    }
    assert!(target.len() > 64 * 1024, "{}", target.len());
    let r = s.get(&target);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.code(), 0, "{}", r.text());
    assert!(
        r.data().get("service.app-0000.main").is_some(),
        "{}",
        r.text()
    );
}

#[test]
fn a_client_that_reads_nothing_is_disconnected_after_write_timeout() {
    let s = Setup::new().http("writeTimeout", "300ms").start();
    for n in 0..40 {
        s.register(
            &reg("wide", &format!("host-{n:02}"))
                .set("metadata", &format!(r#"{{"pad":"{}"}}"#, "p".repeat(1000))),
        );
    }
    let one = s.fetch("wide").body.len();
    // Far more answer than the socket buffers of both ends hold, and never read.
    let count = (64 << 20) / one + 1;
    let mut c = s.connect();
    // Served once first, so the server has accepted it and counts it among the open ones.
    assert_eq!(c.get("/discovery/nodes").code(), 0);
    assert!(s.metric("discovery_connections_open") >= 2);
    let request = "GET /discovery/fetch?appid=wide&env=dev&status=3 HTTP/1.1\r\n\r\n";
    c.send(request.repeat(count));
    let started = Instant::now();
    // The server gives up on the connection: the gauge counts only the scraping connection.
    s.wait_metric("discovery_connections_open", "<= 1", |v| v <= 1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // What was already in flight can still be read, then the connection ends.
    let mut sink = vec![0u8; 1 << 20];
    let mut read = 0usize;
    loop {
        match c.stream.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("after {read} bytes: {e}"),
        }
    }
    assert!(read < count * one, "{read} of {} bytes", count * one);
}

/// The server's resident memory in KiB.
fn rss_kib(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Opens `n` connections that each send a ~1 MiB body (to a GET route: answered 405, kept
/// alive) and stay open.
fn large_posts(s: &Server, n: usize) -> Vec<Conn> {
    let body = "x".repeat(1 << 20);
    let mut conns: Vec<Conn> = (0..n).map(|_| s.connect()).collect();
    for c in &mut conns {
        let r = c.post("/discovery/nodes", &body);
        assert_eq!(r.status, 405);
        assert!(!r.closes());
    }
    // A few small requests after, so the allocator runs its deferred frees.
    for c in &mut conns {
        assert_eq!(c.get("/discovery/nodes").code(), 0);
    }
    conns
}

#[test]
fn buffers_shrink_after_a_large_request() {
    let s = Setup::new().http("maxBody", "2MiB").start();
    // The allocator keeps some freed memory whatever the connections hold, so the claim is
    // about the cost of each more connection that once sent 1 MiB: before, each one kept a
    // read buffer of 1 MiB or more until its idle close (30 held +87 MiB).
    // The first connections also warm each core's heap (a one-off of a few MiB, which varied
    // with how the connections fell on the cores); the next 40 measure what one more costs.
    let _first = large_posts(&s, 20);
    let with_20 = rss_kib(&s);
    let _more = large_posts(&s, 40);
    let with_60 = rss_kib(&s);
    let per_conn = with_60.saturating_sub(with_20) / 40;
    assert!(
        per_conn < 384,
        "{per_conn} KiB more per connection ({with_20} KiB with 20, {with_60} KiB with 60)"
    );
}

/// A connection to `to` from source address `from`.
fn connect_from(from: [u8; 4], to: SocketAddr) -> Conn {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    Conn::from_stream(TcpStream::from(socket))
}

/// Reads the 503 a refused connection gets, and its close.
fn expect_refused(c: &mut Conn, limit: &str) {
    c.send("GET /discovery/nodes HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains(limit), "{}", r.text());
    assert!(r.closes());
    c.expect_closed();
}

#[test]
fn connections_beyond_max_conns_get_503() {
    let s = Setup::new().http_int("maxConns", 3).start();
    // Three held connections, each admitted (it was answered).
    let mut held: Vec<Conn> = (0..3).map(|_| s.connect()).collect();
    for c in &mut held {
        assert_eq!(c.get("/discovery/nodes").code(), 0);
    }
    let mut extra = s.connect();
    expect_refused(&mut extra, "httpServer.maxConns = 3");
    // A place freed is a place for the next one (the server sees the close a moment later).
    drop(held.pop());
    let refused = wait_until("a place freed", || {
        let mut c = s.connect();
        c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read_response();
        (r.status == 200).then(|| {
            r.text()
                .lines()
                .find_map(|l| l.strip_prefix("discovery_connections_refused_total "))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap()
        })
    });
    assert!(refused >= 1, "{refused}");
}

#[test]
fn connections_beyond_max_conns_per_ip_get_503_and_other_addresses_still_connect() {
    let s = Setup::new().http_int("maxConnsPerIp", 2).start();
    let mut held: Vec<Conn> = (0..2)
        .map(|_| connect_from([127, 0, 0, 2], s.addr))
        .collect();
    for c in &mut held {
        assert_eq!(c.get("/discovery/nodes").code(), 0);
    }
    let mut third = connect_from([127, 0, 0, 2], s.addr);
    expect_refused(&mut third, "httpServer.maxConnsPerIp = 2");
    // Another source address is not affected (loadgen spreads over 127.0.0.x for this reason).
    let mut other = connect_from([127, 0, 0, 3], s.addr);
    assert_eq!(other.get("/discovery/nodes").code(), 0);
    assert!(s.metric("discovery_connections_refused_total") >= 1);
}

#[test]
fn polls_beyond_max_parked_polls_get_503() {
    let s = Setup::new().http_int("maxParkedPolls", 2).start();
    s.register(&reg("watched", "h1"));
    let latest = s.latest("watched");
    let poll = format!(
        "GET /discovery/poll?appid=watched&env=dev&hostname=c&latest_timestamp={latest} HTTP/1.1\r\n\r\n"
    );
    let mut parked: Vec<Conn> = (0..2).map(|_| s.connect()).collect();
    for c in &mut parked {
        c.send(&poll);
    }
    s.wait_parked(2);
    let mut third = s.connect();
    third.send(&poll);
    let r = third.read_response();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.message().contains("httpServer.maxParkedPolls = 2"),
        "{}",
        r.text()
    );
    assert_eq!(s.metric("discovery_polls_refused_total"), 1);
    // The parked ones are still served when their app changes.
    s.register(&reg("watched", "h2"));
    for c in &mut parked {
        assert_eq!(c.read_response().code(), 0);
    }
}

#[test]
fn a_get_body_is_not_read_as_parameters() {
    let s = Server::start();
    s.register(&reg("bodied", "h1"));
    // The appid is only in the body: a GET does not read it (as the Go original's framework).
    let body = "appid=bodied";
    let mut c = s.connect();
    c.send(format!(
        "GET /discovery/fetch?env=dev&status=3 HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let r = c.read_response();
    assert_eq!(r.code(), -400, "{}", r.text());
    // The same parameters in the query are served.
    assert_eq!(
        c.get("/discovery/fetch?appid=bodied&env=dev&status=3")
            .code(),
        0
    );
    // A POST's body still counts.
    let r = c.post("/discovery/renew", &common::ident("bodied", "h1").encode());
    assert_eq!(r.code(), 0, "{}", r.text());
}
