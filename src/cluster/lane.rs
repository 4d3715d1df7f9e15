//! The tasks that send a peer's queued ops: one per lane, each with its own keep-alive
//! connection. A dead peer costs its timeouts and nothing more: a failed call drops what was
//! queued for it (counted) or reroutes it to another node of the zone, and the lane backs off
//! before trying again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::handle::Cluster;
use super::op::Op;
use super::peer::{DropReason, Peer, PeerStatus};
use super::protocol::{send, send_batch};
use crate::http::client::Client;

/// Most ops in one `/discovery/replicate` request to a peer of ours.
const BATCH_MAX: usize = 256;
/// How long a lane to a peer of ours waits for more ops before sending a batch.
const BATCH_LINGER: Duration = Duration::from_millis(2);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Calls a peer that just joined, so `nodes` shows its real status before the first write
/// reaches it. Any HTTP answer counts: a peer in start-up protection answers 503.
pub(super) async fn probe(peer: Arc<Peer>, cluster: Arc<Cluster>) {
    let Some(addr) = peer.resolve() else {
        peer.mark(PeerStatus::Lost, &"cannot resolve address");
        return;
    };
    let s = &cluster.settings;
    match Client::new(addr)
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

/// Sends the ops of one lane until the peer is closed and the lane drained.
pub(super) async fn run(peer: Arc<Peer>, lane: usize, cluster: Arc<Cluster>) {
    let mut client: Option<Client> = None;
    let mut backoff = BACKOFF_FIRST;
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
        if client.is_none() {
            client = peer.resolve().map(Client::new);
        }
        let Some(c) = client.as_mut() else {
            peer.mark(PeerStatus::Lost, &"cannot resolve address");
            reroute_or_drop(&peer, ops, lane, &cluster);
            monoio::time::sleep(BACKOFF_MAX).await;
            continue;
        };
        let sent = if ops.len() > 1 {
            send_batch(c, &ops, &peer, &cluster).await
        } else {
            send(c, &ops[0], &peer, &cluster).await
        };
        match sent {
            Ok(()) => {
                peer.mark(PeerStatus::Up, &"ok");
                peer.ops_sent.fetch_add(ops.len() as u64, Ordering::Relaxed);
                backoff = BACKOFF_FIRST;
            }
            Err(e) => {
                peer.mark(PeerStatus::Lost, &e);
                reroute_or_drop(&peer, ops, lane, &cluster);
                if peer.closing() {
                    return;
                }
                monoio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// After a failed call: ops for another zone go to another node of that zone that is up
/// (any one of them will forward inside its zone); the others are dropped and counted.
fn reroute_or_drop(peer: &Arc<Peer>, mut ops: Vec<Op>, lane: usize, cluster: &Cluster) {
    ops.extend(peer.clear_lane(lane));
    if !peer.own_zone {
        let set = cluster.peers();
        let alternative = set.zones.get(&peer.zone).and_then(|list| {
            list.iter()
                .find(|p| !Arc::ptr_eq(p, peer) && p.status() == PeerStatus::Up)
        });
        if let Some(alt) = alternative {
            tracing::info!(peer = %peer.addr, to = %alt.addr, ops = ops.len(), "rerouting writes for zone {}", peer.zone);
            peer.retried.fetch_add(ops.len() as u64, Ordering::Relaxed);
            for op in ops {
                alt.submit(op);
            }
            return;
        }
    }
    // The peer resynchronises by itself: a restarted node syncs at start-up and a
    // partitioned one answers the next renew with -404, which sends a register.
    peer.drop_ops(ops.len() as u64, DropReason::Unreachable);
}
