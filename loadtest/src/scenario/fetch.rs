//! `fetch`: read throughput of GET /discovery/fetch (or fetchs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::closed::{measured_loop, print_closed};
use super::common::{app_name, bulk, host_name, Common};
use crate::args::Args;
use crate::proto::{envelope_ok, Ident};

/// Switches (flags without a value) of fetch.
pub const SWITCHES: &[&str] = &["multi", "quiet"];

/// Fetch's flags.
pub struct FetchCfg {
    pub conns: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub apps: usize,
    pub instances: usize,
    pub multi: bool,
    pub renew_every: Duration,
    pub prefix: String,
}

impl FetchCfg {
    /// Reads fetch's flags.
    pub fn parse(a: &Args) -> Result<FetchCfg, String> {
        let cfg = FetchCfg {
            conns: a.get("conns", 64usize)?.max(1),
            duration: a.duration("duration", Duration::from_secs(10))?,
            warmup: a.duration("warmup", Duration::from_secs(1))?,
            apps: a.get("apps", 1usize)?.max(1),
            instances: a.get("instances", 10usize)?.max(1),
            multi: a.switch("multi")?,
            renew_every: a.duration("renew-every", Duration::from_secs(30))?,
            prefix: a.string("app-prefix", "lt.fetch"),
        };
        if cfg.renew_every < Duration::from_secs(1) {
            return Err("--renew-every must be at least 1s".into());
        }
        Ok(cfg)
    }

    /// Names of the registered apps.
    pub fn apps(&self) -> Vec<String> {
        (0..self.apps).map(|j| app_name(&self.prefix, j)).collect()
    }

    /// Instance k of app j is item j * instances + k.
    fn item(&self, i: usize) -> (String, String) {
        let j = i / self.instances;
        (app_name(&self.prefix, j), host_name(&self.prefix, i))
    }

    /// The answer a fetch (or fetchs) of this set-up returns, for the ceiling.
    pub fn sample_body(&self, id: &Ident) -> String {
        let ts = 1_700_000_000_000_000_000i64;
        let info = |j: usize| {
            let hosts: Vec<(String, usize)> = (0..self.instances)
                .map(|k| {
                    let i = j * self.instances + k;
                    (host_name(&self.prefix, i), i)
                })
                .collect();
            id.instance_info_json(&app_name(&self.prefix, j), &hosts, ts)
        };
        if self.multi {
            let parts: Vec<String> = (0..self.apps)
                .map(|j| format!("\"{}\":{}", app_name(&self.prefix, j), info(j)))
                .collect();
            envelope_ok(&format!("{{{}}}", parts.join(",")))
        } else {
            envelope_ok(&info(0))
        }
    }
}

/// Registers every instance of the set-up; returns the bulk report.
fn register_all(c: &Common, cfg: &FetchCfg) -> Result<Value, String> {
    let total = cfg.apps * cfg.instances;
    let id = c.ident.clone();
    let prefix = cfg.prefix.clone();
    let per_app = cfg.instances;
    let b = bulk(
        c,
        0..total,
        8,
        0,
        None,
        Duration::from_secs(120),
        move |i, buf| {
            let app = app_name(&prefix, i / per_app);
            id.register(buf, &app, &host_name(&prefix, i), i, 1);
        },
    )?;
    if b.failed > 0 {
        return Err(format!(
            "registration failed for {} of {total} instances ({:?})",
            b.failed, b.stats.counts.samples
        ));
    }
    Ok(b.json())
}

/// Renews every instance each `every` until `stop`, on its own thread.
pub fn background_renewer(
    c: &Common,
    total: usize,
    every: Duration,
    name: impl Fn(usize) -> (String, String) + Send + Sync + Clone + 'static,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let c = c.clone();
    std::thread::spawn(move || {
        let mut failures = 0u64;
        let mut next = Instant::now() + every;
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() < next {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            next += every;
            let id = c.ident.clone();
            let name = name.clone();
            if let Ok(b) = bulk(&c, 0..total, 2, 0, None, every, move |i, buf| {
                let (app, host) = name(i);
                id.renew(buf, &app, &host);
            }) {
                failures += b.failed;
            }
        }
        failures
    })
}

/// `loadgen fetch`: one fetch run, reported.
pub fn run(argv: &[String]) -> Result<Value, String> {
    let a = Args::parse(argv, SWITCHES)?;
    let c = Common::parse(&a, 1)?;
    let cfg = FetchCfg::parse(&a)?;
    a.finish()?;

    c.log(&format!(
        "fetch: registering {} app(s) x {} instance(s)",
        cfg.apps, cfg.instances
    ));
    let reg = register_all(&c, &cfg)?;

    let stop = Arc::new(AtomicBool::new(false));
    let cfg = Arc::new(cfg);
    let cfg2 = cfg.clone();
    let renewer = background_renewer(
        &c,
        cfg.apps * cfg.instances,
        cfg.renew_every,
        move |i| cfg2.item(i),
        stop.clone(),
    );
    c.log(&format!(
        "fetch: {} conns for {:?} (+{:?} warm-up), {}",
        cfg.conns,
        cfg.duration,
        cfg.warmup,
        if cfg.multi { "fetchs" } else { "fetch" }
    ));
    let m = measured_loop(
        &c,
        cfg.conns,
        cfg.warmup,
        cfg.duration,
        request(&c, cfg.clone()),
    );
    stop.store(true, Ordering::Relaxed);
    let renew_failures = renewer.join().unwrap_or(0);
    let m = m?;

    let r = &m.closed.stats;
    let mut figures = m.figures();
    figures["answer_bytes_avg"] = json!(r.bytes.checked_div(r.lat.count()).unwrap_or(0));
    figures["registration"] = reg;
    figures["background_renew_failures"] = json!(renew_failures);
    let v = c.write_report("fetch", &a, figures, m.series())?;
    print_closed(&c, "fetch", &v);
    Ok(v)
}

/// Connection ci's fetch (app ci mod apps) or fetchs (every app), written
/// once: the request stays the same for the whole run.
fn request(c: &Common, cfg: Arc<FetchCfg>) -> impl Fn(usize, u64, &mut Vec<u8>) + Send + Sync {
    let id = c.ident.clone();
    let apps = cfg.apps();
    move |ci, _k, buf| {
        if !buf.is_empty() {
            return;
        }
        if cfg.multi {
            id.fetchs(buf, &apps);
        } else {
            id.fetch(buf, &apps[ci % apps.len()]);
        }
    }
}
