//! The snapshot file a node saves its registry in for a warm restart, written and read as a
//! stream so that neither side holds more than one app's line beyond the registry itself:
//!
//! ```text
//! discovery-snapshot/1
//! {"env":"dev","appid":"a","latest_timestamp":N,"instances":[...]}   one line per app
//! end apps=<lines> crc32=<CRC-32 of the app lines>
//! ```
//!
//! A file of another version, truncated (no end line) or corrupted is refused whole.

use std::io::{self, BufRead, Write};

use super::{instance, Rules};
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

/// Writes `apps` to `out`; returns the bytes written.
pub fn write(apps: &[std::sync::Arc<Snapshot>], out: &mut impl Write) -> io::Result<usize> {
    let mut crc = crc32fast::Hasher::new();
    let mut written = FORMAT.len() + 1;
    writeln!(out, "{FORMAT}")?;
    let mut line = Vec::new();
    let mut count = 0;
    for snap in apps {
        let Some(any) = snap.instances().next() else {
            continue;
        };
        line.clear();
        line.extend_from_slice(b"{\"env\":");
        write_str(&mut line, any.env());
        line.extend_from_slice(b",\"appid\":");
        write_str(&mut line, any.appid());
        line.extend_from_slice(b",\"latest_timestamp\":");
        write_int(&mut line, snap.latest_ts);
        line.extend_from_slice(b",\"instances\":");
        write_instances(&mut line, snap.instances().map(|i| i.as_ref()));
        line.extend_from_slice(b"}\n");
        crc.update(&line);
        out.write_all(&line)?;
        written += line.len();
        count += 1;
    }
    let end = format!("end apps={count} crc32={:08x}\n", crc.finalize());
    out.write_all(end.as_bytes())?;
    Ok(written + end.len())
}

/// An app line as read back: its instances are read one by one.
#[derive(serde::Deserialize)]
struct Line<'a> {
    latest_timestamp: Option<i64>,
    #[serde(borrow)]
    instances: Option<Vec<&'a serde_json::value::RawValue>>,
}

/// Reads a snapshot; instances that fail `rules` are skipped (and counted in the second
/// value).
pub fn read(input: &mut impl BufRead, rules: &Rules) -> Result<(Vec<SavedApp>, usize), String> {
    let mut line = Vec::new();
    let mut next_line = |line: &mut Vec<u8>| -> Result<bool, String> {
        line.clear();
        let n = input
            .read_until(b'\n', line)
            .map_err(|e| format!("read: {e}"))?;
        Ok(n > 0)
    };
    if !next_line(&mut line)? {
        return Err("empty file".into());
    }
    let head = String::from_utf8_lossy(&line);
    if head.trim_end() != FORMAT {
        return Err(format!(
            "format {:?}, this node reads {FORMAT:?}",
            head.trim_end()
        ));
    }
    let mut crc = crc32fast::Hasher::new();
    let mut apps = Vec::new();
    let mut skipped = 0;
    loop {
        if !next_line(&mut line)? || !line.ends_with(b"\n") {
            return Err("no end line (truncated?)".into());
        }
        if let Some(end) = line.strip_prefix(b"end ") {
            let end = String::from_utf8_lossy(end);
            let want = format!("apps={} crc32={:08x}", apps.len(), crc.finalize());
            if end.trim_end() != want {
                return Err(format!(
                    "end line {:?}, the content gives {want:?} (corrupted)",
                    end.trim_end()
                ));
            }
            return Ok((apps, skipped));
        }
        crc.update(&line);
        let app: Line = serde_json::from_slice(&line)
            .map_err(|e| format!("an app line is not JSON (corrupted): {e}"))?;
        let mut instances = Vec::new();
        for raw in app.instances.unwrap_or_default() {
            match instance::from_raw(raw, rules) {
                Ok(reg) => instances.push(reg),
                Err(_) => skipped += 1,
            }
        }
        let latest_ts = app.latest_timestamp.unwrap_or(0);
        apps.push(SavedApp {
            latest_ts,
            instances,
        });
    }
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
        let mut out = Vec::new();
        write(&r.snapshots(), &mut out).unwrap();
        out
    }

    fn decode(bytes: &[u8], rules: &Rules) -> Result<(Vec<SavedApp>, usize), String> {
        read(&mut &bytes[..], rules)
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

        let truncated = &bytes[..bytes.len() - 40];
        assert!(decode(truncated, &RULES).unwrap_err().contains("truncated"));
        let mut flipped = bytes.clone();
        let body = bytes.iter().position(|b| *b == b'\n').unwrap();
        let at = body + bytes[body..].iter().position(|b| *b == b'h').unwrap();
        flipped[at] = b'k';
        assert!(decode(&flipped, &RULES).unwrap_err().contains("corrupted"));
        let other = String::from_utf8(bytes.clone())
            .unwrap()
            .replace(FORMAT, "discovery-snapshot/9");
        assert!(decode(other.as_bytes(), &RULES)
            .unwrap_err()
            .contains("format"));
        assert!(decode(b"", &RULES).is_err());
    }
}
