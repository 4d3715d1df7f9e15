//! A wait bounded by a deadline, as every read and write of a connection is: ours
//! (`http::timers`: one slab entry per connection, re-armed for each wait) against monoio's
//! `time::timeout` (one entry in monoio's timer wheel per wait, 640 bytes, registered on the
//! wait's first pending poll and removed when it ends), which the connection loop used before.
//!
//! Each wait is pending once and then completes well before its deadline, the usual case for a
//! read that waits for its data or a write for room. 1,000 waits per iteration, each computing
//! its deadline from the clock as the connection loop does. The sizes of the two futures are
//! printed once: that, more than time, is what the change is for (a parked connection holds
//! one).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use discovery::http::timers::Timers;
use monoio::{LegacyDriver, RuntimeBuilder};

const WAITS: u64 = 1_000;
const LIMIT: Duration = Duration::from_secs(10);

/// Pending once (asking to be polled again), then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn bench(c: &mut Criterion) {
    let mut rt = RuntimeBuilder::<LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime");
    let timers = Rc::new(Timers::default());
    let mut timer = timers.timer();
    rt.block_on(async {
        monoio::spawn(timers.clone().drive());
        let ours = timer.within(Instant::now() + LIMIT, YieldOnce(false));
        let naive = monoio::time::timeout(LIMIT, YieldOnce(false));
        eprintln!(
            "future sizes: ours {} bytes, monoio's timeout {} bytes",
            std::mem::size_of_val(&ours),
            std::mem::size_of_val(&naive)
        );
    });
    let mut g = c.benchmark_group("deadline_wait");
    g.throughput(Throughput::Elements(WAITS));
    g.bench_function("ours", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..WAITS {
                    let waited = timer.within(Instant::now() + LIMIT, YieldOnce(false)).await;
                    assert!(waited.is_ok());
                }
            })
        })
    });
    g.bench_function("naive_monoio_timeout", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..WAITS {
                    let waited = monoio::time::timeout(LIMIT, YieldOnce(false)).await;
                    assert!(waited.is_ok());
                }
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
