//! `capacity`: steps the fleet up (instances x factor per step, consumers in
//! proportion) until renew p99 reaches the limit, errors appear or renews
//! fall behind; reports the largest passing step.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::common::Common;
use super::fleet::{run_fleet, FleetCfg, FleetResult};
use crate::args::Args;
use crate::sys;

/// Switches (flags without a value) of capacity.
pub const SWITCHES: &[&str] = &["quiet"];

/// Capacity's own flags (the fleet's are in `FleetCfg`).
struct CapacityCfg {
    p99_limit: f64,
    start: usize,
    factor: f64,
    max_instances: usize,
    max_steps: usize,
    consumers_per_instance: f64,
    max_consumers: usize,
    min_done: f64,
    budget: Duration,
    retries: usize,
}

impl CapacityCfg {
    fn parse(a: &Args) -> Result<CapacityCfg, String> {
        let cap = CapacityCfg {
            p99_limit: a.get("p99-ms", 50.0f64)?,
            start: a.get("start", 1000usize)?.max(1),
            factor: a.get("factor", 2.0f64)?,
            max_instances: a.get("max-instances", 1_048_576usize)?,
            max_steps: a.get("max-steps", 12usize)?.max(1),
            consumers_per_instance: a.get("consumers-per-instance", 0.1f64)?,
            max_consumers: a.get("max-consumers", 10_000usize)?,
            min_done: a.get("min-done-ratio", 0.95f64)?,
            budget: a.duration("time-budget", Duration::from_secs(900))?,
            retries: a.get("retries", 1usize)?,
        };
        if cap.factor <= 1.0 {
            return Err("--factor must be above 1".into());
        }
        Ok(cap)
    }
}

/// Why a step fails (empty when it passes).
fn judge(r: &FleetResult, cap: &CapacityCfg) -> Vec<String> {
    let (p99_limit, min_done) = (cap.p99_limit, cap.min_done);
    let mut why = Vec::new();
    if r.renew_p99_ms >= p99_limit {
        why.push(format!(
            "renew p99 {:.3} ms >= {p99_limit} ms",
            r.renew_p99_ms
        ));
    }
    if r.errors > 0 {
        why.push(format!("{} errors", r.errors));
    }
    if r.renew_done_ratio < min_done {
        why.push(format!(
            "only {:.1}% of scheduled renews answered",
            r.renew_done_ratio * 100.0
        ));
    }
    why
}

/// `loadgen capacity`: the search, reported.
pub fn run(argv: &[String]) -> Result<Value, String> {
    let a = Args::parse(argv, SWITCHES)?;
    let c = Common::parse(&a, 16)?;
    let mut cfg = FleetCfg::parse_base(&a)?;
    let cap = CapacityCfg::parse(&a)?;
    a.finish()?;
    sys::raise_nofile();
    let t_start = Instant::now();
    let s = search(&c, &cap, &mut cfg, t_start)?;
    let without_figures = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("figures");
        }
        v
    };
    let figures = json!({
        "p99_limit_ms": cap.p99_limit,
        "stop_reason": s.stop_reason,
        "best_instances": s.best.as_ref().map(|b| b["instances"].clone()),
        "best_consumers": s.best.as_ref().map(|b| b["consumers"].clone()),
        "best": s.best.as_ref().map(without_figures),
        "steps": s.steps.iter().map(without_figures).collect::<Vec<_>>(),
        "elapsed_s": sys::round3(t_start.elapsed().as_secs_f64()),
    });
    let details: Vec<Value> = s.steps.iter().map(|s| s["figures"].clone()).collect();
    let v = c.write_report("capacity", &a, figures, json!({ "step_figures": details }))?;
    println!(
        "{:<8} capacity: largest passing step {} instances / {} consumers ({})",
        c.label,
        v["figures"]["best_instances"],
        v["figures"]["best_consumers"],
        v["figures"]["stop_reason"]
    );
    Ok(v)
}

/// The steps run, the largest passing one, and why the search stopped.
struct Search {
    steps: Vec<Value>,
    best: Option<Value>,
    stop_reason: String,
}

