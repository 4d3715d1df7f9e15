//! The polls parked on one runtime, by app. `Rc`/`RefCell` on purpose: only the runtime's own
//! tasks touch [`CoreWaiters`]; the cross-thread part is the [`Hub`](super::Hub)'s inbox, which
//! the runtime's dispatcher drains.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::{Inbox, WakeKey};
use crate::shutdown::ShutdownWatch;

/// One parked poll's wake-up flag, set by the dispatcher.
#[derive(Default)]
struct Waiter {
    woken: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Waiter {
    fn wake(&self) {
        self.woken.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The polls parked on one runtime, by the key of the app they watch.
#[derive(Default)]
pub struct CoreWaiters {
    parked: RefCell<HashMap<WakeKey, Slab<Rc<Waiter>>>>,
}

impl CoreWaiters {
    /// Parks a poll on every app of `keys` until [`Ticket::changed`] resolves.
    pub fn park(self: &Rc<Self>, keys: &[WakeKey]) -> Ticket {
        let waiter = Rc::new(Waiter::default());
        let mut map = self.parked.borrow_mut();
        let slots = keys
            .iter()
            .map(|&k| (k, map.entry(k).or_default().insert(waiter.clone())))
            .collect();
        Ticket {
            core: self.clone(),
            waiter,
            slots,
        }
    }

    /// Wakes the polls parked on the app with key `key`.
    fn wake_parked_on(&self, key: WakeKey) {
        if let Some(slab) = self.parked.borrow().get(&key) {
            for (_, w) in slab.iter() {
                w.wake();
            }
        }
    }

    fn wake_all(&self) {
        for slab in self.parked.borrow().values() {
            for (_, w) in slab.iter() {
                w.wake();
            }
        }
    }

    /// The runtime's dispatcher: drains `inbox` and wakes the polls parked on the changed apps.
    /// Once `shutdown` triggers it wakes every parked poll (they then answer -304) and returns.
    pub async fn dispatch(self: Rc<Self>, inbox: Arc<Inbox>, shutdown: ShutdownWatch) {
        let mut batch = Vec::new();
        loop {
            monoio::select! {
                _ = inbox.next_batch(&mut batch) => {},
                _ = shutdown.stopped() => {
                    self.wake_all();
                    return;
                }
            }
            batch.sort_unstable();
            batch.dedup();
            for key in batch.drain(..) {
                self.wake_parked_on(key);
            }
        }
    }
}

/// A parked poll's registration; dropping it unparks.
pub struct Ticket {
    core: Rc<CoreWaiters>,
    waiter: Rc<Waiter>,
    slots: Vec<(WakeKey, usize)>,
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
        let w = &self.ticket.waiter;
        if w.woken.replace(false) {
            Poll::Ready(())
        } else {
            w.waker.set(Some(cx.waker().clone()));
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
        let [k1, k2, k3] = [1, 2, 3].map(|n| WakeKey::of("dev", &format!("app{n}")));
        let a = core.park(&[k1, k2]);
        let b = core.park(&[k3]);
        core.wake_parked_on(k2);
        noop_cx(|cx| {
            let mut fa = a.changed();
            let mut fb = b.changed();
            assert!(Pin::new(&mut fa).poll(cx).is_ready());
            assert!(Pin::new(&mut fb).poll(cx).is_pending());
        });
        drop(a);
        assert!(!core.parked.borrow().contains_key(&k1));
        assert!(core.parked.borrow().contains_key(&k3));
        drop(b);
        assert!(core.parked.borrow().is_empty());
    }
}
