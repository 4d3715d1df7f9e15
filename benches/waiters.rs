//! Waking N parked long-polls (N = 1, 100, 10 000) after a change of their app.
//!
//! This drives the real wake path inside a monoio runtime: N tasks park on the app through
//! `CoreWaiters::park` and await `Ticket::changed`, and the core's dispatcher task
//! (`CoreWaiters::dispatch`) runs beside them. The clock starts right before `Hub::notify` and
//! stops when the last of the N tasks has run, seen its wake and dropped its ticket. Spawning and parking
//! the tasks happens outside the clock, before each wake.
//!
//! - `cross_thread`: the notify comes from another thread, as when the write happened on another
//!   core. Ours pays one foreign wake (the dispatcher's), then wakes the N polls locally.
//! - `same_thread`: the notify comes from a task of the same runtime: the local fan-out alone.
//!
//! The baseline, `naive`, keeps the polls' wakers in a `Mutex<HashMap<key, Vec<Waker>>>` and the
//! notifier wakes each one itself, so from another thread each poll costs a foreign wake. It
//! does no bookkeeping for polls that leave before a change (ours unparks on drop), which
//! favours it.
//!
//! Across threads the clock starts on the notifying thread (the monotonic clock is shared), so
//! the time that thread takes to be scheduled is not counted, while the time the runtime takes
//! to wake from its idle wait is, as on a real core.

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use discovery::park::{CoreWaiters, Hub, WakeKey};
use discovery::shutdown::Shutdown;
use monoio::{LegacyDriver, Runtime, RuntimeBuilder};

/// Counts tasks down and wakes the one waiting for zero.
struct Latch {
    left: Cell<usize>,
    waiter: Cell<Option<Waker>>,
}

impl Latch {
    fn new(n: usize) -> Rc<Latch> {
        Rc::new(Latch {
            left: Cell::new(n),
            waiter: Cell::new(None),
        })
    }

    fn count_down(&self) {
        self.left.set(self.left.get() - 1);
        if self.left.get() == 0 {
            if let Some(w) = self.waiter.take() {
                w.wake();
            }
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            if self.left.get() == 0 {
                Poll::Ready(())
            } else {
                self.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// A parked poll of the baseline: its woken flag and its task's waker.
type NaiveParked = (Arc<AtomicBool>, Waker);

/// The baseline: every parked poll's waker, woken one by one by whoever notifies.
#[derive(Default)]
struct NaiveWaiters {
    parked: Mutex<HashMap<WakeKey, Vec<NaiveParked>>>,
}

impl NaiveWaiters {
    fn park(&self, key: WakeKey, waker: Waker) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        let mut parked = self.parked.lock().unwrap();
        parked.entry(key).or_default().push((flag.clone(), waker));
        flag
    }

    fn notify(&self, key: WakeKey) {
        let woken = self.parked.lock().unwrap().remove(&key);
        for (flag, waker) in woken.into_iter().flatten() {
            flag.store(true, Ordering::Release);
            waker.wake();
        }
    }
}

/// Which implementation a run measures.
#[derive(Clone, Copy)]
enum Kind {
    Ours,
    Naive,
}

/// What tells the parked polls of `key` that their app changed.
#[derive(Clone)]
enum Notifier {
    Ours(Arc<Hub>),
    Naive(Arc<NaiveWaiters>),
}

impl Notifier {
    fn notify(&self, key: WakeKey) {
        match self {
            Notifier::Ours(hub) => hub.notify(key),
            Notifier::Naive(table) => table.notify(key),
        }
    }
}

/// Spawns `n` polls parked on `key`; returns once all are parked, with the latch they count
/// down as they wake.
async fn park(n: usize, key: WakeKey, core: &Rc<CoreWaiters>, notifier: &Notifier) -> Rc<Latch> {
    let parked = Latch::new(n);
    let woken = Latch::new(n);
    for _ in 0..n {
        let (parked, woken) = (parked.clone(), woken.clone());
        match notifier {
            Notifier::Ours(_) => {
                let core = core.clone();
                monoio::spawn(async move {
                    let ticket = core.park(&[key]);
                    parked.count_down();
                    ticket.changed().await;
                    drop(ticket);
                    woken.count_down();
                });
            }
            Notifier::Naive(table) => {
                let table = table.clone();
                monoio::spawn(async move {
                    let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
                    let flag = table.park(key, waker);
                    parked.count_down();
                    poll_fn(|_| {
                        if flag.load(Ordering::Acquire) {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    })
                    .await;
                    woken.count_down();
                });
            }
        }
    }
    parked.wait().await;
    woken
}

/// The notifying thread: for each message on `go`, notes the time, notifies and sends the
/// time back; ends when `go` closes.
fn serve(notifier: &Notifier, key: WakeKey, go: Receiver<()>, started: Sender<Instant>) {
    for () in go {
        let start = Instant::now();
        notifier.notify(key);
        started.send(start).unwrap();
    }
}

/// `iters` rounds of: park `n` polls, then time one notify until all `n` have woken.
fn run(
    rt: &mut Runtime<monoio::time::TimeDriver<LegacyDriver>>,
    kind: Kind,
    cross: bool,
    n: usize,
    iters: u64,
) -> Duration {
    let key = WakeKey::of(common::ENV, common::APPID);
    let hub = Arc::new(Hub::new());
    let stop = Shutdown::new();
    let core = Rc::new(CoreWaiters::default());
    let notifier = match kind {
        Kind::Ours => Notifier::Ours(hub.clone()),
        Kind::Naive => Notifier::Naive(Arc::default()),
    };
    let (go, go_rx) = mpsc::channel();
    let (started_tx, started) = mpsc::channel();
    std::thread::scope(|s| {
        if cross {
            s.spawn(|| serve(&notifier, key, go_rx, started_tx));
        }
        let total = rt.block_on(async {
            let dispatcher = monoio::spawn(core.clone().dispatch(hub.subscribe(), stop.watch()));
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let woken = park(n, key, &core, &notifier).await;
                if cross {
                    go.send(()).unwrap();
                    woken.wait().await;
                    let end = Instant::now();
                    total += end - started.recv().unwrap();
                } else {
                    let start = Instant::now();
                    notifier.notify(key);
                    woken.wait().await;
                    total += start.elapsed();
                }
            }
            stop.trigger();
            dispatcher.await;
            total
        });
        drop(go);
        total
    })
}

fn bench(c: &mut Criterion) {
    let mut rt = RuntimeBuilder::<LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime");
    let mut g = c.benchmark_group("wake_parked");
    for (mode, cross) in [("cross_thread", true), ("same_thread", false)] {
        for n in [1usize, 100, 10_000] {
            g.throughput(Throughput::Elements(n as u64));
            g.sample_size(if n >= 10_000 { 10 } else { 30 });
            for (name, kind) in [("ours", Kind::Ours), ("naive", Kind::Naive)] {
                let id = BenchmarkId::new(format!("{mode}/{name}"), n);
                g.bench_with_input(id, &n, |b, &n| {
                    b.iter_custom(|iters| run(&mut rt, kind, cross, n, iters))
                });
            }
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
