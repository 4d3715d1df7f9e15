//! `renew`: write throughput of POST /discovery/renew.

use std::time::Duration;

use serde_json::Value;

use super::closed::{measured_loop, print_closed};
use super::common::{app_name, bulk, host_name, Common};
use crate::args::Args;
use crate::proto::{envelope_ok, Ident};

/// Switches (flags without a value) of renew.
pub const SWITCHES: &[&str] = &["quiet"];

/// Renew's flags.
pub struct RenewCfg {
    pub conns: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub instances: usize,
    pub apps: usize,
    pub prefix: String,
}

impl RenewCfg {
    /// Reads renew's flags.
    pub fn parse(a: &Args) -> Result<RenewCfg, String> {
        let instances = a.get("instances", 1000usize)?.max(1);
        Ok(RenewCfg {
            conns: a.get("conns", 64usize)?.max(1),
            duration: a.duration("duration", Duration::from_secs(10))?,
            warmup: a.duration("warmup", Duration::from_secs(1))?,
            instances,
            apps: a.get("apps", 10usize)?.clamp(1, instances),
            prefix: a.string("app-prefix", "lt.renew"),
        })
    }

    /// Instance i belongs to app i % apps.
    pub fn names(prefix: &str, apps: usize, i: usize) -> (String, String) {
        (app_name(prefix, i % apps), host_name(prefix, i))
    }

    /// The answer a renew returns (the instance), for the ceiling.
    pub fn sample_body(&self, id: &Ident) -> String {
        let (app, host) = Self::names(&self.prefix, self.apps, 0);
        envelope_ok(&id.instance_json(&app, &host, 0, 1_700_000_000_000_000_000))
    }
}

/// `loadgen renew`: one renew run, reported.
pub fn run(argv: &[String]) -> Result<Value, String> {
    let a = Args::parse(argv, SWITCHES)?;
    let c = Common::parse(&a, 1)?;
    let cfg = RenewCfg::parse(&a)?;
    a.finish()?;

    c.log(&format!(
        "renew: registering {} instances over {} apps",
        cfg.instances, cfg.apps
    ));
    let id = c.ident.clone();
    let (prefix, apps) = (cfg.prefix.clone(), cfg.apps);
    let reg = bulk(
        &c,
        0..cfg.instances,
        16,
        0,
        None,
        Duration::from_secs(300),
        move |i, buf| {
            let (app, host) = RenewCfg::names(&prefix, apps, i);
            id.register(buf, &app, &host, i, 1);
        },
    )?;
    if reg.failed > 0 {
        return Err(format!(
            "registration failed for {} instances ({:?})",
            reg.failed, reg.stats.counts.samples
        ));
    }

    c.log(&format!(
        "renew: {} conns for {:?} (+{:?} warm-up)",
        cfg.conns, cfg.duration, cfg.warmup
    ));
    let id = c.ident.clone();
    let (prefix, apps, n, conns) = (cfg.prefix.clone(), cfg.apps, cfg.instances, cfg.conns);
    // Connection ci renews instances ci, ci + conns, ... in turn.
    let make = move |ci, k, buf: &mut Vec<u8>| {
        let i = ((ci as u64 + k * conns as u64) % n as u64) as usize;
        let (app, host) = RenewCfg::names(&prefix, apps, i);
        id.renew(buf, &app, &host);
    };
    let m = measured_loop(&c, cfg.conns, cfg.warmup, cfg.duration, make)?;
    let mut figures = m.figures();
    figures["registration"] = reg.json();
    let v = c.write_report("renew", &a, figures, m.series())?;
    print_closed(&c, "renew", &v);
    Ok(v)
}
