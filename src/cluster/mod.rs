//! The cluster: this node's peers and the replication of writes to them ([`lane`],
//! [`protocol`]), the start-up sync ([`sync`]) and its protection, and self-discovery
//! ([`membership`]). It runs on a thread of its own with its own monoio runtime, so no peer
//! call ever waits on a serving core; cores only queue ops through [`Cluster::forward`].
//!
//! It is given what it needs as handles — the registry, this node's identity, its settings —
//! and reaches nothing else.

mod handle;
mod lane;
mod membership;
pub(crate) mod op;
pub(crate) mod peer;
mod protocol;
mod runner;
mod sync;

pub(crate) use handle::{Cluster, Settings};
