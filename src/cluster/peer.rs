//! One peer node: bounded queues of ops to forward (one per lane, so ops on one instance keep
//! their order) and the tasks that send them over keep-alive connections. A dead peer costs its
//! timeouts and nothing more: a failed call drops what was queued for it (counted), and the
//! lane backs off before trying again.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use atomic_waker::AtomicWaker;

use super::op::Op;
use super::sync::instance_from_json;
use crate::client::Client;
use crate::clock;
use crate::node::{Node, NODE_LOST, NODE_UP};

/// Connections (and queues) per peer.
pub const LANES: usize = 4;
/// Most ops in one `/discovery/replicate` request to a peer of ours.
const BATCH_MAX: usize = 256;
/// How long a lane to a peer of ours waits for more ops before sending a batch.
const BATCH_LINGER: Duration = Duration::from_millis(2);
/// Ops waiting per lane before new ones are dropped.
const QUEUE_BOUND: usize = 16 * 1024;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Lane {
    queue: Mutex<VecDeque<Op>>,
    waker: AtomicWaker,
}

/// A peer and its outgoing queues.
pub struct Peer {
    /// As configured or discovered: `host:port`.
    pub addr: String,
    pub zone: String,
    /// In this node's zone (gets every write) or another (gets client writes, re-forwards).
    pub own_zone: bool,
    status: AtomicU8,
    /// Ops dropped: queue full, or lost with a failed call.
    pub dropped: AtomicU64,
    /// Ops delivered, and the requests that carried them (fewer when batched).
    pub ops_sent: AtomicU64,
    pub requests_sent: AtomicU64,
    /// The peer named itself `discovery-rs`: ops go to it in batches.
    ours: AtomicBool,
    /// Set when the peer left the cluster or the node is stopping: lanes finish their queue
    /// and end.
    closing: AtomicBool,
    lanes: [Lane; LANES],
}

impl Peer {
    /// A peer not contacted yet (`lost` until a call succeeds).
    pub fn new(addr: String, zone: String, own_zone: bool) -> Peer {
        Peer {
            addr,
            zone,
            own_zone,
            status: AtomicU8::new(NODE_LOST),
            dropped: AtomicU64::new(0),
            ops_sent: AtomicU64::new(0),
            requests_sent: AtomicU64::new(0),
            ours: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            lanes: Default::default(),
        }
    }

    /// `NODE_UP` after a successful call, `NODE_LOST` after a failed one.
    pub fn status(&self) -> u8 {
        self.status.load(Ordering::Relaxed)
    }

    /// Records the outcome of a call, logging changes.
    pub fn mark(&self, up: bool, why: &dyn std::fmt::Display) {
        let new = if up { NODE_UP } else { NODE_LOST };
        if self.status.swap(new, Ordering::Relaxed) != new {
            if up {
                tracing::info!(peer = %self.addr, zone = %self.zone, "peer up");
            } else {
                tracing::warn!(peer = %self.addr, zone = %self.zone, error = %why, "peer lost");
            }
        }
    }

    /// Queues `op` without waiting; drops it when the lane is full.
    pub fn submit(&self, op: Op) {
        let lane = &self.lanes[op.lane(LANES)];
        let mut q = lane.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= QUEUE_BOUND {
            drop(q);
            self.drop_ops(1, "queue full");
            return;
        }
        let was_empty = q.is_empty();
        q.push_back(op);
        drop(q);
        if was_empty {
            lane.waker.wake();
        }
    }

    fn drop_ops(&self, n: u64, why: &str) {
        let before = self.dropped.fetch_add(n, Ordering::Relaxed);
        // Log the first drop and then every thousandth, not every op of a dead peer.
        if before == 0 || (before + n) / 1000 > before / 1000 {
            tracing::warn!(peer = %self.addr, dropped_total = before + n, why, "replication ops dropped");
        }
    }

