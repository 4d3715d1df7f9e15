//! The cross-thread side of parking: one [`Inbox`] per runtime that subscribed, each holding the
//! keys of apps changed since that runtime last looked.

use std::sync::{Arc, Mutex};
use std::task::Poll;

use arc_swap::ArcSwap;
use atomic_waker::AtomicWaker;

use super::WakeKey;

/// Where the registry announces changes.
#[derive(Debug, Default)]
pub struct Hub {
    inboxes: ArcSwap<Vec<Arc<Inbox>>>,
}

/// One runtime's share of the hub.
#[derive(Debug, Default)]
pub struct Inbox {
    /// Keys of apps changed since the runtime last looked.
    changed: Mutex<Vec<WakeKey>>,
    /// The runtime's dispatcher task.
    dispatcher: AtomicWaker,
}

impl Hub {
    /// A hub nobody listens to yet.
    pub fn new() -> Hub {
        Hub::default()
    }

    /// A new inbox for the calling runtime; changes from now on reach it.
    pub fn subscribe(&self) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox::default());
        self.inboxes.rcu(|list| {
            let mut list = Vec::clone(list);
            list.push(inbox.clone());
            list
        });
        inbox
    }

    /// Tells every runtime that the app with key `key` changed.
    pub fn notify(&self, key: WakeKey) {
        for inbox in self.inboxes.load().iter() {
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
}

impl Inbox {
    /// Waits until something arrived and swaps it into `batch` (which must be empty).
    pub(super) async fn next_batch(&self, batch: &mut Vec<WakeKey>) {
        std::future::poll_fn(|cx| {
            self.dispatcher.register(cx.waker());
            let mut changed = self.changed.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *changed, batch);
            if batch.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }
}
