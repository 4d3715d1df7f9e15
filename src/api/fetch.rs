//! GET `/discovery/fetch`, `/discovery/fetchs` and `/discovery/fetch/all`: reads, answered from
//! the apps' prepared snapshot bytes without taking a lock.

use super::envelope::{self, Envelope};
use super::params::Params;
use crate::error::{Error, Result};
use crate::http::response::Framing;
use crate::node::Node;
use crate::registry::json;

/// Reads the status mask of a fetch: 1 (up), 2 (waiting) or 3 (both).
fn mask(p: &Params) -> Result<u32> {
    let text = p.required("status")?;
    match text.parse::<u32>() {
        Ok(m) if m & 3 != 0 => Ok(m & 3),
        _ => Err(Error::bad_param(format!(
            "status must be a mask of 1 (up) and 2 (waiting), got {text:?}"
        ))),
    }
}

/// Handles fetch: one app's InstanceInfo.
pub fn fetch(node: &Node, p: &Params, out: &mut Vec<u8>, framing: Framing) -> Result<()> {
    let (appid, env) = (p.required("appid")?, p.required("env")?);
    let mask = mask(p)?;
    let zone = p.get("zone");
    let info = node
        .registry
        .snapshot(env, appid)
        .and_then(|s| s.info(zone, mask))
        .ok_or_else(|| Error::not_found(format!("{appid} not found")))?;
    envelope::ok_data(out, framing, &info);
    Ok(())
}

/// Handles fetchs: `{appid: InstanceInfo}` for the apps found.
pub fn fetchs(node: &Node, p: &Params, out: &mut Vec<u8>, framing: Framing) -> Result<()> {
    // An app named twice is answered once, as the original's map does.
    let appids: Vec<&str> = p.unique_list("appid").into_iter().map(|(_, a)| a).collect();
    if appids.is_empty() {
        return Err(Error::bad_param("appid is required"));
    }
    let env = p.required("env")?;
    let mask = mask(p)?;
    let zone = p.get("zone");
    let mut e = Envelope::begin(out, framing, 200, 0, "0");
    let data = e.field("data");
    data.push(b'{');
    let mut first = true;
    for appid in appids {
        let Some(info) = node
            .registry
            .snapshot(env, appid)
            .and_then(|s| s.info(zone, mask))
        else {
            continue;
        };
        if !first {
            data.push(b',');
        }
        first = false;
        json::write_str(data, appid);
        data.push(b':');
        data.extend_from_slice(&info);
    }
    data.push(b'}');
    e.end();
    Ok(())
}

/// Handles fetch/all: every instance, grouped by appid, with current renew times.
pub fn all(node: &Node, out: &mut Vec<u8>, framing: Framing) {
    let mut e = Envelope::begin(out, framing, 200, 0, "0");
    let data = e.field("data");
    data.push(b'{');
    for (n, (appid, list)) in node.registry.all_instances().iter().enumerate() {
        if n > 0 {
            data.push(b',');
        }
        json::write_str(data, appid);
        data.push(b':');
        json::write_instances(data, list.iter().map(|i| i.as_ref()));
    }
    data.push(b'}');
    e.end();
}
