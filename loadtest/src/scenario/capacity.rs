//! `capacity`: steps the fleet up (instances x factor per step, consumers in
//! proportion) until renew p99 reaches the limit, errors appear or renews
//! fall behind; reports the largest passing step.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::common::Common;
use super::fleet::{run_fleet, FleetCfg, FleetResult};
use crate::args::Args;
use crate::sys;

pub const SWITCHES: &[&str] = &["quiet"];

fn judge(r: &FleetResult, p99_limit: f64, min_done: f64) -> Vec<String> {
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

pub fn run(argv: &[String]) -> Result<Value, String> {
    let a = Args::parse(argv, SWITCHES)?;
    let c = Common::parse(&a, 16)?;
    let mut cfg = FleetCfg::parse_base(&a)?;
    let p99_limit = a.get("p99-ms", 50.0f64)?;
    let start = a.get("start", 1000usize)?.max(1);
    let factor = a.get("factor", 2.0f64)?;
    let max_instances = a.get("max-instances", 1_048_576usize)?;
    let max_steps = a.get("max-steps", 12usize)?.max(1);
    let ratio = a.get("consumers-per-instance", 0.1f64)?;
    let max_consumers = a.get("max-consumers", 10_000usize)?;
    let min_done = a.get("min-done-ratio", 0.95f64)?;
    let budget = a.duration("time-budget", Duration::from_secs(900))?;
    let retries = a.get("retries", 1usize)?;
    a.finish()?;
    if factor <= 1.0 {
        return Err("--factor must be above 1".into());
    }
    sys::raise_nofile();
    let t_start = Instant::now();
    let mut steps = Vec::new();
    let mut best: Option<Value> = None;
    let mut registered = 0usize;
    let mut n = start;
    let mut stop_reason = String::from("max steps reached");
    for step in 0..max_steps {
        if n > max_instances {
            stop_reason = "max instances reached".into();
            break;
        }
        // A step costs at least its duration plus registration; stop before
        // a step that would run past the budget.
        let est =
            cfg.warmup + cfg.duration + Duration::from_secs_f64((n - registered) as f64 / 5000.0);
        if t_start.elapsed() + est > budget {
            stop_reason = "time budget reached".into();
            break;
        }
        cfg.instances = n;
        cfg.consumers = ((n as f64 * ratio).ceil() as usize).min(max_consumers);
        c.log(&format!(
            "capacity step {step}: {n} instances, {} consumers",
            cfg.consumers
        ));
        // A failing step is run again (up to --retries times) so that one
        // noisy window does not end the search.
        let mut attempts = 0;
        let (r, why) = loop {
            attempts += 1;
            let r = run_fleet(&c, &cfg, registered)?;
            registered = n;
            let why = judge(&r, p99_limit, min_done);
            if why.is_empty() || attempts > retries {
                break (r, why);
            }
            c.log(&format!(
                "capacity step {step} failed ({}); running it again",
                why.join(", ")
            ));
        };
        let pass = why.is_empty();
        let f = &r.figures;
        let summary = json!({
            "step": step,
            "instances": n,
            "apps": f["apps"],
            "consumers": r.consumers,
            "pass": pass,
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
        });
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
        steps.push(summary.clone());
        if !pass {
            stop_reason = "step failed".into();
            break;
        }
        best = Some(summary);
        let next = (n as f64 * factor).ceil() as usize;
        n = next.max(n + 1);
    }
    let figures = json!({
        "p99_limit_ms": p99_limit,
        "stop_reason": stop_reason,
        "best_instances": best.as_ref().map(|b| b["instances"].clone()),
        "best_consumers": best.as_ref().map(|b| b["consumers"].clone()),
        "best": best.as_ref().map(|b| {
            let mut b = b.clone();
            if let Some(o) = b.as_object_mut() {
                o.remove("figures");
            }
            b
        }),
        "steps": steps.iter().map(|s| {
            let mut s = s.clone();
            if let Some(o) = s.as_object_mut() {
                o.remove("figures");
            }
            s
        }).collect::<Vec<_>>(),
        "elapsed_s": sys::round3(t_start.elapsed().as_secs_f64()),
    });
    let details: Vec<Value> = steps.iter().map(|s| s["figures"].clone()).collect();
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
