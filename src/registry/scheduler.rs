//! Scheduler files: one JSON file per `(appid, env)` beside the config, giving cross-zone traffic
//! weights that are attached to that app's answers. [`SchedulerDir`] finds what changed on disk so
//! the housekeeping loop can publish it as a change of the app.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use simd_json::prelude::*;

use super::json;
use super::AppKey;

/// A parsed scheduler: whose it is and its encoded `{"clients":...,"remark":""}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduler {
    pub key: AppKey,
    pub encoded: Bytes,
}

/// Parses one scheduler file's text.
pub fn parse(text: &[u8]) -> Result<Scheduler, String> {
    let mut buf = text.to_vec();
    let value = simd_json::to_owned_value(&mut buf).map_err(|e| format!("invalid JSON: {e}"))?;
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

/// Watches `*.json` files of a directory.
#[derive(Debug)]
pub struct SchedulerDir {
    dir: PathBuf,
    seen: HashMap<PathBuf, (SystemTime, u64, Option<Scheduler>)>,
}

/// What a scan found: a scheduler set (or replaced) or removed.
#[derive(Debug, PartialEq)]
pub enum SchedulerChange {
    Set(Scheduler),
    Removed(AppKey),
}

impl SchedulerDir {
    /// Watches `dir` (nothing is read until [`SchedulerDir::scan`]).
    pub fn new(dir: &Path) -> SchedulerDir {
        SchedulerDir {
            dir: dir.to_path_buf(),
            seen: HashMap::new(),
        }
    }

    /// Reads new and modified files and notices removed ones. Unreadable or invalid files are
    /// logged and skipped (a half-written file is retried on the next scan).
    pub fn scan(&mut self) -> Vec<SchedulerChange> {
        let mut changes = Vec::new();
        let mut present = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read scheduler directory");
                return changes;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let stamp = (
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
            );
            present.push(path.clone());
            if self
                .seen
                .get(&path)
                .is_some_and(|(m, l, _)| (*m, *l) == stamp)
            {
                continue;
            }
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse(&text));
            let old = self.seen.remove(&path).and_then(|(_, _, s)| s);
            match parsed {
                Ok(s) => {
                    tracing::info!(file = %path.display(), appid = %s.key.appid, env = %s.key.env, "scheduler loaded");
                    if let Some(o) = old.filter(|o| o.key != s.key) {
                        changes.push(SchedulerChange::Removed(o.key));
                    }
                    changes.push(SchedulerChange::Set(s.clone()));
                    self.seen.insert(path, (stamp.0, stamp.1, Some(s)));
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "scheduler file skipped");
                    self.seen.insert(path, (stamp.0, stamp.1, old));
                }
            }
        }
        let gone: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|p| !present.contains(p))
            .cloned()
            .collect();
        for path in gone {
            if let Some((_, _, Some(s))) = self.seen.remove(&path) {
                tracing::info!(file = %path.display(), "scheduler removed");
                changes.push(SchedulerChange::Removed(s.key));
            }
        }
        changes
    }
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

    #[test]
    fn scan_sees_new_changed_and_removed_files() {
        let dir = std::env::temp_dir().join(format!("sched-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("demo.json");
        std::fs::write(&file, br#"{"app_id":"demo","env":"dev","clients":{}}"#).unwrap();
        std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
        let mut watch = SchedulerDir::new(&dir);
        assert!(matches!(watch.scan().as_slice(), [SchedulerChange::Set(_)]));
        assert!(watch.scan().is_empty());
        std::fs::write(
            &file,
            br#"{"app_id":"demo","env":"dev","clients":{"a":{"zones":{"b":{"weight":2}}}}}"#,
        )
        .unwrap();
        assert!(matches!(watch.scan().as_slice(), [SchedulerChange::Set(_)]));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(
            watch.scan(),
            vec![SchedulerChange::Removed(AppKey::new("dev", "demo"))]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
