//! POST `/discovery/renew`: the heartbeat, the hottest write. Answers the instance.

use super::envelope::Envelope;
use super::params::Params;
use crate::cluster::op::Op;
use crate::error::{Error, Kind, Result};
use crate::http::response::Framing;
use crate::node::Node;
use crate::registry::json;

/// Handles a renew, writing the answer (the instance, rendered with its new renew time).
pub fn handle(
    node: &Node,
    p: &Params,
    now: i64,
    out: &mut Vec<u8>,
    framing: Framing,
) -> Result<()> {
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
    }
    // A peer's renew also compares versions: a newer peer copy asks for its register (-404),
    // an older one is told ours (-409 with our instance).
    let (code, message) = if !replication || dirty == inst.dirty_ts {
        (0, "0")
    } else if dirty > inst.dirty_ts {
        return Err(Error::new(
            Kind::NotFound,
            format!("{appid} {hostname} is newer on the peer"),
        ));
    } else {
        (-409, "conflict: this node has a newer instance")
    };
    let mut e = Envelope::begin(out, framing, 200, code, message);
    json::write_instance(e.field("data"), &inst);
    e.end();
    Ok(())
}
