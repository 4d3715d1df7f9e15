//! POST `/discovery/set`: change status and/or metadata of several hosts of an app at once.

use super::params::Params;
use super::register::{parse_metadata, parse_status, timestamp};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::registry::HostChange;

/// Handles a set.
pub fn handle(node: &Node, p: &Params, now: i64) -> Result<()> {
    let (zone, env, appid) = (
        p.required("zone")?,
        p.required("env")?,
        p.required("appid")?,
    );
    let hosts = p.list("hostname");
    let statuses = p.list("status");
    // Metadata values are JSON objects full of commas: never split them.
    let metadata: Vec<&str> = p
        .all("metadata")
        .into_iter()
        .filter(|m| !m.is_empty())
        .collect();
    for (name, len) in [("status", statuses.len()), ("metadata", metadata.len())] {
        if len != 0 && len != hosts.len() {
            return Err(Error::bad_param(format!(
                "{name} has {len} values for {} hostnames",
                hosts.len()
            )));
        }
    }
    let set_ts = timestamp(p, "set_timestamp")?.unwrap_or(now);
    p.bool("replication")?;
    p.bool("from_zone")?;
    let changes = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Ok(HostChange {
                hostname: (*h).to_owned(),
                status: statuses.get(i).map(|s| parse_status(s)).transpose()?,
                metadata: match metadata.get(i) {
                    Some(m) => parse_metadata(m)?,
                    None => None,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    node.registry.set(env, appid, zone, &changes, set_ts)
}