    /// Asks the lanes to finish what is queued and stop.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for lane in &self.lanes {
            lane.waker.wake();
        }
    }

    /// Ops waiting in all lanes.
    pub fn queued(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| l.queue.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    async fn next(&self, lane: usize) -> Option<Op> {
        let lane = &self.lanes[lane];
        std::future::poll_fn(|cx| {
            lane.waker.register(cx.waker());
            let mut q = lane.queue.lock().unwrap_or_else(|e| e.into_inner());
            match q.pop_front() {
                Some(op) => Poll::Ready(Some(op)),
                None if self.closing.load(Ordering::SeqCst) => Poll::Ready(None),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Up to `max` more ops of the lane that are already waiting.
    fn take(&self, lane: usize, max: usize) -> Vec<Op> {
        let mut q = self.lanes[lane]
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = q.len().min(max);
        q.drain(..n).collect()
    }

    /// Empties a lane, returning what it held.
    fn clear_lane(&self, lane: usize) -> Vec<Op> {
        let mut q = self.lanes[lane]
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        q.drain(..).collect()
    }

    /// After a failed call: ops for another zone go to another node of that zone that is up
    /// (any one of them will forward inside its zone); the others are dropped and counted.
    fn reroute_or_drop(self: &Arc<Self>, mut ops: Vec<Op>, lane: usize, node: &Node) {
        ops.extend(self.clear_lane(lane));
        if !self.own_zone {
            let set = node.cluster.peers();
            let alternative = set.zones.get(&self.zone).and_then(|list| {
                list.iter()
                    .find(|p| !Arc::ptr_eq(p, self) && p.status() == NODE_UP)
            });
            if let Some(alt) = alternative {
                tracing::info!(peer = %self.addr, to = %alt.addr, ops = ops.len(), "rerouting writes for zone {}", self.zone);
                for op in ops {
                    alt.submit(op);
                }
                return;
            }
        }
        // The peer resynchronises by itself: a restarted node syncs at start-up and a
        // partitioned one answers the next renew with -404, which sends a register.
        self.drop_ops(ops.len() as u64, "peer unreachable");
    }

    fn resolve(&self) -> Option<SocketAddr> {
        self.addr.to_socket_addrs().ok()?.next()
    }

    /// Calls a peer that just joined, so `nodes` shows its real status before the first write
    /// reaches it. Any HTTP answer counts: a peer in start-up protection answers 503.
    pub async fn probe(self: Arc<Self>, node: Arc<Node>) {
        let Some(addr) = self.resolve() else {
            self.mark(false, &"cannot resolve address");
            return;
        };
        let cfg = &node.config.http_client;
        match Client::new(addr)
            .call("GET", "/discovery/nodes", "", cfg.dial, cfg.timeout)
            .await
        {
            Ok(_) => self.mark(true, &"answered"),
            Err(e) => self.mark(false, &e),
        }
    }

    /// Sends the ops of one lane until the peer is closed and the lane drained.
    pub async fn run_lane(self: Arc<Self>, lane: usize, node: Arc<Node>) {
        let cfg = &node.config.http_client;
        let mut client: Option<Client> = None;
        let mut backoff = BACKOFF_FIRST;
        while let Some(first) = self.next(lane).await {
            let mut ops = vec![first];
            if self.ours.load(Ordering::Relaxed) {
                // Let a batch fill for a moment: replication is asynchronous anyway, and at a
                // steady renew rate this turns one request per op into one per few dozen.
                if !self.closing.load(Ordering::SeqCst) {
                    monoio::time::sleep(BATCH_LINGER).await;
                }
                ops.extend(self.take(lane, BATCH_MAX - 1));
            }
            if client.is_none() {
                client = self.resolve().map(Client::new);
            }
            let Some(c) = client.as_mut() else {
                self.mark(false, &"cannot resolve address");
                self.reroute_or_drop(ops, lane, &node);
                monoio::time::sleep(BACKOFF_MAX).await;
                continue;
            };
            let sent = if ops.len() > 1 {
                send_batch(c, &ops, &self, &node, cfg.dial, cfg.timeout).await
            } else {
                send(c, &ops[0], &self, &node, cfg.dial, cfg.timeout).await
            };
            match sent {
                Ok(()) => {
                    self.mark(true, &"ok");
                    self.ops_sent.fetch_add(ops.len() as u64, Ordering::Relaxed);
                    backoff = BACKOFF_FIRST;
                }
                Err(e) => {
                    self.mark(false, &e);
                    self.reroute_or_drop(ops, lane, &node);
                    if self.closing.load(Ordering::SeqCst) {
                        return;
                    }
                    monoio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// Sends one op with the original's per-op protocol, then [`follow_up`] its answer.
async fn send(
    c: &mut Client,
    op: &Op,
    peer: &Peer,
    node: &Node,
    dial: Duration,
    timeout: Duration,
) -> std::io::Result<()> {
    let other_zone = !peer.own_zone;
    let answer = c
        .call("POST", op.path(), &op.form(other_zone), dial, timeout)
        .await?;
    peer.requests_sent.fetch_add(1, Ordering::Relaxed);
    if answer.ours {
        peer.ours.store(true, Ordering::Relaxed);
    }
    if answer.status != 200 {
        return Err(std::io::Error::other(format!("HTTP {}", answer.status)));
    }
    let (code, data) = parse_code(&answer.body);
    if let Some(register) = follow_up(op, code, data.as_deref(), peer, node) {
        c.call(
            "POST",
            register.path(),
            &register.form(other_zone),
            dial,
            timeout,
        )
        .await?;
        peer.requests_sent.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Sends several ops in one `/discovery/replicate` request (peers of ours only); a peer that
/// does not know the endpoint gets them one by one from now on.
async fn send_batch(
    c: &mut Client,
    ops: &[Op],
    peer: &Peer,
    node: &Node,
    dial: Duration,
    timeout: Duration,
) -> std::io::Result<()> {
    let other_zone = !peer.own_zone;
    let mut body = String::with_capacity(ops.len() * 256);
    for op in ops {
        body.push_str("op=");
        body.push_str(op.name());
        body.push('&');
        body.push_str(&op.form(other_zone));
        body.push('\n');
    }
    let answer = c
        .call("POST", "/discovery/replicate", &body, dial, timeout)
        .await?;
    peer.requests_sent.fetch_add(1, Ordering::Relaxed);
    // 404/405: an older peer without the endpoint; 413: a peer whose maxBody is below a batch.
    if matches!(answer.status, 404 | 405 | 413) {
        tracing::info!(peer = %peer.addr, status = answer.status, "peer does not take batches; sending ops one by one");
        peer.ours.store(false, Ordering::Relaxed);
        for op in ops {
            send(c, op, peer, node, dial, timeout).await?;
        }
        return Ok(());
    }
    if answer.status != 200 {
        return Err(std::io::Error::other(format!("HTTP {}", answer.status)));
    }
    let results = parse_batch(&answer.body);
    let follow: Vec<Op> = ops
        .iter()
        .zip(results)
        .filter_map(|(op, (code, data))| follow_up(op, code, data.as_deref(), peer, node))
        .collect();
    match follow.len() {
        0 => Ok(()),
        1 => send(c, &follow[0], peer, node, dial, timeout).await,
        _ => Box::pin(send_batch(c, &follow, peer, node, dial, timeout)).await,
    }
}

/// What a peer's answer to `op` asks for: a renew it does not know (-404) wants the register;
/// a conflict (-409) brings the peer's newer instance, which is adopted here.
fn follow_up(op: &Op, code: i64, data: Option<&[u8]>, peer: &Peer, node: &Node) -> Option<Op> {
    match (op, code) {
        (_, 0) => None,
        (Op::Renew(inst), -404) => Some(Op::Register(inst.clone())),
        (Op::Renew(_), -409) => {
            match data.map(instance_from_json) {
                Some(Ok(reg)) => {
                    tracing::debug!(peer = %peer.addr, appid = %reg.appid, hostname = %reg.hostname, "adopting the peer's newer instance");
                    let _ = node.registry.register(&reg, clock::now_ns());
                }
                _ => tracing::warn!(peer = %peer.addr, "conflict answer without a usable instance"),
            }
            None
        }
        (_, code) => {
            tracing::debug!(peer = %peer.addr, op = op.name(), code, "peer refused a replicated write");
            None
        }
    }
}

/// The per-op results of a batch answer.
fn parse_batch(body: &[u8]) -> Vec<(i64, Option<Vec<u8>>)> {
    use simd_json::prelude::*;
    let mut bytes = body.to_vec();
    let Ok(v) = simd_json::to_owned_value(&mut bytes) else {
        return Vec::new();
    };
    v.get("data")
        .and_then(|d| d.as_array())
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let code = item.get("code").and_then(|c| c.as_i64()).unwrap_or(-500);
                    let data = item.get("data").and_then(|d| simd_json::to_vec(d).ok());
                    (code, data)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `code` of an envelope and, when present, its raw `data`.
fn parse_code(body: &[u8]) -> (i64, Option<Vec<u8>>) {
    use simd_json::prelude::*;
    let mut bytes = body.to_vec();
    let Ok(v) = simd_json::to_owned_value(&mut bytes) else {
        return (-500, None);
    };
    let code = v.get("code").and_then(|c| c.as_i64()).unwrap_or(-500);
    let data = v
        .get("data")
        .filter(|d| !d.is_null())
        .and_then(|d| simd_json::to_vec(d).ok());
    (code, data)
}
