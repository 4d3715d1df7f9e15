//! Parked long-polls. A change to an app sends one notification to each core ([`Hub`]); each
//! core's dispatcher then wakes every poll parked there on that app ([`CoreWaiters`]), so the
//! cost of a cross-thread wake is paid once per core, not once per poll.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use atomic_waker::AtomicWaker;
use slab::Slab;

/// The cross-thread side: one inbox per core.
#[derive(Debug)]
pub struct Hub {
    inboxes: Vec<Inbox>,
}

#[derive(Debug, Default)]
struct Inbox {
    /// Wake keys of apps changed since the core last looked.
    changed: Mutex<Vec<u64>>,
    shutdown: AtomicBool,
    dispatcher: AtomicWaker,
}

impl Hub {
    /// A hub for `cores` cores.
    pub fn new(cores: usize) -> Hub {
        Hub {
            inboxes: (0..cores).map(|_| Inbox::default()).collect(),
        }
    }

    /// Tells every core that the app with wake key `key` changed.
    pub fn notify(&self, key: u64) {
        for inbox in &self.inboxes {
            let mut changed = inbox.changed.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = changed.is_empty();
            changed.push(key);
            drop(changed);
            // A non-empty inbox already has a wake pending: the dispatcher drains all at once.
            if was_empty {
                inbox.dispatcher.wake();
            }
        }
    }

    /// Tells every core to answer its parked polls and stop.
    pub fn shutdown(&self) {
        for inbox in &self.inboxes {
            inbox.shutdown.store(true, Ordering::SeqCst);
            inbox.dispatcher.wake();
        }
    }
}

/// One parked poll's flag, set by the dispatcher.
#[derive(Default)]
struct Parked {
    woken: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Parked {
    fn wake(&self) {
        self.woken.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The polls parked on one core, by app wake key. `Rc`/`RefCell` on purpose: only the core's own
/// tasks touch it, and the cross-thread part is the [`Hub`].
#[derive(Default)]
pub struct CoreWaiters {
    parked: RefCell<HashMap<u64, Slab<Rc<Parked>>>>,
    shutting_down: Cell<bool>,
    count: Cell<usize>,
}

impl CoreWaiters {
    /// Parks a poll on every app of `keys` until [`Ticket::changed`] resolves.
    pub fn park(self: &Rc<Self>, keys: &[u64]) -> Ticket {
        let parked = Rc::new(Parked::default());
        let mut map = self.parked.borrow_mut();
        let slots = keys
            .iter()
            .map(|&k| (k, map.entry(k).or_default().insert(parked.clone())))
            .collect();
        self.count.set(self.count.get() + 1);
        Ticket {
            core: self.clone(),
            parked,
            slots,
        }
    }

    /// Polls parked on this core now.
    pub fn count(&self) -> usize {
        self.count.get()
    }

    /// True once the server is shutting down: parked polls answer at once.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.get()
    }

    fn wake_key(&self, key: u64) {
        if let Some(slab) = self.parked.borrow().get(&key) {
            for (_, p) in slab.iter() {
                p.wake();
            }
        }
    }

    fn wake_all(&self) {
        for slab in self.parked.borrow().values() {
            for (_, p) in slab.iter() {
                p.wake();
            }
        }
    }

    /// The core's dispatcher: drains the core's inbox and wakes the polls parked on the changed
    /// apps. Returns once shutdown was requested, after waking every parked poll.
    pub async fn dispatch(self: Rc<Self>, hub: Arc<Hub>, core: usize) {
        let Some(inbox) = hub.inboxes.get(core) else {
            return;
        };
        let mut batch = Vec::new();
        loop {
            std::future::poll_fn(|cx| {
                inbox.dispatcher.register(cx.waker());
                let mut changed = inbox.changed.lock().unwrap_or_else(|e| e.into_inner());
                std::mem::swap(&mut *changed, &mut batch);
                if batch.is_empty() && !inbox.shutdown.load(Ordering::SeqCst) {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            batch.sort_unstable();
            batch.dedup();
            for key in batch.drain(..) {
                self.wake_key(key);
            }
            if inbox.shutdown.load(Ordering::SeqCst) {
                self.shutting_down.set(true);
                self.wake_all();
                return;
            }
        }
    }
}

/// A parked poll's registration; dropping it unparks.
pub struct Ticket {
    core: Rc<CoreWaiters>,
    parked: Rc<Parked>,
    slots: Vec<(u64, usize)>,
}

impl Ticket {
    /// Resolves at the next change of a watched app (or at shutdown).
    pub fn changed(&self) -> Changed<'_> {
        Changed { ticket: self }
    }
}

/// Future of [`Ticket::changed`].
pub struct Changed<'a> {
    ticket: &'a Ticket,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let p = &self.ticket.parked;
        if p.woken.replace(false) || self.ticket.core.shutting_down() {
            Poll::Ready(())
        } else {
            p.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut map = self.core.parked.borrow_mut();
        for &(key, slot) in &self.slots {
            if let Some(slab) = map.get_mut(&key) {
                slab.try_remove(slot);
                if slab.is_empty() {
                    map.remove(&key);
                }
            }
        }
        self.core.count.set(self.core.count.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop_cx<R>(f: impl FnOnce(&mut Context<'_>) -> R) -> R {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        f(&mut cx)
    }

    #[test]
    fn wakes_only_polls_on_the_changed_app_and_unparks_on_drop() {
        let core = Rc::new(CoreWaiters::default());
        let a = core.park(&[1, 2]);
        let b = core.park(&[3]);
        assert_eq!(core.count(), 2);
        core.wake_key(2);
        noop_cx(|cx| {
            let mut fa = a.changed();
            let mut fb = b.changed();
            assert!(Pin::new(&mut fa).poll(cx).is_ready());
            assert!(Pin::new(&mut fb).poll(cx).is_pending());
        });
        drop(a);
        assert_eq!(core.count(), 1);
        assert!(!core.parked.borrow().contains_key(&1));
        drop(b);
        assert!(core.parked.borrow().is_empty());
    }
}
