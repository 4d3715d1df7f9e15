//! Park's report: each poll's answer classified against its app's change
//! (on time, early, bad, missing), the wake latency and its CDF, memory per
//! parked poll, and the RSS ramp.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::polls::{Board, NOT_ANSWERED};
use super::{Measured, ParkCfg};
use crate::scenario::common::Common;
use crate::stats::Lat;
use crate::sys;

/// The polls' answers, classified.
#[derive(Default)]
struct Answers {
    lat: Lat,
    /// Wake latencies (ms), for the CDF.
    lats_ms: Vec<f64>,
    /// Answered before their app's change (for example a -304).
    early: u64,
    /// Answered after the change, with a non-zero code.
    bad: u64,
    answered: u64,
}

fn classify(board: &Board, polls: usize, apps: usize) -> Answers {
    let mut a = Answers::default();
    for p in 0..polls {
        let code = board.answer_code[p].load(Ordering::Relaxed);
        if code == NOT_ANSWERED {
            continue;
        }
        let at = board.answer_ns[p].load(Ordering::Relaxed);
        let ch = board.change_ns[p % apps].load(Ordering::Relaxed);
        if ch == 0 || at < ch {
            a.early += 1;
        } else if code != 0 {
            a.bad += 1;
        } else {
            a.answered += 1;
            let us = (at - ch) / 1000;
            a.lat.record_us(us);
            a.lats_ms.push(us as f64 / 1000.0);
        }
    }
    a.lats_ms.sort_by(|x, y| x.total_cmp(y));
    a
}

/// At most about 500 points of the sorted latencies, and the last one.
fn cdf(lats_ms: &[f64]) -> Vec<Value> {
    let Some(last) = lats_ms.last() else {
        return Vec::new();
    };
    let step = (lats_ms.len() / 500).max(1);
    let n = lats_ms.len() as f64;
    let mut v: Vec<Value> = lats_ms
        .iter()
        .enumerate()
        .step_by(step)
        .map(|(i, ms)| json!({"fraction": sys::round3((i + 1) as f64 / n), "ms": sys::round3(*ms)}))
        .collect();
    v.push(json!({"fraction": 1.0, "ms": sys::round3(*last)}));
    v
}

/// The figures and series of a park run.
pub(super) fn build(c: &Common, cfg: &ParkCfg, board: &Board, m: &Measured) -> (Value, Value) {
    let a = classify(board, m.polls, cfg.apps);
    let mib = |kb: u64| sys::round3(kb as f64 / 1024.0);
    let bytes_per_poll = (m.parked > 0 && m.rss_before > 0)
        .then(|| ((m.rss_after as f64 - m.rss_before as f64) * 1024.0 / m.parked as f64).round());
    let open_errors = board.open_errors.load(Ordering::Relaxed);
    let unanswered = (m.sent as u64).saturating_sub(a.answered + a.early + a.bad);
    let errors = open_errors + a.early + a.bad + unanswered + m.change.error.is_some() as u64;
    let open_s = m.opening.open_s;
    let figures = json!({
        "polls_requested": cfg.requested,
        "polls": m.polls,
        "apps": cfg.apps,
        "src_addrs": c.target.src_addrs,
        "sent": m.sent,
        "open_s": open_s.map(sys::round3),
        "open_rate_per_s": open_s.map(|s| (m.sent as f64 / s.max(1e-9)).round()),
        "open_errors": open_errors,
        "first_open_error": board.first_error.lock().ok().and_then(|g| g.clone()),
        "parked": m.parked,
        "parked_after_s": sys::round3(m.parked_s),
        "server_drained_sockets": m.settled.drained,
        "server_quiet": m.settled.quiet,
        "rss_before_mib": mib(m.rss_before),
        "rss_after_mib": mib(m.rss_after),
        "bytes_per_parked_poll": bytes_per_poll,
        "change_register_ms": m.change.register_ms.iter().map(|v| sys::round3(*v)).collect::<Vec<_>>(),
        "change_error": m.change.error,
        "answered": a.answered,
        "answered_early": a.early,
        "answered_bad": a.bad,
        "unanswered": unanswered,
        "wake_latency": a.lat.json(),
        "server_cpu_during_wake_pct": m.wake_cpu.map(sys::round1),
        "server_wake": m.server_wake,
        "errors": errors,
    });
    let ramp: Vec<Value> = m
        .opening
        .ramp
        .iter()
        .map(|(n, kb)| json!({"parked": n, "rss_mib": mib(*kb)}))
        .collect();
    (
        figures,
        json!({ "ramp": ramp, "wake_cdf": cdf(&a.lats_ms) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_is_thinned_to_about_500_points_and_ends_at_one() {
        assert!(cdf(&[]).is_empty());
        let v = cdf(&[1.0, 2.0]);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0]["fraction"], 0.5);
        assert_eq!(v[2], json!({"fraction": 1.0, "ms": 2.0}));
        let many: Vec<f64> = (0..5000).map(f64::from).collect();
        let v = cdf(&many);
        assert_eq!(v.len(), 501);
        assert_eq!(v[500]["ms"], 4999.0);
    }
}
