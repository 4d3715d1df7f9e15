//! One peer node: its address, zone and status, its counters, and its bounded outgoing queues
//! (one per lane, so ops on one instance keep their order). Sending is `lane`'s job.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use atomic_waker::AtomicWaker;

use super::op::Op;
use crate::clock;
use crate::metrics::{Histogram, BATCH_BOUNDS};

/// Connections (and queues) per peer.
pub(crate) const LANES: usize = 4;
/// Ops waiting per lane before new ones are dropped.
const QUEUE_BOUND: usize = 16 * 1024;

/// A peer's status as `nodes` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PeerStatus {
    /// The last call succeeded.
    Up = 0,
    /// The last call failed, or none was made yet.
    Lost = 1,
}

impl PeerStatus {
    /// The number `nodes` answers.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }
}

/// Why replicated ops were dropped, for the counters and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// The lane's queue was full (the peer is slow or down for long).
    QueueFull = 0,
    /// Every attempt failed (connection, timeout, 5xx, a malformed or short answer).
    Unreachable = 1,
    /// The peer refused the op itself (a 4xx, or an error code for it): sending it again
    /// would not help.
    Refused = 2,
    /// The node or the peer was stopping before the op could be sent.
    Shutdown = 3,
}

impl DropReason {
    /// Every reason, in the order of [`Peer::dropped`].
    pub(crate) const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Unreachable,
        DropReason::Refused,
        DropReason::Shutdown,
    ];

    /// The label metrics and logs use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Unreachable => "unreachable",
            DropReason::Refused => "refused",
            DropReason::Shutdown => "shutdown",
        }
    }
}

#[derive(Default)]
struct Lane {
    queue: Mutex<VecDeque<Op>>,
    waker: AtomicWaker,
}

/// A peer and its outgoing queues.
pub(crate) struct Peer {
    /// As configured or discovered: `host:port`.
    pub(crate) addr: String,
    pub(crate) zone: String,
    /// In this node's zone (gets every write) or another (gets client writes, re-forwards).
    pub(crate) own_zone: bool,
    status: AtomicU8,
    /// Ops dropped, by [`DropReason`].
    dropped: [AtomicU64; 4],
    /// Ops delivered, and the requests that carried them (fewer when batched).
    pub(crate) ops_sent: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    /// Ops sent again after a failed attempt, or rerouted to another node of the zone.
    pub(crate) retried: AtomicU64,
    /// Ops per request sent (written by the cluster thread only).
    pub(crate) batch_sizes: Histogram<{ BATCH_BOUNDS.len() }>,
    /// Unix time in nanoseconds of the last successful call; 0 before the first.
    last_ok_ns: AtomicI64,
    /// The peer named itself ours: ops go to it in batches.
    pub(super) ours: AtomicBool,
    /// Set when the peer left the cluster or the node is stopping: lanes finish their queue
    /// and end.
    closing: AtomicBool,
    lanes: [Lane; LANES],
}

impl Peer {
    /// A peer not contacted yet (lost until a call succeeds).
    pub(crate) fn new(addr: String, zone: String, own_zone: bool) -> Peer {
        Peer {
            addr,
            zone,
            own_zone,
            status: AtomicU8::new(PeerStatus::Lost.code()),
            dropped: Default::default(),
            ops_sent: AtomicU64::new(0),
            requests_sent: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            batch_sizes: Histogram::default(),
            last_ok_ns: AtomicI64::new(0),
            ours: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            lanes: Default::default(),
        }
    }

    /// Up after a successful call, lost after a failed one.
    pub(crate) fn status(&self) -> PeerStatus {
        if self.status.load(Ordering::Relaxed) == PeerStatus::Up.code() {
            PeerStatus::Up
        } else {
            PeerStatus::Lost
        }
    }

    /// Unix time in nanoseconds of the last successful call (0: none yet).
    pub(crate) fn last_ok_ns(&self) -> i64 {
        self.last_ok_ns.load(Ordering::Relaxed)
    }

