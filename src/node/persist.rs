//! Warm restart: the registry saved to a file (`[registry] snapshot`) every `snapshotInterval`
//! and at a graceful stop, and loaded at start before the listener opens. A save is atomic:
//! written to a temporary file beside it, synced, then renamed over the old one.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::Path;
use std::time::Instant;

use crate::clock;
use crate::registry::Registry;
use crate::wire::snapshot::{read, write};
use crate::wire::{Limits, Rules};

/// Saves `registry` to `path`; returns the instances and bytes written.
pub(super) fn save(path: &Path, registry: &Registry) -> io::Result<(usize, usize)> {
    let started = Instant::now();
    let snaps = registry.snapshots();
    let instances = snaps.iter().map(|s| s.len()).sum();
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let bytes = write(&snaps, &mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    // The rename is durable once the directory is synced too.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    tracing::info!(
        path = %path.display(),
        instances,
        bytes,
        millis = started.elapsed().as_millis() as u64,
        "snapshot written"
    );
    Ok((instances, bytes))
}

/// Loads `path` into `registry`, dropping instances silent for longer than `evict_after_ns`.
/// A missing file is a first start; an unreadable, corrupt, truncated or foreign one is refused
/// with a log line, and the node starts empty.
pub(super) fn load(path: &Path, registry: &Registry, evict_after_ns: i64, limits: Limits) -> usize {
    let started = Instant::now();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "no snapshot yet: starting empty");
            return 0;
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "snapshot unreadable: starting empty");
            return 0;
        }
    };
    let now = clock::now_ns();
    // Our own past timestamps: no skew to guard against, only the size limits.
    let rules = Rules {
        now_ns: now,
        max_skew_ns: i64::MAX,
        limits,
    };
    let bytes = file.metadata().map_or(0, |m| m.len());
    let (apps, skipped) = match read(&mut BufReader::with_capacity(1 << 20, file), &rules) {
        Ok(decoded) => decoded,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "snapshot refused: starting empty");
            return 0;
        }
    };
    let mut restored = 0;
    let mut expired = 0;
    for mut app in apps {
        let before = app.instances.len();
        app.instances
            .retain(|r| now.saturating_sub(r.renew_ts.unwrap_or(0)) <= evict_after_ns);
        expired += before - app.instances.len();
        restored += registry.restore_app(&app.instances, app.latest_ts, now);
    }
    // Once for the whole file: a count walks every instance.
    registry.recount();
    tracing::info!(
        path = %path.display(),
        restored,
        expired,
        skipped,
        bytes,
        millis = started.elapsed().as_millis() as u64,
        "snapshot loaded"
    );
    restored
}