/// Runs fleet steps, growing by `factor`, until one fails or a limit stops
/// the search.
fn search(
    c: &Common,
    cap: &CapacityCfg,
    cfg: &mut FleetCfg,
    t_start: Instant,
) -> Result<Search, String> {
    let mut s = Search {
        steps: Vec::new(),
        best: None,
        stop_reason: String::from("max steps reached"),
    };
    let mut registered = 0usize;
    let mut n = cap.start;
    for step in 0..cap.max_steps {
        if n > cap.max_instances {
            s.stop_reason = "max instances reached".into();
            break;
        }
        // A step costs at least its duration plus registration; stop before
        // a step that would run past the budget.
        let est =
            cfg.warmup + cfg.duration + Duration::from_secs_f64((n - registered) as f64 / 5000.0);
        if t_start.elapsed() + est > cap.budget {
            s.stop_reason = "time budget reached".into();
            break;
        }
        cfg.instances = n;
        let consumers = (n as f64 * cap.consumers_per_instance).ceil() as usize;
        cfg.consumers = consumers.min(cap.max_consumers);
        let (summary, pass) = run_step(c, cap, cfg, step, registered)?;
        registered = n;
        s.steps.push(summary.clone());
        if !pass {
            s.stop_reason = "step failed".into();
            break;
        }
        s.best = Some(summary);
        let next = (n as f64 * cap.factor).ceil() as usize;
        n = next.max(n + 1);
    }
    Ok(s)
}

/// Runs one step (again, up to `--retries` times, while it fails, so that
/// one noisy window does not end the search); returns its summary and
/// whether it passed.
fn run_step(
    c: &Common,
    cap: &CapacityCfg,
    cfg: &FleetCfg,
    step: usize,
    registered: usize,
) -> Result<(Value, bool), String> {
    let n = cfg.instances;
    c.log(&format!(
        "capacity step {step}: {n} instances, {} consumers",
        cfg.consumers
    ));
    let mut attempts = 0;
    let mut registered = registered;
    let (r, why) = loop {
        attempts += 1;
        let r = run_fleet(c, cfg, registered)?;
        registered = n;
        let why = judge(&r, cap);
        if why.is_empty() || attempts > cap.retries {
            break (r, why);
        }
        c.log(&format!(
            "capacity step {step} failed ({}); running it again",
            why.join(", ")
        ));
    };
    let pass = why.is_empty();
    let summary = step_summary(step, &r, &why, attempts, n);
    println!(
        "{:<8} capacity step {step}: instances {n} consumers {} renew p99 {} ms  wake p99 {} ms  errors {}  rss {} MiB  -> {}",
        c.label,
        r.consumers,
        summary["renew_p99_ms"],
        summary["wake_p99_ms"],
        r.errors,
        summary["server_rss_max_mib"],
        if pass { "pass".to_string() } else { format!("fail: {}", summary["fail_reasons"]) }
    );
    Ok((summary, pass))
}

/// One step's row: the figures capacity judges and shows, and the full
/// fleet figures (kept in the series only).
fn step_summary(step: usize, r: &FleetResult, why: &[String], attempts: usize, n: usize) -> Value {
    let f = &r.figures;
    json!({
        "step": step,
        "instances": n,
        "apps": f["apps"],
        "consumers": r.consumers,
        "pass": why.is_empty(),
        "attempts": attempts,
        "fail_reasons": why,
        "renew_rate_per_s": f["renew"]["rate_per_s"],
        "renew_answered_per_s": f["renew"]["answered_per_s"],
        "renew_p50_ms": f["renew"]["latency"]["p50_ms"],
        "renew_p99_ms": f["renew"]["latency"]["p99_ms"],
        "renew_done_ratio": f["renew"]["done_ratio"],
        "wake_p99_ms": f["polls"]["wake_latency"]["p99_ms"],
        "wakes": f["polls"]["wakes"],
        "registration_rate_per_s": f["registration"]["rate_per_s"],
        "errors": r.errors,
        "server_cpu_avg_pct": f["resources"]["server_cpu_avg_pct"],
        "server_rss_max_mib": f["resources"]["server_rss_max_mib"],
        "figures": r.figures,
    })
}
