//! A scheduler file: one JSON file per `(appid, env)` beside the config, giving cross-zone
//! traffic weights that are attached to that app's answers. This is its decoding and the
//! encoding its answers carry; finding the files on disk is `node::schedulers`.

use std::collections::BTreeMap;

use bytes::Bytes;
use simd_json::prelude::*;

use super::json_value;
use crate::json;
use crate::registry::AppKey;

/// A parsed scheduler: whose it is and its encoded `{"clients":...,"remark":""}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scheduler {
    pub(crate) key: AppKey,
    pub(crate) encoded: Bytes,
}

/// Parses one scheduler file's text.
pub(crate) fn parse(text: &[u8]) -> Result<Scheduler, String> {
    let value = json_value(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let (appid, env) = (field("app_id"), field("env"));
    if appid.is_empty() || env.is_empty() {
        return Err("\"app_id\" and \"env\" are required".into());
    }
    // src zone -> dst zone -> weight, re-encoded with sorted keys as the original's Go maps are.
    let mut clients: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    if let Some(obj) = value.get("clients").and_then(|c| c.as_object()) {
        for (src, strategy) in obj.iter() {
            let zones = clients.entry(src.to_string()).or_default();
            let Some(dsts) = strategy.get("zones").and_then(|z| z.as_object()) else {
                continue;
            };
            for (dst, weight) in dsts.iter() {
                let w = weight
                    .get("weight")
                    .and_then(|w| w.as_i64())
                    .ok_or_else(|| {
                        format!("clients.{src}.zones.{dst}.weight must be an integer")
                    })?;
                zones.insert(dst.to_string(), w);
            }
        }
    }
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"clients\":{");
    for (n, (src, zones)) in clients.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        json::write_str(&mut out, src);
        out.extend_from_slice(b":{\"zones\":{");
        for (m, (dst, w)) in zones.iter().enumerate() {
            if m > 0 {
                out.push(b',');
            }
            json::write_str(&mut out, dst);
            out.extend_from_slice(b":{\"weight\":");
            json::write_int(&mut out, *w);
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
    }
    // The original answers its own struct, whose `remark` is always empty in answers.
    out.extend_from_slice(b"},\"remark\":\"\"}");
    Ok(Scheduler {
        key: AppKey::new(&env, &appid),
        encoded: Bytes::from(out),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_clients_sorted_with_empty_remark() {
        let s = parse(br#"{"app_id":"demo","env":"dev","remark":"x","clients":{"sh002":{"zones":{"sh002":{"weight":1}}},"sh001":{"zones":{"sh002":{"weight":3},"sh001":{"weight":10}}}}}"#).unwrap();
        assert_eq!(s.key, AppKey::new("dev", "demo"));
        assert_eq!(
            std::str::from_utf8(&s.encoded).unwrap(),
            r#"{"clients":{"sh001":{"zones":{"sh001":{"weight":10},"sh002":{"weight":3}}},"sh002":{"zones":{"sh002":{"weight":1}}}},"remark":""}"#
        );
    }

    #[test]
    fn rejects_missing_ids_and_bad_json() {
        assert!(parse(br#"{"env":"dev"}"#).is_err());
        assert!(parse(b"{").is_err());
        assert!(parse(
            br#"{"app_id":"a","env":"e","clients":{"z":{"zones":{"y":{"weight":"x"}}}}}"#
        )
        .is_err());
    }
}
