//! Parked long-polls and the notifications that wake them. A change to an app sends one
//! notification to each runtime that subscribed to the [`Hub`]; each runtime's dispatcher then
//! wakes every poll parked there on that app ([`CoreWaiters`]), so the cost of a cross-thread
//! wake is paid once per core, not once per poll.

mod hub;
mod waiters;

use std::hash::{DefaultHasher, Hash, Hasher};

pub use hub::{Hub, Inbox};
pub use waiters::{Changed, CoreWaiters, Ticket};

/// The key parked polls and change notifications agree on: a hash of `(env, appid)`.
/// Collisions only cost a spurious wake: a woken poll re-checks its apps' timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WakeKey(u64);

impl WakeKey {
    /// The key of app `(env, appid)`.
    pub fn of(env: &str, appid: &str) -> WakeKey {
        let mut h = DefaultHasher::new();
        env.hash(&mut h);
        appid.hash(&mut h);
        WakeKey(h.finish())
    }
}
