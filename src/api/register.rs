//! POST `/discovery/register`: add or replace an instance.

use simd_json::prelude::*;

use super::params::Params;
use crate::cluster::op::Op;
use crate::error::{Error, Result};
use crate::node::Node;
use crate::registry::instance::{Metadata, Registration, STATUS_UP, STATUS_WAITING};

/// Parses a status that must be 1 (UP) or 2 (WAITING).
pub fn parse_status(text: &str) -> Result<u32> {
    match text.parse::<u32>() {
        Ok(s @ (STATUS_UP | STATUS_WAITING)) => Ok(s),
        _ => Err(Error::bad_param(format!(
            "status must be 1 (up) or 2 (waiting), got {text:?}"
        ))),
    }
}

/// Parses a metadata JSON object. String values are kept as they are; other values keep their
/// JSON text, so nothing a client sent is silently lost. `null` means no metadata.
pub fn parse_metadata(text: &str) -> Result<Option<Metadata>> {
    let mut bytes = text.as_bytes().to_vec();
    let value = simd_json::to_owned_value(&mut bytes)
        .map_err(|e| Error::bad_param(format!("metadata is not valid JSON: {e}")))?;
    if value.is_null() {
        return Ok(None);
    }
    let Some(obj) = value.as_object() else {
        return Err(Error::bad_param("metadata must be a JSON object"));
    };
    let mut pairs: Metadata = obj
        .iter()
        .map(|(k, v)| {
            let v = match v.as_str() {
                Some(s) => s.into(),
                None => simd_json::to_string(v).unwrap_or_default().into(),
            };
            (k.as_str().into(), v)
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(pairs))
}

/// Positive timestamps only: 0 means "not sent" in the original's clients.
pub fn timestamp(p: &Params, key: &str) -> Result<Option<i64>> {
    Ok(p.i64(key)?.filter(|t| *t > 0))
}

/// Reads a register request.
pub fn parse(p: &Params) -> Result<Registration> {
    let addrs: Vec<String> = p.list("addrs").into_iter().map(str::to_owned).collect();
    let reg = Registration {
        region: p.get("region").unwrap_or_default().to_owned(),
        zone: p.required("zone")?.to_owned(),
        env: p.required("env")?.to_owned(),
        appid: p.required("appid")?.to_owned(),
        hostname: p.required("hostname")?.to_owned(),
        version: p.get("version").unwrap_or_default().to_owned(),
        status: parse_status(p.required("status")?)?,
        metadata: match p.get("metadata") {
            Some(m) => parse_metadata(m)?,
            None => None,
        },
        reg_ts: timestamp(p, "reg_timestamp")?,
        dirty_ts: timestamp(p, "dirty_timestamp")?,
        latest_ts: timestamp(p, "latest_timestamp")?,
        renew_ts: None,
        up_ts: None,
        addrs,
    };
    if reg.addrs.is_empty() {
        return Err(Error::bad_param("addrs is required"));
    }
    Ok(reg)
}

/// Handles a register.
pub fn handle(node: &Node, p: &Params, now: i64) -> Result<()> {
    let reg = parse(p)?;
    let replication = p.bool("replication")?;
    let from_zone = p.bool("from_zone")?;
    let inst = node.registry.register(&reg, now)?;
    if !replication {
        node.cluster.replicate(Op::Register(inst), from_zone);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keeps_commas_and_non_string_values() {
        let m = parse_metadata(r#"{"b":"x,y","a":1,"c":{"d":true}}"#)
            .unwrap()
            .unwrap();
        let flat: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(flat, [("a", "1"), ("b", "x,y"), ("c", r#"{"d":true}"#)]);
        assert!(parse_metadata("null").unwrap().is_none());
        assert_eq!(parse_metadata("[1]").unwrap_err().ecode(), -400);
        assert_eq!(parse_metadata("{oops").unwrap_err().ecode(), -400);
    }

    #[test]
    fn status_must_be_up_or_waiting() {
        assert_eq!(parse_status("1").unwrap(), 1);
        assert_eq!(parse_status("2").unwrap(), 2);
        for bad in ["0", "3", "-1", "x"] {
            assert_eq!(parse_status(bad).unwrap_err().ecode(), -400);
        }
    }
}
