//! The fleet's report: figures (registration, renew, polls, churn, errors,
//! resources) and series (per second, and RSS against instances registered)
//! built from what the ramp and the steady phase measured.

use serde_json::{json, Value};

use super::register::Ramp;
use super::steady::Steady;
use super::tally::Tally;
use super::{FleetCfg, FleetResult};
use crate::sys::{self, Sample};

/// Builds the result of one fleet run.
pub(super) fn result(
    cfg: &FleetCfg,
    registered: usize,
    consumers: usize,
    ramp: &Ramp,
    steady: &Steady,
) -> FleetResult {
    let t = &steady.tally;
    let errors = t.renew.counts.errors()
        + t.poll_counts.errors()
        + t.churn.counts.errors()
        + ramp
            .bulk
            .as_ref()
            .map(|b| b.stats.counts.errors())
            .unwrap_or(0);
    let (ph, n) = (&steady.phase, cfg.instances);
    let figures = json!({
        "instances": n,
        "apps": cfg.apps(),
        "warmup_s": cfg.warmup.as_secs_f64(),
        "window_start_s": ph.window().map(|w| sys::round3((w.0 - ph.t0).as_secs_f64())),
        "window_s": cfg.duration.as_secs_f64(),
        "consumers": consumers,
        "consumers_requested": cfg.consumers,
        "renew_conns": cfg.renew_conns,
        "registration": registration(ramp, n - registered),
        "renew": renew(cfg, t),
        "polls": polls(t),
        "churn": churn(cfg, t),
        "errors": errors,
        "resources": sys::samples_summary(&steady.samples),
    });
    let series = json!({
        "ramp": ramp_series(ramp, registered),
        "per_second": per_second(t, &steady.samples),
    });
    FleetResult {
        figures,
        series,
        renew_p99_ms: t.renew.lat.ms(0.99),
        errors,
        renew_done_ratio: done_ratio(t),
        consumers,
    }
}

/// Share of the renews due in the window that were answered.
fn done_ratio(t: &Tally) -> f64 {
    if t.renew_scheduled > 0 {
        t.renew.counts.ok as f64 / t.renew_scheduled as f64
    } else {
        1.0
    }
}

fn registration(ramp: &Ramp, new_instances: usize) -> Option<Value> {
    ramp.bulk.as_ref().map(|b| {
        let mut v = b.json();
        v["new_instances"] = json!(new_instances);
        let rate = new_instances as f64 / b.elapsed.as_secs_f64().max(1e-9);
        v["rate_per_s"] = json!(rate.round());
        v
    })
}

fn renew(cfg: &FleetCfg, t: &Tally) -> Value {
    let secs = cfg.duration.as_secs_f64().max(1e-9);
    let sent = t.renew.lat.count();
    json!({
        "target_rate_per_s": sys::round1(cfg.instances as f64 / cfg.renew_interval.as_secs_f64()),
        "scheduled": t.renew_scheduled,
        "sent": sent,
        "ok": t.renew.counts.ok,
        "skipped_late": t.renew_skipped,
        "answered_per_s": sys::round1(t.renew_answered_in_window as f64 / secs),
        "done_ratio": sys::round3(done_ratio(t)),
        "rate_per_s": sys::round1(sent as f64 / secs),
        "latency": t.renew.lat.json(),
        "max_lag_ms": sys::round3(t.renew_max_lag_us as f64 / 1000.0),
        "counts": t.renew.counts.json(),
        "error_samples": t.renew.counts.samples,
    })
}

fn polls(t: &Tally) -> Value {
    json!({
        "synced": t.synced,
        "sync_max_s": sys::round3(t.sync_max_us as f64 / 1e6),
        "answers": t.answers,
        "wakes": t.wakes,
        "wakes_unmatched": t.unmatched,
        "answers_without_change": t.answers_no_change,
        "not_modified": t.not_modified,
        "wake_latency": t.wake.json(),
        "counts": t.poll_counts.json(),
        "error_samples": t.poll_counts.samples,
    })
}

fn churn(cfg: &FleetCfg, t: &Tally) -> Value {
    json!({
        "target_rate_per_s": cfg.churn,
        "writes": t.churn.lat.count(),
        "latency": t.churn.lat.json(),
        "max_lag_ms": sys::round3(t.churn_max_lag_us as f64 / 1000.0),
        "counts": t.churn.counts.json(),
    })
}

/// Renew p99, wake p99, CPU % and RSS for each second of the steady phase.
fn per_second(t: &Tally, samples: &[Sample]) -> Vec<Value> {
    let nsec = t.renew_sec.len().max(t.wake_sec.len()).max(samples.len());
    (0..nsec)
        .map(|s| {
            let r = t.renew_sec.get(s);
            let w = t.wake_sec.get(s);
            let smp = samples.get(s);
            json!({
                "t": s + 1,
                "renews": r.map(|l| l.count()).unwrap_or(0),
                "renew_p99_ms": r.filter(|l| l.count() > 0).map(|l| l.ms(0.99)),
                "wakes": w.map(|l| l.count()).unwrap_or(0),
                "wake_p99_ms": w.filter(|l| l.count() > 0).map(|l| l.ms(0.99)),
                "cpu_pct": smp.map(|x| sys::round1(x.cpu_pct)),
                "rss_mib": smp.map(|x| sys::round3(x.rss_kb as f64 / 1024.0)),
            })
        })
        .collect()
}

/// RSS against instances registered, starting from before the ramp.
fn ramp_series(ramp: &Ramp, registered: usize) -> Vec<Value> {
    let mib = |kb: u64| sys::round3(kb as f64 / 1024.0);
    let first = json!({"t": 0.0, "instances": registered, "rss_mib": mib(ramp.rss0_kb)});
    let rest = ramp
        .samples
        .iter()
        .map(|x| json!({"t": sys::round3(x.t), "instances": x.progress, "rss_mib": mib(x.rss_kb)}));
    std::iter::once(first).chain(rest).collect()
}
