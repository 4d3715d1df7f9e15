//! POST `/discovery/cancel`: remove an instance.

use super::params::Params;
use super::register::timestamp;
use crate::cluster::op::Op;
use crate::error::Result;
use crate::node::Node;

/// Handles a cancel.
pub fn handle(node: &Node, p: &Params, now: i64) -> Result<()> {
    let (zone, env) = (p.required("zone")?, p.required("env")?);
    let (appid, hostname) = (p.required("appid")?, p.required("hostname")?);
    let latest = timestamp(p, "latest_timestamp")?;
    let replication = p.bool("replication")?;
    let from_zone = p.bool("from_zone")?;
    let inst = node
        .registry
        .cancel(env, appid, zone, hostname, latest, now)?;
    if !replication {
        let latest_ts = latest.unwrap_or(now);
        node.cluster
            .replicate(Op::Cancel { inst, latest_ts }, from_zone);
    }
    Ok(())
}
