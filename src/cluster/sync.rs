//! Start-up sync: fill the registry from the peers' `fetch/all` before (or while) serving, and
//! read a peer's instance JSON back into a [`Registration`].

use std::sync::Arc;
use std::time::Duration;

use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::peer::Peer;
use crate::client::Client;
use crate::clock;
use crate::node::Node;
use crate::registry::instance::Registration;

/// A `fetch/all` can be large; give it longer than a single write.
const SYNC_TIMEOUT_MIN: Duration = Duration::from_secs(30);

fn registration(v: &OwnedValue) -> Result<Registration, String> {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let t = |k: &str| v.get(k).and_then(|x| x.as_i64()).filter(|t| *t > 0);
    let metadata = match v.get("metadata").and_then(|m| m.as_object()) {
        None => None,
        Some(obj) => {
            let mut pairs: Vec<(Box<str>, Box<str>)> = obj
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().unwrap_or("").into()))
                .collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Some(pairs)
        }
    };
    // A Go peer may hold comma-joined addresses as one string (its replication bug): split.
    let addrs = v
        .get("addrs")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .flat_map(|x| x.split(','))
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let reg = Registration {
        region: s("region"),
        zone: s("zone"),
        env: s("env"),
        appid: s("appid"),
        hostname: s("hostname"),
        addrs,
        version: s("version"),
        metadata,
        status: v.get("status").and_then(|x| x.as_u32()).unwrap_or(0),
        reg_ts: t("reg_timestamp"),
        up_ts: t("up_timestamp"),
        renew_ts: t("renew_timestamp"),
        dirty_ts: t("dirty_timestamp"),
        latest_ts: t("latest_timestamp"),
    };
    if reg.zone.is_empty() || reg.env.is_empty() || reg.appid.is_empty() || reg.hostname.is_empty()
    {
        return Err("instance without zone, env, appid or hostname".into());
    }
    if !(1..=2).contains(&reg.status) {
        return Err(format!("instance with status {}", reg.status));
    }
    Ok(reg)
}

/// Reads one instance object (as in a -409 answer).
pub fn instance_from_json(json: &[u8]) -> Result<Registration, String> {
    let mut bytes = json.to_vec();
    let v = simd_json::to_owned_value(&mut bytes).map_err(|e| e.to_string())?;
    registration(&v)
}

/// Reads a `fetch/all` answer into registrations.
pub fn decode_fetch_all(body: &[u8]) -> Result<Vec<Registration>, String> {
    let mut bytes = body.to_vec();
    let v = simd_json::to_owned_value(&mut bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let code = v.get("code").and_then(|c| c.as_i64()).unwrap_or(-500);
    if code != 0 {
        return Err(format!("code {code}"));
    }
    let mut out = Vec::new();
    if let Some(apps) = v.get("data").and_then(|d| d.as_object()) {
        for (_, list) in apps.iter() {
            for inst in list.as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
                match registration(inst) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        tracing::warn!(error = %e, "skipped an instance from a peer's fetch/all")
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Fetches every instance of `peer` and registers it here with its own timestamps. True on
/// success, which also ends start-up protection.
pub async fn sync_from(peer: Arc<Peer>, node: Arc<Node>) -> bool {
    let Some(addr) = std::net::ToSocketAddrs::to_socket_addrs(peer.addr.as_str())
        .ok()
        .and_then(|mut a| a.next())
    else {
        tracing::warn!(peer = %peer.addr, "start-up sync: cannot resolve peer");
        return false;
    };
    let cfg = &node.config.http_client;
    let mut client = Client::new(addr);
    let answer = client
        .call(
            "GET",
            "/discovery/fetch/all",
            "",
            cfg.dial,
            cfg.timeout.max(SYNC_TIMEOUT_MIN),
        )
        .await;
    let regs = match answer.map_err(|e| e.to_string()).and_then(|a| {
        if a.status == 200 {
            decode_fetch_all(&a.body)
        } else {
            Err(format!("HTTP {}", a.status))
        }
    }) {
        Ok(r) => r,
        Err(e) => {
            peer.mark(false, &e);
            tracing::warn!(peer = %peer.addr, error = %e, "start-up sync failed");
            return false;
        }
    };
    peer.mark(true, &"synced");
    let now = clock::now_ns();
    let count = regs.len();
    for reg in &regs {
        if let Err(e) = node.registry.register(reg, now) {
            tracing::warn!(error = %e, appid = %reg.appid, "start-up sync: register failed");
        }
    }
    tracing::info!(peer = %peer.addr, instances = count, "start-up sync done");
    node.end_protection();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fetch_all_and_repairs_joined_addrs() {
        let body = br#"{"code":0,"message":"0","ttl":1,"data":{"demo":[{"region":"sh","zone":"z1","env":"dev","appid":"demo","hostname":"h1","addrs":["http://a:1,grpc://a:2"],"version":"v","metadata":{"k":"v"},"status":1,"reg_timestamp":1,"up_timestamp":2,"renew_timestamp":3,"dirty_timestamp":4,"latest_timestamp":5}]}}"#;
        let regs = decode_fetch_all(body).unwrap();
        assert_eq!(regs.len(), 1);
        let r = &regs[0];
        assert_eq!(r.addrs, ["http://a:1", "grpc://a:2"]);
        assert_eq!(
            (r.reg_ts, r.up_ts, r.renew_ts, r.dirty_ts, r.latest_ts),
            (Some(1), Some(2), Some(3), Some(4), Some(5))
        );
        assert!(decode_fetch_all(br#"{"code":-500}"#).is_err());
    }
}
