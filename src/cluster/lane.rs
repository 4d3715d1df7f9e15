//! The tasks that send a peer's queued ops: one per lane, each with its own keep-alive
//! connection. A failed call is tried again with backoff, the rest of the lane waiting behind
//! it; after [`MAX_ATTEMPTS`] the batch goes to another node of its zone (for another zone) or
//! is dropped, counted by reason. A dead peer therefore costs its timeouts, its bounded queue
//! and nothing more; it resynchronises by itself (start-up sync, -404 on the next renew).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::handle::Cluster;
use super::op::Op;
use super::peer::{DropReason, Peer, PeerStatus};
use super::protocol::{batch_bytes, batches, send, send_batch, Delivery, BATCH_BYTES};
use crate::http::client::Client;

/// Most ops taken from a lane at once for a peer of ours.
const BATCH_MAX: usize = 256;
/// How long a lane to a peer of ours waits for more ops before sending a batch. Replication is
/// asynchronous anyway; 10 ms makes a batch of about 40 ops per request at 10k renews/s (2 ms
/// made 13, 5 ms 24: `docs/PERFORMANCE.md`), whatever a request's own time on the machine.
const BATCH_LINGER: Duration = Duration::from_millis(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Attempts at one batch before it is given up (about 20 s of backoff).
pub(super) const MAX_ATTEMPTS: u32 = 8;

/// Calls a peer that just joined, so `nodes` shows its real status before the first write
/// reaches it. Any HTTP answer counts: a peer in start-up protection answers 503.
pub(super) async fn probe(peer: Arc<Peer>, cluster: Arc<Cluster>) {
    let Some(addr) = peer.resolve() else {
        peer.mark(PeerStatus::Lost, &"cannot resolve address");
        return;
    };
    let s = &cluster.settings;
    match Client::new(addr, s.peer_token.clone())
        .call("GET", "/discovery/nodes", "", s.dial, s.timeout)
        .await
    {
        Ok(reply) => {
            if reply.ours {
                peer.ours.store(true, Ordering::Relaxed);
            }
            peer.mark(PeerStatus::Up, &"answered")
        }
        Err(e) => peer.mark(PeerStatus::Lost, &e),
    }
}

/// One lane's sender: its connection and its backoff, which carries over from one batch to the
/// next while the peer stays down.
struct Sender {
    peer: Arc<Peer>,
    cluster: Arc<Cluster>,
    client: Option<Client>,
    backoff: Duration,
}

/// Sends the ops of one lane until the peer is closed and the lane drained.
pub(super) async fn run(peer: Arc<Peer>, lane: usize, cluster: Arc<Cluster>) {
    let mut sender = Sender {
        peer: peer.clone(),
        cluster,
        client: None,
        backoff: BACKOFF_FIRST,
    };
    while let Some(first) = peer.next(lane).await {
        let mut ops = vec![first];
        if peer.ours.load(Ordering::Relaxed) {
            // Let a batch fill for a moment: replication is asynchronous anyway, and at a
            // steady renew rate this turns one request per op into one per few dozen.
            if !peer.closing() {
                monoio::time::sleep(BATCH_LINGER).await;
            }
            ops.extend(peer.take(lane, BATCH_MAX - 1));
        }
        let split = batches(ops, &peer);
        let count = split.len();
        for (i, batch) in split.into_iter().enumerate() {
            // Only the last batch may take ops queued behind it: the others would overtake.
            let refill = (i + 1 == count).then_some(lane);
            sender.deliver(batch, refill).await;
        }
    }
}

impl Sender {
    /// Sends `ops` until they get through, the attempts run out, or the peer is closing. With
    /// `refill`, a batch for a peer of ours goes again with the ops its lane queued meanwhile
    /// (as many as a batch holds): a peer that answers after the timeout still applies each
    /// attempt, so it keeps getting current renews instead of the same old batch until it is
    /// fast again (the fault suite's `delay-timeout`).
    async fn deliver(&mut self, mut ops: Vec<Op>, refill: Option<usize>) {
        let peer = self.peer.clone();
        let mut attempt = 1;
        loop {
            match self.attempt(&ops).await {
                Ok(delivery) => {
                    peer.mark(PeerStatus::Up, &"ok");
                    let sent = ops.len() as u64 - delivery.refused;
                    peer.ops_sent.fetch_add(sent, Ordering::Relaxed);
                    peer.drop_ops(delivery.refused, DropReason::Refused);
                    self.backoff = BACKOFF_FIRST;
                    return;
                }
                Err(e) => {
                    peer.mark(PeerStatus::Lost, &e);
                    // Any node of another zone will do: move on at once if one is up.
                    if let Some(alt) = alternative(&peer, &self.cluster) {
                        reroute(&peer, &alt, ops);
                        return;
                    }
                    if peer.closing() || attempt >= MAX_ATTEMPTS {
                        let why = if peer.closing() {
                            DropReason::Shutdown
                        } else {
                            DropReason::Unreachable
                        };
                        peer.drop_ops(ops.len() as u64, why);
                        return;
                    }
                    monoio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    attempt += 1;
                    peer.retried.fetch_add(ops.len() as u64, Ordering::Relaxed);
                    if let (Some(lane), true) = (refill, peer.ours.load(Ordering::Relaxed)) {
                        let mut size: usize = ops.iter().map(|op| batch_bytes(op, &peer)).sum();
                        let mut room = BATCH_MAX.saturating_sub(ops.len());
                        ops.extend(peer.take_while(lane, |op| {
                            let len = batch_bytes(op, &peer);
                            let fits = room > 0 && size + len <= BATCH_BYTES;
                            if fits {
                                room -= 1;
                                size += len;
                            }
                            fits
                        }));
                    }
                }
            }
        }
    }

    async fn attempt(&mut self, ops: &[Op]) -> std::io::Result<Delivery> {
        if self.client.is_none() {
            let token = self.cluster.settings.peer_token.clone();
            self.client = self.peer.resolve().map(|a| Client::new(a, token));
        }
        let Some(c) = self.client.as_mut() else {
            return Err(std::io::Error::other("cannot resolve address"));
        };
        match ops {
            [op] => send(c, op, &self.peer, &self.cluster).await,
            _ => send_batch(c, ops, &self.peer, &self.cluster).await,
        }
    }
}

/// For a peer of another zone, another node of that zone that is up: any one of them forwards
/// inside its zone.
fn alternative(peer: &Arc<Peer>, cluster: &Cluster) -> Option<Arc<Peer>> {
    if peer.own_zone {
        return None;
    }
    let set = cluster.peers();
    let list = set.zones.get(&peer.zone)?;
    list.iter()
        .find(|p| !Arc::ptr_eq(p, peer) && p.status() == PeerStatus::Up)
        .cloned()
}

fn reroute(peer: &Peer, to: &Peer, ops: Vec<Op>) {
    tracing::info!(peer = %peer.addr, to = %to.addr, ops = ops.len(), "rerouting writes for zone {}", peer.zone);
    for op in ops {
        to.submit(op);
    }
}
