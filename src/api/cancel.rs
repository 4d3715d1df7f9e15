//! POST `/discovery/cancel`: remove an instance.

use super::params::Params;
use super::register::timestamp;
use crate::error::Result;
use crate::node::Node;

/// Handles a cancel.
pub fn handle(node: &Node, p: &Params, now: i64) -> Result<()> {
    let (zone, env) = (p.required("zone")?, p.required("env")?);
    let (appid, hostname) = (p.required("appid")?, p.required("hostname")?);
    let latest = timestamp(p, "latest_timestamp")?;
    p.bool("replication")?;
    p.bool("from_zone")?;
    node.registry
        .cancel(env, appid, zone, hostname, latest, now)?;
    Ok(())
}
