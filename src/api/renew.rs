//! POST `/discovery/renew`: the heartbeat, the hottest write. Answers the instance.

use std::sync::Arc;

use super::envelope::Envelope;
use super::params::Params;
use crate::cluster::op::Op;
use crate::error::{Error, Result};
use crate::http::response::Framing;
use crate::node::Node;
use crate::registry::instance::Instance;
use crate::registry::json;

/// What a renew did: the renewed instance, and whether a peer's copy of it is older than ours.
pub struct Renewed {
    pub inst: Arc<Instance>,
    /// Answer -409 with our instance, so the peer adopts it.
    pub conflict: bool,
}

/// Applies a renew (and forwards it when it came from a client).
pub fn apply(node: &Node, p: &Params, now: i64) -> Result<Renewed> {
    let (zone, env) = (p.required("zone")?, p.required("env")?);
    let (appid, hostname) = (p.required("appid")?, p.required("hostname")?);
    let replication = p.bool("replication")?;
    let dirty = p.i64("dirty_timestamp")?.unwrap_or(0);
    let from_zone = p.bool("from_zone")?;
    let Some(inst) = node.registry.renew(env, appid, zone, hostname, now) else {
        return Err(Error::not_found(format!("{appid} {hostname} not found")));
    };
    if !replication {
        node.cluster.replicate(Op::Renew(inst.clone()), from_zone);
        return Ok(Renewed {
            inst,
            conflict: false,
        });
    }
    // A peer's renew also compares versions: a newer peer copy asks for its register (-404),
    // an older one is told ours (-409 with our instance).
    if dirty > inst.dirty_ts {
        return Err(Error::not_found(format!(
            "{appid} {hostname} is newer on the peer"
        )));
    }
    Ok(Renewed {
        conflict: dirty < inst.dirty_ts,
        inst,
    })
}

/// The `code` and `message` of a renew's answer.
pub fn code(r: &Renewed) -> (i32, &'static str) {
    if r.conflict {
        (-409, "conflict: this node has a newer instance")
    } else {
        (0, "0")
    }
}

/// Handles a renew, writing the answer (the instance, rendered with its new renew time).
pub fn handle(
    node: &Node,
    p: &Params,
    now: i64,
    out: &mut Vec<u8>,
    framing: Framing,
) -> Result<()> {
    let renewed = apply(node, p, now)?;
    let (code, message) = code(&renewed);
    let mut e = Envelope::begin(out, framing, 200, code, message);
    json::write_instance(e.field("data"), &renewed.inst);
    e.end();
    Ok(())
}
