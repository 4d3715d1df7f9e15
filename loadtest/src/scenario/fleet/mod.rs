//! `fleet`: a production-like mix. N instances register (the ramp), then
//! renew every R seconds (spread evenly), M consumers long-poll K apps each
//! through /discovery/polls, and a churn writer re-registers random instances
//! with a new version (a change that must wake the polls on that app).
//!
//! Layout: `register` (phase 1, the ramp), `steady` (phase 2: the load
//! threads) running `renew` (the renew driver), `consumer` (the long polls
//! and wake matching) and `churn` (the coordinator that opens the window,
//! and the churn writer); `phase` (the clock and signals they share),
//! `tally` (per-thread figures) and `figures` (the report).

mod churn;
mod consumer;
mod figures;
mod phase;
mod register;
mod renew;
mod steady;
mod tally;

use std::time::Duration;

use serde_json::Value;

use super::common::{app_name, host_name, Common};
use crate::args::Args;
use crate::sys;

/// Switches (flags without a value) of fleet and capacity.
pub const SWITCHES: &[&str] = &["quiet"];

/// Whether a connection stays open after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    Alive,
    Close,
}

impl Keep {
    /// After an answer: close when the server said so.
    fn after(close: bool) -> Keep {
        if close {
            Keep::Close
        } else {
            Keep::Alive
        }
    }
}

/// The fleet's flags.
#[derive(Clone, Debug)]
pub struct FleetCfg {
    pub instances: usize,
    pub per_app: usize,
    pub renew_interval: Duration,
    pub renew_conns: usize,
    pub register_conns: usize,
    pub consumers: usize,
    pub watch: usize,
    pub churn: f64,
    pub warmup: Duration,
    pub sync_timeout: Duration,
    pub settle_lag: Duration,
    pub connect_concurrency: usize,
    pub duration: Duration,
    pub prefix: String,
}

impl FleetCfg {
    /// Flags shared by fleet and capacity; `instances` and `consumers` are
    /// read by the caller because capacity steps them.
    pub fn parse_base(a: &Args) -> Result<FleetCfg, String> {
        let cfg = FleetCfg {
            instances: 0,
            per_app: a.get("per-app", 10usize)?.max(1),
            renew_interval: a.duration("renew-interval", Duration::from_secs(30))?,
            renew_conns: match a.string("renew-conns", "auto").as_str() {
                "auto" => 0,
                v => v
                    .parse::<usize>()
                    .map_err(|_| format!("--renew-conns: expected a number or auto, got `{v}`"))?
                    .max(1),
            },
            register_conns: a.get("register-conns", 16usize)?.max(1),
            consumers: 0,
            watch: a.get("watch", 10usize)?.max(1),
            churn: a.rate("churn", 10.0)?,
            warmup: a.duration("warmup", Duration::from_secs(2))?,
            sync_timeout: a.duration("sync-timeout", Duration::from_secs(60))?,
            settle_lag: a.duration("settle-lag", Duration::from_millis(500))?,
            connect_concurrency: a.get("connect-concurrency", 256usize)?.max(1),
            duration: a.duration("duration", Duration::from_secs(30))?,
            prefix: a.string("app-prefix", "lt.fleet"),
        };
        if cfg.renew_interval < Duration::from_millis(100) {
            return Err("--renew-interval must be at least 100ms".into());
        }
        Ok(cfg)
    }

    /// Apps in the fleet (the last one may be partly filled).
    pub fn apps(&self) -> usize {
        self.instances.div_ceil(self.per_app).max(1)
    }

    /// Instance i belongs to app i / per_app (so adding instances adds apps).
    pub fn names(&self, i: usize) -> (String, String) {
        (
            app_name(&self.prefix, i / self.per_app),
            host_name(&self.prefix, i),
        )
    }

    /// The apps consumer m watches: (m·K + t) mod apps.
    fn consumer_apps(&self, m: usize) -> Vec<usize> {
        let a = self.apps();
        let k = self.watch.min(a);
        (0..k).map(|t| (m * k + t) % a).collect()
    }

    /// With `--renew-conns auto`: one connection per 100 renews/s (so each
    /// has 10 ms per renew), at least 32. The fleet's instances share
    /// connections, and one connection sends its renews one after another.
    fn with_renew_conns(&self) -> FleetCfg {
        let mut cfg = self.clone();
        if cfg.renew_conns == 0 {
            let rate = cfg.instances as f64 / cfg.renew_interval.as_secs_f64();
            cfg.renew_conns = ((rate / 100.0).ceil() as usize).clamp(32, 2048);
        }
        cfg
    }

    /// Consumers that fit the open-file limit beside the renew connections.
    fn consumers_that_fit(&self, c: &Common) -> usize {
        let budget = sys::nofile_limit().saturating_sub(self.renew_conns as u64 + 128) as usize;
        let consumers = self.consumers.min(budget);
        if consumers < self.consumers {
            c.log(&format!(
                "fleet: {} consumers do not fit RLIMIT_NOFILE {}; using {consumers}",
                self.consumers,
                sys::nofile_limit()
            ));
        }
        consumers
    }
}

/// Outcome of one fleet run, with the figures capacity judges.
pub struct FleetResult {
    pub figures: Value,
    pub series: Value,
    pub renew_p99_ms: f64,
    pub errors: u64,
    pub renew_done_ratio: f64,
    pub consumers: usize,
}

/// Registers instances `registered..cfg.instances`, then runs the steady mix
/// for `cfg.duration`.
pub fn run_fleet(c: &Common, cfg: &FleetCfg, registered: usize) -> Result<FleetResult, String> {
    let cfg = cfg.with_renew_conns();
    let consumers = cfg.consumers_that_fit(c);
    let ramp = register::ramp(c, &cfg, registered)?;
    let steady = steady::run(c, &cfg, consumers)?;
    Ok(figures::result(&cfg, registered, consumers, &ramp, &steady))
}

/// `loadgen fleet`: one fleet run, reported.
pub fn run(argv: &[String]) -> Result<Value, String> {
    let a = Args::parse(argv, SWITCHES)?;
    let c = Common::parse(&a, 16)?;
    let mut cfg = FleetCfg::parse_base(&a)?;
    cfg.instances = a.get("instances", 1000usize)?.max(1);
    cfg.consumers = a.get("consumers", 100usize)?;
    a.finish()?;
    sys::raise_nofile();
    let r = run_fleet(&c, &cfg, 0)?;
    let v = c.write_report("fleet", &a, r.figures, r.series)?;
    print_fleet(&c.label, &v["figures"]);
    Ok(v)
}

/// One line of the main figures on stdout.
pub fn print_fleet(label: &str, f: &Value) {
    let rn = &f["renew"];
    let p = &f["polls"];
    let res = &f["resources"];
    println!(
        "{label:<8} fleet   instances {} consumers {}  renew {}/s p50 {} ms p99 {} ms (done {})  wakes {} p50 {} ms p99 {} ms (unmatched {})  errors {}  server cpu avg {}%  rss max {} MiB",
        f["instances"],
        f["consumers"],
        rn["rate_per_s"],
        rn["latency"]["p50_ms"],
        rn["latency"]["p99_ms"],
        rn["done_ratio"],
        p["wakes"],
        p["wake_latency"]["p50_ms"],
        p["wake_latency"]["p99_ms"],
        p["wakes_unmatched"],
        f["errors"],
        res["server_cpu_avg_pct"],
        res["server_rss_max_mib"],
    );
}
