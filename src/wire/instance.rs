//! An instance as a peer's JSON shows it — in a `fetch/all` answer (start-up sync) or a -409
//! conflict answer — read back into a [`Registration`] and checked.

use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::{json_value, metadata, Rules};
use crate::registry::instance::Registration;

/// Reads one instance object; its timestamps must pass `rules`.
pub(crate) fn registration_from(v: &OwnedValue, rules: &Rules) -> Result<Registration, String> {
    registration(v, rules)
}

fn registration(v: &OwnedValue, rules: &Rules) -> Result<Registration, String> {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let t = |k: &str| v.get(k).and_then(|x| x.as_i64()).filter(|t| *t > 0);
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
        metadata: v.get("metadata").and_then(metadata::from_value),
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
    if reg.addrs.len() > rules.limits.max_addrs {
        return Err(format!(
            "{} addrs, above limits.maxAddrs ({})",
            reg.addrs.len(),
            rules.limits.max_addrs
        ));
    }
    if let Some(m) = &reg.metadata {
        rules
            .limits
            .metadata
            .check(m)
            .map_err(|e| e.context.into_owned())?;
    }
    for (key, ts) in [
        ("reg_timestamp", reg.reg_ts),
        ("up_timestamp", reg.up_ts),
        ("renew_timestamp", reg.renew_ts),
        ("dirty_timestamp", reg.dirty_ts),
        ("latest_timestamp", reg.latest_ts),
    ] {
        if let Some(ts) = ts {
            rules
                .not_ahead(key, ts)
                .map_err(|e| e.context.into_owned())?;
        }
    }
    Ok(reg)
}

/// Reads one instance object's JSON text (as in a -409 answer).
pub fn from_json(json: &[u8], rules: &Rules) -> Result<Registration, String> {
    let v = json_value(json).map_err(|e| e.to_string())?;
    registration(&v, rules)
}

/// Reads a `fetch/all` answer into registrations; instances that fail their checks are logged
/// and skipped.
pub fn decode_fetch_all(body: &[u8], rules: &Rules) -> Result<Vec<Registration>, String> {
    let v = json_value(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let code = v.get("code").and_then(|c| c.as_i64()).unwrap_or(-500);
    if code != 0 {
        return Err(format!("code {code}"));
    }
    let mut out = Vec::new();
    if let Some(apps) = v.get("data").and_then(|d| d.as_object()) {
        for (_, list) in apps.iter() {
            for inst in list.as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
                match registration(inst, rules) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        now_ns: 1_000_000_000_000,
        max_skew_ns: 300_000_000_000,
        limits: crate::wire::Limits::DEFAULT,
    };

    #[test]
    fn an_instance_from_the_future_is_refused() {
        let at = |ts: i64| {
            format!(
                r#"{{"zone":"z","env":"e","appid":"a","hostname":"h","status":1,"dirty_timestamp":{ts}}}"#
            )
        };
        assert!(from_json(at(1_300_000_000_000).as_bytes(), &RULES).is_ok());
        let e = from_json(at(1_300_000_000_001).as_bytes(), &RULES).unwrap_err();
        assert!(e.starts_with("dirty_timestamp is"), "{e}");
        assert!(from_json(at(i64::MAX).as_bytes(), &RULES).is_err());
    }

    #[test]
    fn decodes_fetch_all_and_repairs_joined_addrs() {
        let body = br#"{"code":0,"message":"0","ttl":1,"data":{"demo":[{"region":"sh","zone":"z1","env":"dev","appid":"demo","hostname":"h1","addrs":["http://a:1,grpc://a:2"],"version":"v","metadata":{"k":"v"},"status":1,"reg_timestamp":1,"up_timestamp":2,"renew_timestamp":3,"dirty_timestamp":4,"latest_timestamp":5}]}}"#;
        let regs = decode_fetch_all(body, &RULES).unwrap();
        assert_eq!(regs.len(), 1);
        let r = &regs[0];
        assert_eq!(r.addrs, ["http://a:1", "grpc://a:2"]);
        assert_eq!(
            (r.reg_ts, r.up_ts, r.renew_ts, r.dirty_ts, r.latest_ts),
            (Some(1), Some(2), Some(3), Some(4), Some(5))
        );
        assert!(decode_fetch_all(br#"{"code":-500}"#, &RULES).is_err());
    }

    #[test]
    fn a_conflict_instance_needs_identity_and_status() {
        assert!(from_json(
            br#"{"zone":"z","env":"e","appid":"a","hostname":"h","status":1}"#,
            &RULES
        )
        .is_ok());
        assert!(from_json(br#"{"zone":"z","env":"e","appid":"a","status":1}"#, &RULES).is_err());
        assert!(from_json(
            br#"{"zone":"z","env":"e","appid":"a","hostname":"h","status":3}"#,
            &RULES
        )
        .is_err());
        assert!(from_json(b"nope", &RULES).is_err());
    }
}
