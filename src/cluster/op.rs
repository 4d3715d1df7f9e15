//! A replicated write: what a core queues for the peers after applying a client's write. Its
//! form encodings live with each message in `wire`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use crate::registry::instance::Instance;
use crate::wire::replicate::OpKind;
use crate::wire::{cancel, register, renew, Hop};

/// A write to forward to peers.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Register(Arc<Instance>),
    Renew(Arc<Instance>),
    Cancel { inst: Arc<Instance>, latest_ts: i64 },
}

impl Op {
    /// Which of the four writes this is.
    pub(crate) fn kind(&self) -> OpKind {
        match self {
            Op::Register(_) => OpKind::Register,
            Op::Renew(_) => OpKind::Renew,
            Op::Cancel { .. } => OpKind::Cancel,
        }
    }

    /// Which queue of a peer the op goes to: ops on one instance keep their order.
    pub(crate) fn lane(&self, lanes: usize) -> usize {
        let mut h = DefaultHasher::new();
        match self {
            Op::Register(i) | Op::Renew(i) | Op::Cancel { inst: i, .. } => {
                (&i.env(), &i.appid(), &i.hostname).hash(&mut h)
            }
        }
        (h.finish() % lanes.max(1) as u64) as usize
    }

    /// The form sent for this op to a peer one `hop` away.
    pub(crate) fn form(&self, hop: Hop) -> String {
        match self {
            Op::Register(i) => register::form(i, hop),
            Op::Renew(i) => renew::form(i, hop),
            Op::Cancel { inst, latest_ts } => cancel::form(inst, *latest_ts, hop),
        }
    }
}