    /// What software the peer runs: "ours", "go" (the original, or anything not naming itself
    /// ours), or "unknown" before it first answered.
    pub(crate) fn kind(&self) -> &'static str {
        if self.ours.load(Ordering::Relaxed) {
            "ours"
        } else if self.last_ok_ns() == 0 {
            "unknown"
        } else {
            "go"
        }
    }

    /// Ops dropped for `reason`.
    pub(crate) fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    /// Ops dropped for any reason.
    pub(crate) fn dropped_total(&self) -> u64 {
        DropReason::ALL.iter().map(|&r| self.dropped(r)).sum()
    }

    /// Records the outcome of a call, logging changes.
    pub(crate) fn mark(&self, status: PeerStatus, why: &dyn std::fmt::Display) {
        if status == PeerStatus::Up {
            self.last_ok_ns.store(clock::now_ns(), Ordering::Relaxed);
        }
        if self.status.swap(status.code(), Ordering::Relaxed) != status.code() {
            match status {
                PeerStatus::Up => tracing::info!(peer = %self.addr, zone = %self.zone, "peer up"),
                PeerStatus::Lost => {
                    tracing::warn!(peer = %self.addr, zone = %self.zone, error = %why, "peer lost")
                }
            }
        }
    }

    /// Queues `op` without waiting; drops it (counted) when the lane is full or the peer is
    /// closing, since its lanes may have ended.
    pub(crate) fn submit(&self, op: Op) {
        if self.closing() {
            self.drop_ops(1, DropReason::Shutdown);
            return;
        }
        let lane = &self.lanes[op.lane(LANES)];
        let mut q = lane.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= QUEUE_BOUND {
            drop(q);
            self.drop_ops(1, DropReason::QueueFull);
            return;
        }
        let was_empty = q.is_empty();
        q.push_back(op);
        drop(q);
        if was_empty {
            lane.waker.wake();
        }
    }

    /// Counts `n` ops lost for reason `why`.
    pub(super) fn drop_ops(&self, n: u64, why: DropReason) {
        if n == 0 {
            return;
        }
        let before = self.dropped[why as usize].fetch_add(n, Ordering::Relaxed);
        // Log the first drop and then every thousandth, not every op of a dead peer.
        if before == 0 || (before + n) / 1000 > before / 1000 {
            tracing::warn!(peer = %self.addr, dropped = before + n, why = why.name(), "replication ops dropped");
        }
    }

    /// Asks the lanes to finish what is queued and stop.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for lane in &self.lanes {
            lane.waker.wake();
        }
    }

    /// True once [`Peer::close`] was called.
    pub(super) fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Ops waiting in all lanes.
    pub(crate) fn queued(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| l.queue.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// The next op of a lane; `None` once the peer is closing and the lane is empty.
    pub(super) async fn next(&self, lane: usize) -> Option<Op> {
        let lane = &self.lanes[lane];
        std::future::poll_fn(|cx| {
            lane.waker.register(cx.waker());
            let mut q = lane.queue.lock().unwrap_or_else(|e| e.into_inner());
            match q.pop_front() {
                Some(op) => Poll::Ready(Some(op)),
                None if self.closing() => Poll::Ready(None),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Up to `max` more ops of the lane that are already waiting.
    pub(super) fn take(&self, lane: usize, max: usize) -> Vec<Op> {
        let mut q = self.lanes[lane]
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = q.len().min(max);
        q.drain(..n).collect()
    }

    /// The ops of the lane already waiting, from the front, for as long as `fits` takes them.
    pub(super) fn take_while(&self, lane: usize, mut fits: impl FnMut(&Op) -> bool) -> Vec<Op> {
        let mut q = self.lanes[lane]
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = q.iter().take_while(|op| fits(op)).count();
        q.drain(..n).collect()
    }

    /// Empties every lane, returning how many ops they held.
    pub(super) fn clear(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| {
                let mut q = l.queue.lock().unwrap_or_else(|e| e.into_inner());
                let n = q.len();
                q.clear();
                n
            })
            .sum()
    }

    /// The peer's socket address, resolved now.
    pub(super) fn resolve(&self) -> Option<SocketAddr> {
        self.addr.to_socket_addrs().ok()?.next()
    }
}

/// A random node of a zone, among those up if any is.
pub(super) fn pick(nodes: &[Arc<Peer>]) -> Option<&Arc<Peer>> {
    let up: Vec<&Arc<Peer>> = nodes
        .iter()
        .filter(|p| p.status() == PeerStatus::Up)
        .collect();
    let from: Vec<&Arc<Peer>> = if up.is_empty() {
        nodes.iter().collect()
    } else {
        up
    };
    if from.is_empty() {
        return None;
    }
    Some(from[monoio::utils::thread_rng_n(from.len() as u32) as usize])
}
