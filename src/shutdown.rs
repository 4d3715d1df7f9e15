//! Shutdown as a value passed to whoever must react to it (pingora's `ShutdownWatch` shape).
//! [`Shutdown`] is the switch: the signal thread triggers it. [`ShutdownWatch`] is what
//! listeners, connections, parked polls and the cluster hold: a cheap `is_stopping` check for
//! hot paths and a `stopped` future for the few long-lived tasks that wait on it. The
//! housekeeping thread sleeps on it with [`Shutdown::wait`]. One mechanism for every thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[derive(Debug, Default)]
struct State {
    stopping: AtomicBool,
    /// Tasks waiting in [`ShutdownWatch::stopped`], by the id of their future. Only a few
    /// long-lived tasks per runtime wait here (accept loop, dispatcher, cluster loop).
    waiting: Mutex<Vec<(u64, Waker)>>,
    next_id: AtomicU64,
    /// For threads that block instead of awaiting.
    changed: Condvar,
}

/// A one-way switch from running to stopping.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    state: Arc<State>,
}

impl Shutdown {
    /// A switch in the running position.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the shutdown (idempotent): wakes every waiting task and thread.
    pub fn trigger(&self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        let waiting = std::mem::take(&mut *lock(&self.state.waiting));
        for (_, w) in waiting {
            w.wake();
        }
        self.state.changed.notify_all();
    }

    /// A watch on this switch.
    pub fn watch(&self) -> ShutdownWatch {
        ShutdownWatch {
            state: self.state.clone(),
        }
    }

    /// Blocks up to `timeout`; true at once if the switch was (or gets) triggered.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let guard = lock(&self.state.waiting);
        let (_guard, _) = self
            .state
            .changed
            .wait_timeout_while(guard, timeout, |_| {
                !self.state.stopping.load(Ordering::SeqCst)
            })
            .unwrap_or_else(|e| e.into_inner());
        self.state.stopping.load(Ordering::SeqCst)
    }
}

/// The receiving side of a [`Shutdown`].
#[derive(Debug, Clone)]
pub struct ShutdownWatch {
    state: Arc<State>,
}

impl ShutdownWatch {
    /// True once the switch is triggered.
    pub(crate) fn is_stopping(&self) -> bool {
        self.state.stopping.load(Ordering::Relaxed)
    }

    /// Resolves once the switch is triggered.
    pub(crate) fn stopped(&self) -> Stopped<'_> {
        Stopped {
            state: &self.state,
            id: self.state.next_id.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Future of [`ShutdownWatch::stopped`]; dropping it forgets its waker.
pub(crate) struct Stopped<'a> {
    state: &'a State,
    id: u64,
}

impl Future for Stopped<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut waiting = lock(&self.state.waiting);
        // Checked under the lock `trigger` takes, so a trigger cannot slip in between.
        if self.state.stopping.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        match waiting.iter_mut().find(|(id, _)| *id == self.id) {
            Some((_, w)) => w.clone_from(cx.waker()),
            None => waiting.push((self.id, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        lock(&self.state.waiting).retain(|(id, _)| *id != self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_sees_trigger_and_wakes_its_task() {
        let s = Shutdown::new();
        let w = s.watch();
        assert!(!w.is_stopping());
        let woken = Arc::new(AtomicBool::new(false));
        struct Flag(Arc<AtomicBool>);
        impl std::task::Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let waker = Waker::from(Arc::new(Flag(woken.clone())));
        let mut cx = Context::from_waker(&waker);
        let mut f = w.stopped();
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert_eq!(lock(&s.state.waiting).len(), 1, "one entry per future");
        assert!(!s.wait(Duration::from_millis(1)));
        s.trigger();
        assert!(woken.load(Ordering::SeqCst));
        assert!(w.is_stopping() && s.wait(Duration::from_secs(60)));
        assert!(Pin::new(&mut f).poll(&mut cx).is_ready());
        drop(f);
        assert!(lock(&s.state.waiting).is_empty());
    }
}
