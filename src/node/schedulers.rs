//! Scheduler files on disk: [`SchedulerDir`] finds which `*.json` files of the config's
//! directory are new, changed or gone, so the housekeeping loop can publish each as a change of
//! its app. Decoding a file is `wire::scheduler`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::registry::AppKey;
use crate::wire::scheduler::{parse, Scheduler};

/// Watches `*.json` files of a directory.
#[derive(Debug)]
pub(crate) struct SchedulerDir {
    dir: PathBuf,
    seen: HashMap<PathBuf, (SystemTime, u64, Option<Scheduler>)>,
}

/// What a scan found: a scheduler set (or replaced) or removed.
#[derive(Debug, PartialEq)]
pub(crate) enum SchedulerChange {
    Set(Scheduler),
    Removed(AppKey),
}

impl SchedulerDir {
    /// Watches `dir` (nothing is read until [`SchedulerDir::scan`]).
    pub(crate) fn new(dir: &Path) -> SchedulerDir {
        SchedulerDir {
            dir: dir.to_path_buf(),
            seen: HashMap::new(),
        }
    }

    /// Reads new and modified files and notices removed ones. Unreadable or invalid files are
    /// logged and skipped (a half-written file is retried on the next scan).
    pub(crate) fn scan(&mut self) -> Vec<SchedulerChange> {
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
