//! Single-threaded async helpers for one monoio runtime: `race` (the first
//! of two futures) and `LocalStop` (a stop signal many tasks wait on).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Which of two futures finished first.
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls `a` then `b`; returns the first to finish and drops the other.
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

/// A per-runtime stop signal that many tasks can wait on cheaply: one
/// watcher task polls a cross-thread flag and wakes every waiter once.
#[derive(Clone, Default)]
pub struct LocalStop {
    inner: Rc<StopInner>,
}

#[derive(Default)]
struct StopInner {
    fired: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl LocalStop {
    /// Fires the signal and wakes every waiter.
    pub fn fire(&self) {
        self.inner.fired.set(true);
        for w in self.inner.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Whether the signal has fired.
    pub fn fired(&self) -> bool {
        self.inner.fired.get()
    }

    /// Resolves once `fire` has been called.
    pub fn wait(&self) -> StopWait {
        StopWait {
            inner: self.inner.clone(),
            registered: false,
        }
    }

    /// Watches `flag` every `every` until it is set (or `limit` passes),
    /// then fires. Run it as its own task.
    pub async fn watch(self, flag: Arc<AtomicBool>, every: Duration, limit: std::time::Instant) {
        while !flag.load(Ordering::Relaxed) && std::time::Instant::now() < limit {
            monoio::time::sleep(every).await;
        }
        self.fire();
    }
}

/// The future `LocalStop::wait` returns.
pub struct StopWait {
    inner: Rc<StopInner>,
    registered: bool,
}

impl Future for StopWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.fired.get() {
            return Poll::Ready(());
        }
        if !self.registered {
            self.inner.wakers.borrow_mut().push(cx.waker().clone());
            self.registered = true;
        }
        Poll::Pending
    }
}
