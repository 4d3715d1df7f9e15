//! The snapshot file a node saves its registry in for a warm restart: a header line with the
//! format's name and version, the body's length and its CRC-32, then the body — a JSON array of
//! apps, each with its `latest_timestamp` and its instances as `fetch/all` shows them. A file of
//! another version, truncated or corrupted is refused whole.

use simd_json::prelude::*;

use super::{instance, json_value, Rules};
use crate::json::{write_int, write_str};
use crate::registry::encode::write_instances;
use crate::registry::instance::Registration;
use crate::registry::snapshot::Snapshot;

/// The format this node writes and reads.
pub const FORMAT: &str = "discovery-snapshot/1";

/// One app as saved.
#[derive(Debug, Clone)]
pub struct SavedApp {
    pub latest_ts: i64,
    pub instances: Vec<Registration>,
}

/// The file's bytes for `apps`.
pub fn encode(apps: &[std::sync::Arc<Snapshot>]) -> Vec<u8> {
    let mut body = Vec::with_capacity(apps.iter().map(|s| s.len() * 400 + 64).sum());
    body.push(b'[');
    let mut first = true;
    for snap in apps.iter().filter(|s| !s.is_empty()) {
        let Some(any) = snap.instances().next() else {
            continue;
        };
        if !first {
            body.push(b',');
        }
        first = false;
        body.extend_from_slice(b"{\"env\":");
        write_str(&mut body, &any.env);
        body.extend_from_slice(b",\"appid\":");
        write_str(&mut body, &any.appid);
        body.extend_from_slice(b",\"latest_timestamp\":");
        write_int(&mut body, snap.latest_ts);
        body.extend_from_slice(b",\"instances\":");
        write_instances(&mut body, snap.instances().map(|i| i.as_ref()));
        body.push(b'}');
    }
    body.push(b']');
    let head = format!(
        "{FORMAT} len={} crc32={:08x}\n",
        body.len(),
        crc32fast::hash(&body)
    );
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads a snapshot file's bytes; instances that fail `rules` are skipped (and counted in the
/// second value).
pub fn decode(bytes: &[u8], rules: &Rules) -> Result<(Vec<SavedApp>, usize), String> {
    let nl = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no header line")?;
    let head = std::str::from_utf8(&bytes[..nl]).map_err(|_| "header is not text")?;
    let body = &bytes[nl + 1..];
    let mut parts = head.split(' ');
    let format = parts.next().unwrap_or_default();
    if format != FORMAT {
        return Err(format!("format {format:?}, this node reads {FORMAT:?}"));
    }
    let field = |name: &str| {
        head.split(' ')
            .find_map(|p| p.strip_prefix(name))
            .ok_or_else(|| format!("header without {name}"))
    };
    let len: usize = field("len=")?.parse().map_err(|_| "bad len")?;
    let crc = u32::from_str_radix(field("crc32=")?, 16).map_err(|_| "bad crc32")?;
    if body.len() != len {
        return Err(format!(
            "{} bytes of body, the header says {len} (truncated?)",
            body.len()
        ));
    }
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch (corrupted)".into());
    }
    let v = json_value(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut apps = Vec::new();
    let mut skipped = 0;
    for app in v.as_array().ok_or("body is not an array")? {
        let latest_ts = app
            .get("latest_timestamp")
            .and_then(|t| t.as_i64())
            .unwrap_or(0);
        let list = app.get("instances").and_then(|l| l.as_array());
        let mut instances = Vec::new();
        for inst in list.map(|l| l.as_slice()).unwrap_or(&[]) {
            match instance::registration_from(inst, rules) {
                Ok(reg) => instances.push(reg),
                Err(_) => skipped += 1,
            }
        }
        apps.push(SavedApp {
            latest_ts,
            instances,
        });
    }
    Ok((apps, skipped))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::park::Hub;
    use crate::registry::Registry;
    use crate::wire::Limits;

    const RULES: Rules = Rules {
        now_ns: i64::MAX / 2,
        max_skew_ns: 0,
        limits: Limits::DEFAULT,
    };

    fn saved() -> Vec<u8> {
        let r = Registry::new(Arc::new(Hub::new()), 1);
        for (app, host) in [("a", "h1"), ("a", "h2"), ("b", "h1")] {
            let reg = Registration {
                zone: "z1".into(),
                env: "dev".into(),
                appid: app.into(),
                hostname: host.into(),
                addrs: vec!["http://1.2.3.4:1".into()],
                metadata: Some(vec![("k".into(), "v,\"w\"".into())]),
                status: 1,
                ..Default::default()
            };
            r.register(&reg, 1_000).unwrap();
        }
        encode(&r.snapshots())
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let bytes = saved();
        let (apps, skipped) = decode(&bytes, &RULES).unwrap();
        assert_eq!(skipped, 0);
        let mut counts: Vec<usize> = apps.iter().map(|a| a.instances.len()).collect();
        counts.sort_unstable();
        assert_eq!(counts, [1, 2]);
        let a = apps.iter().find(|a| a.instances.len() == 2).unwrap();
        assert_eq!(
            a.instances[0].metadata.as_ref().unwrap()[0].1.as_ref(),
            "v,\"w\""
        );
        assert_eq!(a.instances[0].renew_ts, Some(1_000));

        let truncated = &bytes[..bytes.len() - 3];
        assert!(decode(truncated, &RULES).unwrap_err().contains("truncated"));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        assert!(decode(&flipped, &RULES).unwrap_err().contains("checksum"));
        let other = String::from_utf8(bytes.clone())
            .unwrap()
            .replace(FORMAT, "discovery-snapshot/9");
        assert!(decode(other.as_bytes(), &RULES)
            .unwrap_err()
            .contains("format"));
        assert!(decode(b"", &RULES).is_err());
    }
}
