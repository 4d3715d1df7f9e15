//! The connections' deadlines on one core: one [`Timer`] per connection, re-armed for each wait
//! (idle, a request's arrival, a write, a parked poll's hold), and one task that sleeps until the
//! earliest and wakes the connections whose deadline passed.
//!
//! Why not monoio's timeouts: each of its timer entries is cache-padded to 640 bytes and aligns
//! every future holding one to 128, so a connection's task held about 3.5 KiB, most of it for
//! timers it was not using. Here a connection's timer is a slab key in its task, and its entry
//! holds a deadline and a waker. Re-arming to a later deadline (the usual case: each request
//! pushes the idle deadline further) is a store; the queue is only touched when a deadline moves
//! earlier than the one queued, or when a queued one passes.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use slab::Slab;

/// One connection's deadline.
#[derive(Default)]
struct Entry {
    /// When the current wait ends; `None` when nothing waits.
    deadline: Option<Instant>,
    /// The earliest time this entry is queued at, and the queue item's number. The queue may
    /// also hold later, superseded items for it; those are dropped when they come up.
    queued: Option<(Instant, u64)>,
    /// The deadline passed while armed.
    fired: bool,
    waker: Option<Waker>,
}

/// The deadlines of one core's connections. `Rc`/`RefCell`: only that core's tasks touch it.
#[derive(Default)]
pub struct Timers {
    entries: RefCell<Slab<Entry>>,
    /// (time, item number, entry key), earliest first. Item numbers tell an entry's current
    /// item from stale ones, also once a gone connection's key is reused.
    queue: RefCell<BinaryHeap<Reverse<(Instant, u64, usize)>>>,
    items: Cell<u64>,
    /// When the driving task will look at the queue next (`None`: when nudged).
    target: Cell<Option<Instant>>,
    nudged: Cell<bool>,
    driver: Cell<Option<Waker>>,
}

impl Timers {
    /// A timer for one connection; its entry goes when the timer is dropped.
    pub fn timer(self: &Rc<Self>) -> Timer {
        let key = self.entries.borrow_mut().insert(Entry::default());
        Timer {
            timers: self.clone(),
            key,
        }
    }

    /// Runs the core's deadlines: wakes each connection whose deadline passed, then sleeps until
    /// the next one. Runs as long as the core's runtime.
    pub async fn drive(self: Rc<Self>) {
        loop {
            let next = self.fire(Instant::now());
            self.target.set(next);
            let nudged = poll_fn(|cx| {
                if self.nudged.replace(false) {
                    Poll::Ready(())
                } else {
                    self.driver.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            });
            match next {
                Some(at) => {
                    monoio::select! {
                        _ = monoio::time::sleep_until(monoio::time::Instant::from_std(at)) => {},
                        _ = nudged => {},
                    }
                }
                None => nudged.await,
            }
        }
    }

    /// Fires every entry whose deadline is at or before `now`; returns the next queued time.
    fn fire(&self, now: Instant) -> Option<Instant> {
        let mut entries = self.entries.borrow_mut();
        let mut queue = self.queue.borrow_mut();
        while let Some(&Reverse((at, item, key))) = queue.peek() {
            if at > now {
                return Some(at);
            }
            queue.pop();
            let Some(e) = entries.get_mut(key) else {
                continue;
            };
            if e.queued != Some((at, item)) {
                // Superseded by an earlier time, or the key of a connection that has gone.
                continue;
            }
            e.queued = None;
            match e.deadline {
                Some(d) if d <= now => {
                    e.deadline = None;
                    e.fired = true;
                    if let Some(w) = e.waker.take() {
                        w.wake();
                    }
                }
                Some(d) => {
                    let item = self.next_item();
                    e.queued = Some((d, item));
                    queue.push(Reverse((d, item, key)));
                }
                None => {}
            }
        }
        None
    }

    fn arm(&self, key: usize, deadline: Instant) {
        let mut entries = self.entries.borrow_mut();
        let Some(e) = entries.get_mut(key) else {
            return;
        };
        e.deadline = Some(deadline);
        e.fired = false;
        if e.queued.is_some_and(|(q, _)| q <= deadline) {
            return;
        }
        let item = self.next_item();
        e.queued = Some((deadline, item));
        drop(entries);
        let mut queue = self.queue.borrow_mut();
        queue.push(Reverse((deadline, item, key)));
        // Connections that closed, and times superseded, leave entries behind; once they
        // outnumber the live ones the queue is rebuilt without them, so it stays within a
        // small multiple of the open connections.
        let live = self.entries.borrow().len();
        if queue.len() > 2 * live + 64 {
            let entries = self.entries.borrow();
            queue.retain(|&Reverse((at, item, key))| {
                entries
                    .get(key)
                    .is_some_and(|e| e.queued == Some((at, item)))
            });
        }
        drop(queue);
        if self.target.get().is_none_or(|t| deadline < t) {
            self.target.set(Some(deadline));
            self.nudged.set(true);
            if let Some(w) = self.driver.take() {
                w.wake();
            }
        }
    }

    fn next_item(&self) -> u64 {
        let n = self.items.get();
        self.items.set(n + 1);
        n
    }

    fn disarm(&self, key: usize) {
        if let Some(e) = self.entries.borrow_mut().get_mut(key) {
            e.deadline = None;
            e.waker = None;
        }
    }

    /// Whether the entry fired; if not, `waker` is woken when it does.
    fn check(&self, key: usize, waker: &Waker) -> bool {
        let mut entries = self.entries.borrow_mut();
        let Some(e) = entries.get_mut(key) else {
            return true;
        };
        if e.fired {
            return true;
        }
        match &e.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => e.waker = Some(waker.clone()),
        }
        false
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queue.borrow().len()
    }
}

