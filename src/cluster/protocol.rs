//! The replication protocol with one peer: an op sent alone (the original's per-op protocol,
//! which Go nodes speak) or many in one `/discovery/replicate` batch (peers of ours), and the
//! follow-ups a peer's answer asks for: a renew it does not know (-404) wants the register; a
//! conflict (-409) brings the peer's newer instance, which is adopted here.

use std::sync::atomic::Ordering;

use super::handle::Cluster;
use super::op::Op;
use super::peer::Peer;
use crate::clock;
use crate::http::client::Client;
use crate::metrics::BATCH_BOUNDS;
use crate::wire::replicate;
use crate::wire::{answer, instance, Hop};

fn hop(peer: &Peer) -> Hop {
    if peer.own_zone {
        Hop::InZone
    } else {
        Hop::OtherZone
    }
}

/// Sends one op with the original's per-op protocol, then follows its answer up.
pub(super) async fn send(
    c: &mut Client,
    op: &Op,
    peer: &Peer,
    cluster: &Cluster,
) -> std::io::Result<()> {
    let s = &cluster.settings;
    let path = op.kind().path();
    let reply = c
        .call("POST", path, &op.form(hop(peer)), s.dial, s.timeout)
        .await?;
    peer.requests_sent.fetch_add(1, Ordering::Relaxed);
    peer.batch_sizes.observe(&BATCH_BOUNDS, 1);
    if reply.ours {
        peer.ours.store(true, Ordering::Relaxed);
    }
    if reply.status != 200 {
        return Err(std::io::Error::other(format!("HTTP {}", reply.status)));
    }
    let (code, data) = answer::decode(&reply.body);
    if let Some(register) = follow_up(op, code, data.as_deref(), peer, cluster) {
        let path = register.kind().path();
        c.call("POST", path, &register.form(hop(peer)), s.dial, s.timeout)
            .await?;
        peer.requests_sent.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Sends several ops in one `/discovery/replicate` request (peers of ours only); a peer that
/// does not take the batch gets them one by one from now on.
pub(super) async fn send_batch(
    c: &mut Client,
    ops: &[Op],
    peer: &Peer,
    cluster: &Cluster,
) -> std::io::Result<()> {
    let s = &cluster.settings;
    let mut body = String::with_capacity(ops.len() * 256);
    for op in ops {
        replicate::push_line(&mut body, op.kind(), &op.form(hop(peer)));
    }
    let reply = c
        .call("POST", "/discovery/replicate", &body, s.dial, s.timeout)
        .await?;
    peer.requests_sent.fetch_add(1, Ordering::Relaxed);
    peer.batch_sizes.observe(&BATCH_BOUNDS, ops.len() as u64);
    // 404/405: an older peer without the endpoint; 413: a peer whose maxBody is below a batch.
    if matches!(reply.status, 404 | 405 | 413) {
        tracing::info!(peer = %peer.addr, status = reply.status, "peer does not take batches; sending ops one by one");
        peer.ours.store(false, Ordering::Relaxed);
        peer.retried.fetch_add(ops.len() as u64, Ordering::Relaxed);
        for op in ops {
            send(c, op, peer, cluster).await?;
        }
        return Ok(());
    }
    if reply.status != 200 {
        return Err(std::io::Error::other(format!("HTTP {}", reply.status)));
    }
    let results = replicate::decode_answer(&reply.body);
    let follow: Vec<Op> = ops
        .iter()
        .zip(results)
        .filter_map(|(op, (code, data))| follow_up(op, code, data.as_deref(), peer, cluster))
        .collect();
    match follow.len() {
        0 => Ok(()),
        1 => send(c, &follow[0], peer, cluster).await,
        _ => Box::pin(send_batch(c, &follow, peer, cluster)).await,
    }
}

/// What a peer's answer `code` (and `data`) to `op` asks for.
fn follow_up(
    op: &Op,
    code: i64,
    data: Option<&[u8]>,
    peer: &Peer,
    cluster: &Cluster,
) -> Option<Op> {
    match (op, code) {
        (_, 0) => None,
        (Op::Renew(inst), -404) => Some(Op::Register(inst.clone())),
        (Op::Renew(_), -409) => {
            match data.map(instance::from_json) {
                Some(Ok(reg)) => {
                    tracing::debug!(peer = %peer.addr, appid = %reg.appid, hostname = %reg.hostname, "adopting the peer's newer instance");
                    let _ = cluster.registry.register(&reg, clock::now_ns());
                }
                _ => tracing::warn!(peer = %peer.addr, "conflict answer without a usable instance"),
            }
            None
        }
        (_, code) => {
            let op = op.kind().name();
            tracing::debug!(peer = %peer.addr, op, code, "peer refused a replicated write");
            None
        }
    }
}
