//! Registry writes on apps of 10 and 1000 instances: register (a re-register of a present
//! host, so the app keeps its size), renew and cancel, on `Registry` and on a naive
//! `Mutex<HashMap<(env, appid), HashMap<hostname, Instance>>>`.
//!
//! Ours pays for its lock-free reads on register and cancel: each builds and publishes a new
//! snapshot (a copy of the app's instance list, `O(n)` pointer copies) and notifies the hub.
//! Renew, the hottest write, is an atomic store into the published instance: no lock, no
//! snapshot. The naive registry's writes are `O(1)` map operations under its lock, but every
//! read clones instances out (see the fetch bench) and all cores share the one lock, which a
//! single-threaded micro-benchmark does not show.
//!
//! The registry's hub has one core's inbox, drained between samples by polling that core's
//! dispatcher (with no parked polls to wake), so the inbox does not grow without bound.

mod common;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use common::{NaiveRegistry, APPID, ENV, NOW, ZONE};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use discovery::park::{CoreWaiters, Hub};
use discovery::registry::instance::Registration;
use discovery::registry::{InstanceKey, Registry};
use discovery::shutdown::Shutdown;

/// Our registry with its one core's dispatcher, polled by hand.
struct Ours {
    registry: Registry,
    dispatcher: Pin<Box<dyn Future<Output = ()>>>,
    /// Never triggered: keeps the dispatcher's watch alive.
    _stop: Shutdown,
}

impl Ours {
    fn with_instances(n: usize) -> Ours {
        let hub = Arc::new(Hub::new());
        let stop = Shutdown::new();
        let dispatcher =
            Box::pin(Rc::new(CoreWaiters::default()).dispatch(hub.subscribe(), stop.watch()));
        let ours = Ours {
            registry: Registry::new(hub, 1),
            dispatcher,
            _stop: stop,
        };
        for i in 0..n {
            ours.registry
                .register(&common::registration(i), NOW)
                .unwrap();
        }
        ours
    }

    /// Empties the hub's inbox, as the core's dispatcher does after a change.
    fn drain(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(self.dispatcher.as_mut().poll(&mut cx).is_pending());
    }
}

fn naive_with_instances(n: usize) -> NaiveRegistry {
    let naive = NaiveRegistry::default();
    for i in 0..n {
        naive.register(&common::registration(i), NOW);
    }
    naive
}

/// Times `op` alone, `iters` times, running `prepare` before each call outside the clock.
fn time_each<P, O: FnMut(P) -> R, R>(
    iters: u64,
    mut prepare: impl FnMut() -> P,
    mut op: O,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = prepare();
        let start = Instant::now();
        black_box(op(input));
        total += start.elapsed();
    }
    total
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("registry_write");
    for n in [10usize, 1000] {
        let mut ours = Ours::with_instances(n);
        let naive = naive_with_instances(n);
        let present = common::registration(n / 2);
        let host = present.hostname.clone();
        let extra = Registration {
            hostname: "cancel-me".into(),
            ..common::registration(n)
        };

        g.bench_with_input(BenchmarkId::new("register/ours", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(ours.registry.register(black_box(&present), NOW).unwrap());
                }
                let spent = start.elapsed();
                ours.drain();
                spent
            })
        });
        g.bench_with_input(BenchmarkId::new("register/naive", n), &n, |b, _| {
            b.iter(|| naive.register(black_box(&present), NOW))
        });

        let before = ours.registry.snapshot(ENV, APPID).unwrap();
        g.bench_with_input(BenchmarkId::new("renew/ours", n), &n, |b, _| {
            b.iter(|| {
                let key = InstanceKey {
                    env: ENV,
                    appid: APPID,
                    zone: ZONE,
                    hostname: black_box(&host),
                };
                ours.registry.renew(&key, NOW + 1)
            })
        });
        // A renew publishes nothing.
        assert!(Arc::ptr_eq(
            &before,
            &ours.registry.snapshot(ENV, APPID).unwrap()
        ));
        g.bench_with_input(BenchmarkId::new("renew/naive", n), &n, |b, _| {
            b.iter(|| naive.renew(ENV, APPID, black_box(&host), NOW + 1).unwrap())
        });

        // Each cancel removes a host registered just before it, outside the clock.
        g.bench_with_input(BenchmarkId::new("cancel/ours", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let spent = time_each(
                    iters,
                    || ours.registry.register(&extra, NOW).unwrap(),
                    |_| {
                        let key = InstanceKey {
                            env: ENV,
                            appid: APPID,
                            zone: ZONE,
                            hostname: "cancel-me",
                        };
                        ours.registry.cancel(&key, None, NOW).unwrap()
                    },
                );
                ours.drain();
                spent
            })
        });
        g.bench_with_input(BenchmarkId::new("cancel/naive", n), &n, |b, _| {
            b.iter_custom(|iters| {
                time_each(
                    iters,
                    || naive.register(&extra, NOW),
                    |_| naive.cancel(ENV, APPID, "cancel-me", NOW).unwrap(),
                )
            })
        });
        assert_eq!(ours.registry.size(), (1, n));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
