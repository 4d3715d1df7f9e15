//! The replication protocol with one peer: an op sent alone (the original's per-op protocol,
//! which Go nodes speak) or many in one `/discovery/replicate` batch (peers of ours), and the
//! follow-ups a peer's answer asks for: a renew it does not know (-404) wants the register; a
//! conflict (-409) brings the peer's newer instance, which is adopted here.
//!
//! What comes back is classified once, here: delivered, refused (the op itself was turned
//! down — sending it again would not help), or failed (the call did not get through whole:
//! the lane tries again).

use std::sync::atomic::Ordering;

use super::handle::Cluster;
use super::op::Op;
use super::peer::Peer;
use crate::http::client::Client;
use crate::metrics::BATCH_BOUNDS;
use crate::wire::replicate;
use crate::wire::{answer, instance, Hop};

/// The body size a batch is kept under, well below the 1 MiB `maxBody` a peer has by default;
/// an op larger than this goes alone.
pub(super) const BATCH_BYTES: usize = 256 * 1024;

/// What a call to a peer came to when it got through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Delivery {
    /// Ops the peer turned down.
    pub(super) refused: u64,
}

fn hop(peer: &Peer) -> Hop {
    if peer.own_zone {
        Hop::InZone
    } else {
        Hop::OtherZone
    }
}

/// How the answer `code` to `op` counts.
enum Verdict {
    Done,
    /// The peer asks for this op next (-404 to a renew: the register).
    FollowUp(Op),
    Refused,
    /// The peer failed (-500): try again.
    Failed,
}

/// Sends one op with the original's per-op protocol, then follows its answer up.
pub(super) async fn send(
    c: &mut Client,
    op: &Op,
    peer: &Peer,
    cluster: &Cluster,
) -> std::io::Result<Delivery> {
    let mut delivery = Delivery::default();
    let mut next = Some(op.clone());
    // At most the op and the register a -404 asks for.
    for _ in 0..2 {
        let Some(op) = next.take() else { break };
        let form = op.form(hop(peer));
        let reply = c
            .call(
                "POST",
                op.kind().path(),
                &form,
                cluster.settings.dial,
                cluster.settings.timeout,
            )
            .await?;
        peer.requests_sent.fetch_add(1, Ordering::Relaxed);
        if reply.ours {
            peer.ours.store(true, Ordering::Relaxed);
        }
        match reply.status {
            200 => {}
            // A 4xx turns this op down (too large, forbidden, malformed): not worth repeating.
            400..=499 if !matches!(reply.status, 408 | 429) => {
                tracing::warn!(peer = %peer.addr, op = op.kind().name(), status = reply.status, bytes = form.len(), "peer refused a replicated write");
                delivery.refused += 1;
                continue;
            }
            status => return Err(std::io::Error::other(format!("HTTP {status}"))),
        }
        let (code, data) = answer::decode(&reply.body);
        match verdict(&op, code, data.as_deref(), peer, cluster) {
            Verdict::Done => {}
            Verdict::FollowUp(register) => next = Some(register),
            Verdict::Refused => delivery.refused += 1,
            Verdict::Failed => return Err(std::io::Error::other(format!("code {code}"))),
        }
    }
    Ok(delivery)
}

/// Sends several ops in one `/discovery/replicate` request (peers of ours only); a peer that
/// does not take the batch gets them one by one from now on. An answer without exactly one
/// result per op is a failure: nothing of it is taken as delivered.
pub(super) async fn send_batch(
    c: &mut Client,
    ops: &[Op],
    peer: &Peer,
    cluster: &Cluster,
) -> std::io::Result<Delivery> {
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
        return send_each(c, ops, peer, cluster).await;
    }
    if reply.status != 200 {
        return Err(std::io::Error::other(format!("HTTP {}", reply.status)));
    }
    let results = replicate::decode_answer(&reply.body);
    if results.len() != ops.len() {
        return Err(std::io::Error::other(format!(
            "{} results for {} ops",
            results.len(),
            ops.len()
        )));
    }
    let mut delivery = Delivery::default();
    let mut follow = Vec::new();
    for (op, (code, data)) in ops.iter().zip(results) {
        match verdict(op, code, data.as_deref(), peer, cluster) {
            Verdict::Done => {}
            Verdict::FollowUp(register) => follow.push(register),
            Verdict::Refused => delivery.refused += 1,
            // The rest of the batch got through; this one op goes again on its own.
            Verdict::Failed => follow.push(op.clone()),
        }
    }
    let more = send_each(c, &follow, peer, cluster).await?;
    delivery.refused += more.refused;
    Ok(delivery)
}

/// Sends `ops` one by one.
async fn send_each(
    c: &mut Client,
    ops: &[Op],
    peer: &Peer,
    cluster: &Cluster,
) -> std::io::Result<Delivery> {
    let mut delivery = Delivery::default();
    for op in ops {
        delivery.refused += send(c, op, peer, cluster).await?.refused;
    }
    Ok(delivery)
}

/// What a peer's answer `code` (and `data`) to `op` means.
fn verdict(op: &Op, code: i64, data: Option<&[u8]>, peer: &Peer, cluster: &Cluster) -> Verdict {
    match (op, code) {
        (_, 0) => Verdict::Done,
        (Op::Renew(inst), -404) => Verdict::FollowUp(Op::Register(inst.clone())),
        (Op::Renew(sent), -409) => {
            let rules = cluster.rules();
            match data.map(|d| instance::from_json(d, &rules)) {
                // Only the instance that was renewed may come back, never another one.
                Some(Ok(reg))
                    if (&*reg.env, &*reg.appid, &*reg.hostname)
                        == (sent.env(), sent.appid(), &*sent.hostname) =>
                {
                    tracing::debug!(peer = %peer.addr, appid = %reg.appid, hostname = %reg.hostname, "adopting the peer's newer instance");
                    let _ = cluster.registry.register(&reg, rules.now_ns);
                }
                Some(Ok(reg)) => {
                    tracing::warn!(peer = %peer.addr, sent = %sent.hostname, got = %reg.hostname, "conflict answer for another instance ignored")
                }
                Some(Err(e)) => {
                    tracing::warn!(peer = %peer.addr, error = %e, "conflict answer refused")
                }
                None => tracing::warn!(peer = %peer.addr, "conflict answer without an instance"),
            }
            Verdict::Done
        }
        // Nothing to remove there: the peer already agrees.
        (Op::Cancel { .. }, -404) => Verdict::Done,
        (_, -500) => Verdict::Failed,
        (_, code) => {
            let op = op.kind();
            tracing::warn!(peer = %peer.addr, op = op.name(), code, "peer refused a replicated write");
            Verdict::Refused
        }
    }
}

/// What `op` adds to a batch's body for `peer`.
pub(super) fn batch_bytes(op: &Op, peer: &Peer) -> usize {
    op.form(hop(peer)).len() + 16
}

/// Splits `ops` into batches of at most [`BATCH_BYTES`] of body; an op that is larger by
/// itself is a batch of one (sent alone).
pub(super) fn batches(ops: Vec<Op>, peer: &Peer) -> Vec<Vec<Op>> {
    let mut out: Vec<Vec<Op>> = Vec::new();
    let mut size = 0;
    for op in ops {
        let len = batch_bytes(&op, peer);
        match out.last_mut() {
            Some(batch) if size + len <= BATCH_BYTES => {
                size += len;
                batch.push(op);
            }
            _ => {
                size = len;
                out.push(vec![op]);
            }
        }
    }
    out
}