/// A connection's deadline; one wait at a time.
pub struct Timer {
    timers: Rc<Timers>,
    key: usize,
}

/// The deadline passed first.
#[derive(Debug, PartialEq, Eq)]
pub struct Elapsed;

impl Timer {
    /// Runs `fut` until it completes or `deadline` passes, whichever comes first.
    ///
    /// A future type of its own rather than an `async fn`, which would hold `fut` twice.
    pub fn within<F: Future>(&mut self, deadline: Instant, fut: F) -> Within<'_, F> {
        self.timers.arm(self.key, deadline);
        Within { timer: self, fut }
    }
}

pin_project_lite::pin_project! {
    /// Future of [`Timer::within`]; dropping it disarms the timer.
    pub struct Within<'a, F> {
        timer: &'a mut Timer,
        #[pin]
        fut: F,
    }

    impl<F> PinnedDrop for Within<'_, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.timer.timers.disarm(this.timer.key);
        }
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if this.timer.timers.check(this.timer.key, cx.waker()) {
            return Poll::Ready(Err(Elapsed));
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.timers.entries.borrow_mut().try_remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run<F: Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn a_wait_ends_at_its_deadline_or_with_its_future() {
        run(async {
            let timers = Rc::new(Timers::default());
            monoio::spawn(timers.clone().drive());
            let mut t = timers.timer();
            let start = Instant::now();
            let never = std::future::pending::<()>();
            assert_eq!(
                t.within(start + Duration::from_millis(30), never).await,
                Err(Elapsed)
            );
            assert!(start.elapsed() >= Duration::from_millis(30));
            // A future that completes first wins, and its deadline does not fire later.
            let soon = monoio::time::sleep(Duration::from_millis(5));
            let far = Instant::now() + Duration::from_millis(20);
            assert_eq!(t.within(far, soon).await, Ok(()));
            monoio::time::sleep(Duration::from_millis(30)).await;
            assert!(!timers.entries.borrow()[t.key].fired);
            // An earlier deadline after a later one is still kept.
            let later = Instant::now() + Duration::from_secs(60);
            assert_eq!(t.within(later, async {}).await, Ok(()));
            let start = Instant::now();
            let never = std::future::pending::<()>();
            assert_eq!(
                t.within(start + Duration::from_millis(10), never).await,
                Err(Elapsed)
            );
            assert!(start.elapsed() < Duration::from_secs(30));
        });
    }

    #[test]
    fn timers_of_closed_connections_do_not_pile_up() {
        run(async {
            let timers = Rc::new(Timers::default());
            monoio::spawn(timers.clone().drive());
            let far = Instant::now() + Duration::from_secs(600);
            for _ in 0..10_000 {
                let mut t = timers.timer();
                assert_eq!(t.within(far, async {}).await, Ok(()));
            }
            assert!(timers.queued() <= 64 + 2, "{}", timers.queued());
            // Later deadlines of one connection reuse its queued one.
            let mut t = timers.timer();
            for n in 0..1_000 {
                let at = far + Duration::from_millis(n);
                assert_eq!(t.within(at, async {}).await, Ok(()));
            }
            assert!(timers.queued() <= 64 + 2, "{}", timers.queued());
        });
    }
}
