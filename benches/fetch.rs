//! The fetch answer path, from the registry lookup to a complete HTTP response in the
//! connection's output buffer, for apps of 10, 100 and 1000 instances.
//!
//! - `ours`: `Registry::snapshot` → `Snapshot::info` (cached bytes) → `envelope::ok_data` with
//!   `http::response` framing: one copy of the prepared answer into the buffer.
//! - `ours_after_change`: the first fetch after a write, which also encodes the new snapshot
//!   (each iteration re-registers a host outside the clock, then fetches).
//! - `naive`: lock, clone the instances out, `serde_json::to_vec` of the envelope, then a
//!   `write!`-formatted head (with a constant Date, in the baseline's favour) and the body.
//!
//! All three answers are checked to carry the same JSON before measuring.

mod common;

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{NaiveEnvelope, NaiveRegistry, APPID, ENV, NOW, ZONE};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use discovery::api::envelope;
use discovery::http::response::{Framing, Keep, Version};
use discovery::park::Hub;
use discovery::registry::Registry;

const STATUS_UP: u32 = 1;
const FRAMING: Framing = Framing {
    keep: Keep::Alive,
    version: Version::Http11,
};

fn ours(registry: &Registry, out: &mut Vec<u8>) {
    let snap = registry.snapshot(ENV, APPID).unwrap();
    let info = snap.info(Some(ZONE), STATUS_UP).unwrap();
    envelope::ok_data(out, FRAMING, &info);
}

fn naive(registry: &NaiveRegistry, out: &mut Vec<u8>) {
    let info = registry.info(ENV, APPID, Some(ZONE), STATUS_UP).unwrap();
    let body = serde_json::to_vec(&NaiveEnvelope {
        code: 0,
        message: "0",
        ttl: 1,
        data: info,
    })
    .unwrap();
    write!(
        out,
        "HTTP/1.1 200 OK\r\nServer: discovery-rs\r\nDate: Mon, 24 Nov 2025 16:00:00 GMT\r\n\
Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    out.extend_from_slice(&body);
}

fn body(response: &[u8]) -> serde_json::Value {
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    common::normalized_json(&response[at..])
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_answer");
    for n in [10usize, 100, 1000] {
        // No runtime subscribed to the hub: changes notify nobody, as on a node without polls.
        let registry = Registry::new(Arc::new(Hub::new()), 1);
        let baseline = NaiveRegistry::default();
        for i in 0..n {
            registry.register(&common::registration(i), NOW).unwrap();
            baseline.register(&common::registration(i), NOW);
        }
        let present = common::registration(n / 2);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        ours(&registry, &mut a);
        naive(&baseline, &mut b);
        assert_eq!(body(&a), body(&b));

        let mut out = Vec::with_capacity(64 * 1024);
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("ours", n), &n, |bch, _| {
            bch.iter(|| {
                out.clear();
                ours(black_box(&registry), &mut out);
            })
        });
        g.bench_with_input(BenchmarkId::new("ours_after_change", n), &n, |bch, _| {
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    registry.register(&present, NOW).unwrap();
                    out.clear();
                    let start = Instant::now();
                    ours(black_box(&registry), &mut out);
                    total += start.elapsed();
                }
                total
            })
        });
        g.bench_with_input(BenchmarkId::new("naive", n), &n, |bch, _| {
            bch.iter(|| {
                out.clear();
                naive(black_box(&baseline), &mut out);
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
