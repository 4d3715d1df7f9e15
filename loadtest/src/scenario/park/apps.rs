//! Park's writes, sent one at a time from the control thread with blocking
//! requests: the set-up (one instance per app, and each app's current
//! `latest_timestamp`) and the change (each instance re-registered with a
//! new version) whose wake is measured.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::polls::Board;
use super::ParkCfg;
use crate::http::{blocking_request, body_code};
use crate::jscan;
use crate::scenario::common::{app_name, host_name, Common};

/// Registers one instance per app; returns each app's latest_timestamp.
pub(super) fn register_apps(c: &Common, cfg: &ParkCfg) -> Result<Vec<i64>, String> {
    let id = &c.ident;
    let mut buf = Vec::new();
    let mut current = Vec::with_capacity(cfg.apps);
    for j in 0..cfg.apps {
        let app = app_name(&cfg.prefix, j);
        id.register(&mut buf, &app, &host_name(&cfg.prefix, j), j, 1);
        let (st, body) = blocking_request(c.target.addr, &buf, c.req_timeout)
            .map_err(|e| format!("register {app}: {e}"))?;
        if st != 200 || body_code(&body) != Some(0) {
            return Err(format!(
                "register {app}: status {st} body {}",
                String::from_utf8_lossy(&body)
            ));
        }
        id.fetch(&mut buf, &app);
        let (st, body) = blocking_request(c.target.addr, &buf, c.req_timeout)
            .map_err(|e| format!("fetch {app}: {e}"))?;
        let ts = jscan::fetch_timestamp(&body)
            .filter(|_| st == 200)
            .ok_or_else(|| {
                format!(
                    "fetch {app}: no latest_timestamp (status {st}) in {}",
                    String::from_utf8_lossy(&body)
                )
            })?;
        current.push(ts);
    }
    Ok(current)
}

/// The change: how long each register took, and the last failure.
pub(super) struct Change {
    pub register_ms: Vec<f64>,
    pub error: Option<String>,
}

/// Re-registers each app's instance with version 2, recording on the board
/// when each change was sent.
pub(super) fn change_all(c: &Common, cfg: &ParkCfg, board: &Board) -> Change {
    let mut buf = Vec::new();
    let mut ch = Change {
        register_ms: Vec::new(),
        error: None,
    };
    for j in 0..cfg.apps {
        let app = app_name(&cfg.prefix, j);
        c.ident
            .register(&mut buf, &app, &host_name(&cfg.prefix, j), j, 2);
        board.change_ns[j].store(board.ns_since_t0(), Ordering::Relaxed);
        let t = Instant::now();
        match blocking_request(c.target.addr, &buf, c.req_timeout) {
            Ok((200, body)) if body_code(&body) == Some(0) => {
                ch.register_ms.push(t.elapsed().as_secs_f64() * 1000.0)
            }
            Ok((st, body)) => {
                ch.error = Some(format!(
                    "change {app}: status {st} {}",
                    String::from_utf8_lossy(&body)
                ))
            }
            Err(e) => ch.error = Some(format!("change {app}: {e}")),
        }
    }
    ch
}
