//! An instance as a peer's JSON shows it — in a `fetch/all` answer (start-up sync), a -409
//! conflict answer or a line of a warm-restart snapshot — read back into a [`Registration`]
//! and checked.
//!
//! Read with serde_json, in place: a `fetch/all` answer of a million instances is checked
//! whole, then held as one reference (16 bytes) per instance into the answer's bytes, and each
//! instance is read on its own when it is registered. No tree of the answer is ever built (one
//! used to cost about 4 KB per instance on top of the bytes).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{json_value, metadata, Rules};
use crate::registry::instance::Registration;

/// One instance object; strings without escapes borrow from the input.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow, default)]
    region: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    zone: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    env: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    appid: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    hostname: std::borrow::Cow<'a, str>,
    #[serde(default)]
    addrs: Option<Vec<String>>,
    #[serde(borrow, default)]
    version: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(default)]
    status: u32,
    #[serde(default)]
    reg_timestamp: i64,
    #[serde(default)]
    up_timestamp: i64,
    #[serde(default)]
    renew_timestamp: i64,
    #[serde(default)]
    dirty_timestamp: i64,
    #[serde(default)]
    latest_timestamp: i64,
}

/// Reads one instance object (as in a `fetch/all` answer or a snapshot line); it must have an
/// identity and a status, and pass `rules`.
pub fn from_raw(raw: &RawValue, rules: &Rules) -> Result<Registration, String> {
    from_json(raw.get().as_bytes(), rules)
}

/// Reads one instance object's JSON text (as in a -409 answer).
pub fn from_json(json: &[u8], rules: &Rules) -> Result<Registration, String> {
    let w: Wire = serde_json::from_slice(json).map_err(|e| format!("instance: {e}"))?;
    let t = |ts: i64| (ts > 0).then_some(ts);
    // A Go peer may hold comma-joined addresses as one string (its replication bug): split.
    let addrs = w
        .addrs
        .unwrap_or_default()
        .iter()
        .flat_map(|x| x.split(','))
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect();
    let reg = Registration {
        region: w.region.into_owned(),
        zone: w.zone.into_owned(),
        env: w.env.into_owned(),
        appid: w.appid.into_owned(),
        hostname: w.hostname.into_owned(),
        addrs,
        version: w.version.into_owned(),
        metadata: w
            .metadata
            .and_then(|m| json_value(m.get().as_bytes()).ok())
            .and_then(|v| metadata::from_value(&v)),
        status: w.status,
        reg_ts: t(w.reg_timestamp),
        up_ts: t(w.up_timestamp),
        renew_ts: t(w.renew_timestamp),
        dirty_ts: t(w.dirty_timestamp),
        latest_ts: t(w.latest_timestamp),
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

/// A `fetch/all` answer: `{"code":0,"data":{"<appid>":[<instance>, ...], ...}}`.
#[derive(Deserialize)]
struct FetchAll<'a> {
    code: Option<i64>,
    #[serde(borrow)]
    data: Option<BTreeMap<String, Option<Vec<&'a RawValue>>>>,
}

/// Checks a `fetch/all` answer whole (valid JSON, code 0, a list per app), then reads its
/// instances one at a time as the iterator is driven: each is a registration, or why it fails
/// its checks. Only one reference (16 bytes) per instance is held beside the answer's bytes.
pub fn decode_fetch_all<'a>(
    body: &'a [u8],
    rules: &'a Rules,
) -> Result<impl Iterator<Item = Result<Registration, String>> + 'a, String> {
    let all: FetchAll = serde_json::from_slice(body).map_err(|e| format!("invalid answer: {e}"))?;
    let code = all.code.unwrap_or(-500);
    if code != 0 {
        return Err(format!("code {code}"));
    }
    let instances: Vec<&RawValue> = all
        .data
        .unwrap_or_default()
        .into_values()
        .flatten()
        .flatten()
        .collect();
    Ok(instances.into_iter().map(move |raw| from_raw(raw, rules)))
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
        let regs: Vec<_> = decode_fetch_all(body, &RULES).unwrap().flatten().collect();
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
    fn one_bad_instance_is_skipped_and_a_bad_answer_refused_whole() {
        let good = r#"{"zone":"z","env":"e","appid":"a","hostname":"h\u0031","status":1,"addrs":null,"metadata":{"n":2}}"#;
        let bad = r#"{"zone":"z","env":"e","appid":"a","hostname":"h2","status":"up"}"#;
        let body = format!(r#"{{"code":0,"data":{{"a":[{good},{bad},7],"b":null}}}}"#);
        let regs: Vec<_> = decode_fetch_all(body.as_bytes(), &RULES)
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(regs.len(), 1);
        assert_eq!(regs[0].hostname, "h1");
        assert!(regs[0].addrs.is_empty());
        let meta = regs[0].metadata.as_ref().unwrap();
        assert_eq!((&*meta[0].0, &*meta[0].1), ("n", "2"));
        for answer in [
            r#"{"code":0,"data":{"a":{"not":"a list"}}}"#,
            r#"{"code":0,"data":{"a":[]}"#,
            r#"{"data":{}}"#,
            r#"{"code":0,"data":[]}"#,
        ] {
            assert!(
                decode_fetch_all(answer.as_bytes(), &RULES).is_err(),
                "{answer}"
            );
        }
        assert_eq!(
            decode_fetch_all(br#"{"code":0,"data":null}"#, &RULES)
                .unwrap()
                .count(),
            0
        );
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
