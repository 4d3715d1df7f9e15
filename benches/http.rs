//! Request framing: `parse_head` + `parse_body` on a typical fetch, a typical register and a
//! pipelined buffer of 16 requests, as the connection loop calls them.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use discovery::http::request::{parse_body, parse_head};

const MAX_BODY: usize = 1 << 20;

const FETCH: &[u8] = b"GET /discovery/fetch?appid=main.account.account-service&env=prod&zone=sh001&status=1 HTTP/1.1\r\n\
Host: 127.0.0.1:7171\r\n\
User-Agent: Go-http-client/1.1\r\n\
Accept-Encoding: gzip\r\n\r\n";

const REGISTER_BODY: &str = "region=sh&zone=sh001&env=prod&appid=main.account.account-service\
&hostname=account-service-7d9f8b6c4-00042&addrs=http%3A%2F%2F10.0.0.43%3A8000\
&addrs=grpc%3A%2F%2F10.0.0.43%3A9000&version=v1.4.2-20261120&status=1\
&metadata=%7B%22cluster%22%3A%22c1%22%2C%22color%22%3A%22blue%22%2C%22weight%22%3A%2210%22%7D";

fn register_request() -> Vec<u8> {
    format!(
        "POST /discovery/register HTTP/1.1\r\n\
Host: 127.0.0.1:7171\r\n\
User-Agent: Go-http-client/1.1\r\n\
Content-Length: {}\r\n\
Content-Type: application/x-www-form-urlencoded\r\n\
Accept-Encoding: gzip\r\n\r\n{REGISTER_BODY}",
        REGISTER_BODY.len()
    )
    .into_bytes()
}

/// Frames every request in `buf`; returns how many there were and the body bytes seen.
fn parse_all(mut buf: &[u8]) -> (usize, usize) {
    let (mut count, mut body_bytes) = (0, 0);
    while !buf.is_empty() {
        let head = parse_head(buf, MAX_BODY).unwrap().unwrap();
        let (body, used) = parse_body(&buf[head.head_len..], head.body, MAX_BODY)
            .unwrap()
            .unwrap();
        black_box(&head);
        body_bytes += body.len();
        buf = &buf[head.head_len + used..];
        count += 1;
    }
    (count, body_bytes)
}

fn bench(c: &mut Criterion) {
    let register = register_request();
    // 8 fetches and 8 registers, interleaved, in one read buffer.
    let pipelined: Vec<u8> = (0..16)
        .flat_map(|i| if i % 2 == 0 { FETCH } else { &register[..] })
        .copied()
        .collect();
    assert_eq!(parse_all(FETCH), (1, 0));
    assert_eq!(parse_all(&register), (1, REGISTER_BODY.len()));
    assert_eq!(parse_all(&pipelined), (16, 8 * REGISTER_BODY.len()));

    let mut g = c.benchmark_group("http_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_fetch", |b| b.iter(|| parse_all(black_box(FETCH))));
    g.bench_function("post_register", |b| {
        b.iter(|| parse_all(black_box(&register)))
    });
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipelined_16", |b| {
        b.iter(|| parse_all(black_box(&pipelined)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
