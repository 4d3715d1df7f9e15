//! POST `/discovery/set`: change status and/or metadata of several hosts of an app at once.

use std::sync::Arc;

use super::params::Params;
use super::register::{parse_metadata, parse_status, timestamp};
use crate::cluster::op::{Op, SetOp};
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
    if hosts.is_empty() {
        return Err(Error::bad_param("hostname is required"));
    }
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
    let replication = p.bool("replication")?;
    let from_zone = p.bool("from_zone")?;
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
    node.registry.set(env, appid, zone, &changes, set_ts)?;
    if !replication {
        let op = SetOp {
            region: p.get("region").unwrap_or_default().to_owned(),
            zone: zone.to_owned(),
            env: env.to_owned(),
            appid: appid.to_owned(),
            hostnames: hosts.iter().map(|h| (*h).to_owned()).collect(),
            statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
            metadata: metadata.iter().map(|m| (*m).to_owned()).collect(),
            set_ts,
        };
        node.cluster.replicate(Op::Set(Arc::new(op)), from_zone);
    }
    Ok(())
}
