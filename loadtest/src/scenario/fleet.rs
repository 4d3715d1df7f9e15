//! `fleet`: a production-like mix. N instances renew every R seconds (spread
//! evenly), M consumers long-poll K apps each through /discovery/polls, and a
//! churn writer re-registers random instances with a new version (a change
//! that must wake the polls on that app).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::common::{app_name, bulk, connect_counted, host_name, mono, Common};
use crate::args::Args;
use crate::rt::run_threads;
use crate::stats::{Counts, Lat, ReqStats};
use crate::sys::{self, Sampler};
use crate::util::{jscan, race, Either, LocalStop};

pub const SWITCHES: &[&str] = &["quiet"];

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

    fn consumer_apps(&self, m: usize) -> Vec<usize> {
        let a = self.apps();
        let k = self.watch.min(a);
        (0..k).map(|t| (m * k + t) % a).collect()
    }
}

/// One churn write: wall-clock send time (ns since the epoch, comparable to
/// the server's latest_timestamp) and monotonic send time (ns since t0).
#[derive(Clone, Copy)]
struct ChurnEntry {
    wall_ns: i64,
    mono_ns: u64,
}

/// The steady phase. Renews run from t0; the measured window starts once the
/// warm-up has passed and every consumer has synced (its first poll is
/// answered at once with everything it watches, a burst that is start-up,
/// not steady state), or at the sync deadline, and lasts `duration`.
struct Shared {
    t0: Instant,
    warmup: Duration,
    duration: Duration,
    sync_deadline: Instant,
    hard_end: Instant,
    /// ns after t0 at which the window starts; 0 until it is known.
    mstart_ns: AtomicU64,
    /// Set when the window has ended; every task then stops.
    done: Arc<AtomicBool>,
    /// Per renew connection: how late (ns) its last renew was sent.
    renew_lag_ns: Vec<AtomicU64>,
    synced: AtomicUsize,
    churn_log: Vec<Mutex<Vec<ChurnEntry>>>,
}

impl Shared {
    fn window(&self) -> Option<(Instant, Instant)> {
        match self.mstart_ns.load(Ordering::Acquire) {
            0 => None,
            ns => {
                let s = self.t0 + Duration::from_nanos(ns);
                Some((s, s + self.duration))
            }
        }
    }

    fn end(&self) -> Instant {
        self.window().map(|w| w.1).unwrap_or(self.hard_end)
    }
}

#[derive(Default)]
struct PerThread {
    renew: ReqStats,
    renew_sec: Vec<Lat>,
    renew_max_lag_us: u64,
    renew_scheduled: u64,
    renew_skipped: u64,
    /// Renews answered inside the window, whenever they were due.
    renew_answered_in_window: u64,
    wake: Lat,
    wake_sec: Vec<Lat>,
    wakes: u64,
    unmatched: u64,
    answers: u64,
    answers_no_change: u64,
    not_modified: u64,
    poll_counts: Counts,
    synced: u64,
    sync_max_us: u64,
    churn: ReqStats,
    churn_max_lag_us: u64,
}

impl PerThread {
    fn merge(&mut self, o: &PerThread) {
        self.renew.merge(&o.renew);
        merge_secs(&mut self.renew_sec, &o.renew_sec);
        self.renew_max_lag_us = self.renew_max_lag_us.max(o.renew_max_lag_us);
        self.renew_scheduled += o.renew_scheduled;
        self.renew_skipped += o.renew_skipped;
        self.renew_answered_in_window += o.renew_answered_in_window;
        self.wake.merge(&o.wake);
        merge_secs(&mut self.wake_sec, &o.wake_sec);
        self.wakes += o.wakes;
        self.unmatched += o.unmatched;
        self.answers += o.answers;
        self.answers_no_change += o.answers_no_change;
        self.not_modified += o.not_modified;
        self.poll_counts.merge(&o.poll_counts);
        self.synced += o.synced;
        self.sync_max_us = self.sync_max_us.max(o.sync_max_us);
        self.churn.merge(&o.churn);
        self.churn_max_lag_us = self.churn_max_lag_us.max(o.churn_max_lag_us);
    }
}

fn merge_secs(a: &mut Vec<Lat>, b: &[Lat]) {
    while a.len() < b.len() {
        a.push(Lat::new(2));
    }
    for (x, y) in a.iter_mut().zip(b) {
        x.merge(y);
    }
}

fn sec_slot(v: &mut Vec<Lat>, s: usize) -> &mut Lat {
    let s = s.min(100_000);
    while v.len() <= s {
        v.push(Lat::new(2));
    }
    &mut v[s]
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
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
    let n = cfg.instances;
    let mut cfg = cfg.clone();
    if cfg.renew_conns == 0 {
        // One connection per 100 renews/s (so each has 10 ms per renew),
        // at least 32: the fleet's instances share connections, and one
        // connection sends its renews one after another.
        let rate = n as f64 / cfg.renew_interval.as_secs_f64();
        cfg.renew_conns = ((rate / 100.0).ceil() as usize).clamp(32, 2048);
    }
    let cfg = &cfg;
    let budget = sys::nofile_limit().saturating_sub(cfg.renew_conns as u64 + 128) as usize;
    let consumers = cfg.consumers.min(budget);
    if consumers < cfg.consumers {
        c.log(&format!(
            "fleet: {} consumers do not fit RLIMIT_NOFILE {}; using {consumers}",
            cfg.consumers,
            sys::nofile_limit()
        ));
    }

    // Phase 1: registration ramp (memory against instances registered).
    c.log(&format!(
        "fleet: registering instances {registered}..{n} ({} apps)",
        cfg.apps()
    ));
    let progress = Arc::new(AtomicU64::new(registered as u64));
    let t_reg = Instant::now();
    let rss0 = c
        .server_pid
        .and_then(|p| sys::rss_kb(&p.to_string()))
        .unwrap_or(0);
    let ramp_sampler = Sampler::start(
        c.server_pid,
        Duration::from_millis(50),
        t_reg,
        Some(progress.clone()),
    );
    let reg = if registered < n {
        let id = c.ident.clone();
        let cfg2 = cfg.clone();
        let limit = Duration::from_secs(600);
        Some(bulk(
            c,
            registered..n,
            cfg.register_conns,
            0,
            Some(progress.clone()),
            limit,
            move |i, buf| {
                let (app, host) = cfg2.names(i);
                id.register(buf, &app, &host, i, 1);
            },
        )?)
    } else {
        None
    };
    let ramp = ramp_sampler.finish();
    let reg_failed = reg.as_ref().map(|b| b.failed).unwrap_or(0);
    if reg_failed > 0 {
        c.log(&format!("fleet: {reg_failed} registrations failed"));
    }

    // Phase 2: the steady mix.
    let apps = cfg.apps();
    let t0 = Instant::now();
    let sync_deadline = t0 + cfg.warmup + cfg.sync_timeout;
    let shared = Arc::new(Shared {
        t0,
        warmup: cfg.warmup,
        duration: cfg.duration,
        sync_deadline,
        hard_end: sync_deadline + cfg.duration,
        mstart_ns: AtomicU64::new(0),
        done: Arc::new(AtomicBool::new(false)),
        renew_lag_ns: (0..cfg.renew_conns).map(|_| AtomicU64::new(0)).collect(),
        synced: AtomicUsize::new(0),
        churn_log: (0..apps).map(|_| Mutex::new(Vec::new())).collect(),
    });
    c.log(&format!(
        "fleet: {n} instances renewing every {:?} over {} conns, {consumers} consumers x {} apps, churn {}/s, {:?}",
        cfg.renew_interval,
        cfg.renew_conns,
        cfg.watch.min(apps),
        cfg.churn,
        cfg.duration
    ));
    let sampler = Sampler::start(c.server_pid, Duration::from_secs(1), t0, None);
    let threads = c.threads;
    let cfg_a = Arc::new(cfg.clone());
    let c2 = c.clone();
    let shared2 = shared.clone();
    let per_thread = run_threads(threads, c.driver, move |ti| {
        let cfg = cfg_a.clone();
        let c = c2.clone();
        let shared = shared2.clone();
        async move {
            let st = Rc::new(RefCell::new(PerThread::default()));
            let stop = LocalStop::default();
            let watcher = monoio::spawn(stop.clone().watch(
                shared.done.clone(),
                Duration::from_millis(20),
                shared.hard_end,
            ));
            let mut hs = Vec::new();
            for r in (ti..cfg.renew_conns).step_by(threads) {
                hs.push(monoio::spawn(renew_task(
                    c.clone(),
                    cfg.clone(),
                    shared.clone(),
                    st.clone(),
                    r,
                    stop.clone(),
                )));
            }
            if ti == 0 {
                hs.push(monoio::spawn(coordinator_task(
                    c.clone(),
                    cfg.clone(),
                    shared.clone(),
                    st.clone(),
                    consumers,
                )));
            }
            // Consumers connect a bounded number at a time, so that thousands
            // of simultaneous connects do not overflow the server's backlog.
            let gate = Rc::new(Cell::new(0usize));
            let limit = cfg.connect_concurrency.div_ceil(threads).max(1);
            for m in (ti..consumers).step_by(threads) {
                while gate.get() >= limit && Instant::now() < shared.hard_end && !stop.fired() {
                    monoio::time::sleep(Duration::from_millis(1)).await;
                }
                gate.set(gate.get() + 1);
                hs.push(monoio::spawn(consumer_task(
                    c.clone(),
                    cfg.clone(),
                    shared.clone(),
                    st.clone(),
                    m,
                    stop.clone(),
                    gate.clone(),
                )));
            }
            for h in hs {
                h.await;
            }
            watcher.await;
            Rc::try_unwrap(st)
                .map(|s| s.into_inner())
                .unwrap_or_default()
        }
    })
    .map_err(|e| format!("runtime: {e}"))?;
    let samples = sampler.finish();
    let mut t = PerThread::default();
    for p in &per_thread {
        t.merge(p);
    }

    let secs = cfg.duration.as_secs_f64().max(1e-9);
    let renew_sent = t.renew.lat.count();
    let renew_done_ratio = if t.renew_scheduled > 0 {
        t.renew.counts.ok as f64 / t.renew_scheduled as f64
    } else {
        1.0
    };
    let errors = t.renew.counts.errors()
        + t.poll_counts.errors()
        + t.churn.counts.errors()
        + reg.as_ref().map(|b| b.stats.counts.errors()).unwrap_or(0);
    let figures = json!({
        "instances": n,
        "apps": apps,
        "warmup_s": cfg.warmup.as_secs_f64(),
        "window_start_s": shared.window().map(|w| sys::round3((w.0 - t0).as_secs_f64())),
        "window_s": cfg.duration.as_secs_f64(),
        "consumers": consumers,
        "consumers_requested": cfg.consumers,
        "renew_conns": cfg.renew_conns,
        "registration": reg.as_ref().map(|b| {
            let mut v = b.json();
            v["new_instances"] = json!(n - registered);
            v["rate_per_s"] = json!(((n - registered) as f64 / b.elapsed.as_secs_f64().max(1e-9)).round());
            v
        }),
        "renew": {
            "target_rate_per_s": sys::round1(n as f64 / cfg.renew_interval.as_secs_f64()),
            "scheduled": t.renew_scheduled,
            "sent": renew_sent,
            "ok": t.renew.counts.ok,
            "skipped_late": t.renew_skipped,
            "answered_per_s": sys::round1(t.renew_answered_in_window as f64 / secs),
            "done_ratio": sys::round3(renew_done_ratio),
            "rate_per_s": sys::round1(renew_sent as f64 / secs),
            "latency": t.renew.lat.json(),
            "max_lag_ms": sys::round3(t.renew_max_lag_us as f64 / 1000.0),
            "counts": t.renew.counts.json(),
            "error_samples": t.renew.counts.samples,
        },
        "polls": {
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
        },
        "churn": {
            "target_rate_per_s": cfg.churn,
            "writes": t.churn.lat.count(),
            "latency": t.churn.lat.json(),
            "max_lag_ms": sys::round3(t.churn_max_lag_us as f64 / 1000.0),
            "counts": t.churn.counts.json(),
        },
        "errors": errors,
        "resources": sys::samples_summary(&samples),
    });
    let nsec = t.renew_sec.len().max(t.wake_sec.len()).max(samples.len());
    let per_second: Vec<Value> = (0..nsec)
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
        .collect();
    let ramp_json: Vec<Value> = std::iter::once(json!({"t": 0.0, "instances": registered, "rss_mib": sys::round3(rss0 as f64 / 1024.0)}))
        .chain(ramp.iter().map(|x| json!({"t": sys::round3(x.t), "instances": x.progress, "rss_mib": sys::round3(x.rss_kb as f64 / 1024.0)})))
        .collect();
    let series = json!({ "ramp": ramp_json, "per_second": per_second });
    Ok(FleetResult {
        figures,
        series,
        renew_p99_ms: t.renew.lat.ms(0.99),
        errors,
        renew_done_ratio,
        consumers,
    })
}

/// Renews the instances i with i % renew_conns == r, instance i at offset
/// i/N * R within each period R, until the end.
async fn renew_task(
    c: Common,
    cfg: Arc<FleetCfg>,
    sh: Arc<Shared>,
    st: Rc<RefCell<PerThread>>,
    r: usize,
    stop: LocalStop,
) {
    let n = cfg.instances;
    let rc = cfg.renew_conns;
    let mine: Vec<usize> = (r..n).step_by(rc).collect();
    if mine.is_empty() {
        return;
    }
    let period = cfg.renew_interval;
    let offset = |i: usize| period.mul_f64(i as f64 / n as f64);
    let tmp = Rc::new(RefCell::new(ReqStats::default()));
    let mut conn = None;
    let mut req = Vec::with_capacity(256);
    let mut k: u64 = 0;
    let l = mine.len() as u64;
    loop {
        let idx = (k % l) as usize;
        let i = mine[idx];
        let due = sh.t0 + period * (k / l) as u32 + offset(i);
        let end = sh.end();
        let now = Instant::now();
        if due >= end || now >= end || stop.fired() {
            break;
        }
        if due > now + Duration::from_micros(500) {
            sh.renew_lag_ns[r].store(0, Ordering::Relaxed);
            monoio::time::sleep_until(mono(due.min(end))).await;
            continue;
        }
        sh.renew_lag_ns[r].store(
            now.saturating_duration_since(due).as_nanos() as u64,
            Ordering::Relaxed,
        );
        if now.saturating_duration_since(due) > period {
            // More than a whole interval late: like a client's ticker, drop
            // the missed renews and go on from the renews due in the last
            // 0.9 interval (each instance's latest missed one at most).
            let target = now.checked_sub(period.mul_f64(0.9)).unwrap_or(sh.t0);
            let x = (target - sh.t0).as_secs_f64() / period.as_secs_f64();
            let p = x.floor();
            let frac = x - p;
            let pos = mine.partition_point(|&m| (m as f64 / n as f64) < frac) as u64;
            let next = p as u64 * l + pos;
            if next > k {
                st.borrow_mut().renew_skipped += next - k;
                k = next;
                continue;
            }
        }
        if conn.is_none() {
            conn = connect_counted(&c.target, c.req_timeout, &tmp).await;
            if conn.is_none() {
                continue;
            }
        }
        let Some(cn) = conn.as_mut() else {
            continue;
        };
        k += 1;
        let (app, host) = cfg.names(i);
        c.ident.renew(&mut req, &app, &host);
        let t = Instant::now();
        let lag = t.saturating_duration_since(due).as_micros() as u64;
        let limit = (t + c.req_timeout).min(sh.hard_end + Duration::from_secs(2));
        let res = monoio::time::timeout_at(mono(limit), cn.call(std::mem::take(&mut req))).await;
        let done = Instant::now();
        let in_window = sh.window().is_some_and(|(ws, we)| due >= ws && due < we);
        let mut s = st.borrow_mut();
        if in_window {
            s.renew_max_lag_us = s.renew_max_lag_us.max(lag);
        }
        match res {
            Ok((Ok(resp), back)) => {
                req = back;
                let d = done - t;
                sec_slot(&mut s.renew_sec, (t - sh.t0).as_secs() as usize).record(d);
                if sh.window().is_some_and(|(ws, we)| done >= ws && done < we) {
                    s.renew_answered_in_window += 1;
                }
                if in_window {
                    s.renew.lat.record(d);
                    s.renew.counts.answer(resp.status, resp.code, 0);
                }
                if resp.close {
                    conn = None;
                }
            }
            Ok((Err(e), back)) => {
                req = back;
                if in_window {
                    s.renew.counts.io(&e);
                }
                conn = None;
            }
            Err(_) => {
                if in_window {
                    s.renew.counts.io(&"timeout");
                }
                conn = None;
            }
        }
    }
    // Renews due inside the measured window, for the done ratio.
    let scheduled: u64 = match sh.window() {
        None => 0,
        Some((ws, we)) => {
            let w0 = (ws - sh.t0).as_secs_f64();
            let w1 = (we - sh.t0).as_secs_f64();
            let per = period.as_secs_f64();
            mine.iter()
                .map(|&i| {
                    let off = offset(i).as_secs_f64();
                    let lo = ((w0 - off).max(0.0) / per).ceil();
                    let hi = ((w1 - off).max(0.0) / per).ceil();
                    (hi - lo).max(0.0) as u64
                })
                .sum()
        }
    };
    let extra = tmp.borrow();
    let mut s = st.borrow_mut();
    s.renew_scheduled += scheduled;
    s.renew.counts.merge(&extra.counts);
}

/// Long-polls K apps with the timestamps last seen, re-polling at once after
/// each answer; each answer that advances an app after the first (sync)
/// answer is a wake, matched against the churn writes to that app.
async fn consumer_task(
    c: Common,
    cfg: Arc<FleetCfg>,
    sh: Arc<Shared>,
    st: Rc<RefCell<PerThread>>,
    m: usize,
    stop: LocalStop,
    gate: Rc<Cell<usize>>,
) {
    let mut gate = Some(gate);
    let watch = cfg.consumer_apps(m);
    let names: Vec<String> = watch.iter().map(|&j| app_name(&cfg.prefix, j)).collect();
    let name_refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let hostname = host_name(&format!("{}.consumer", cfg.prefix), m);
    let mut ts = vec![0i64; watch.len()];
    let mut seen = vec![0usize; watch.len()];
    let mut synced = false;
    let tmp = Rc::new(RefCell::new(ReqStats::default()));
    let mut conn = None;
    let mut req = Vec::with_capacity(512);
    while Instant::now() < sh.end() && !stop.fired() {
        if conn.is_none() {
            conn = connect_counted(&c.target, c.req_timeout, &tmp).await;
            if let Some(g) = gate.take() {
                g.set(g.get().saturating_sub(1));
            }
            if conn.is_none() {
                continue;
            }
        }
        let Some(cn) = conn.as_mut() else {
            continue;
        };
        c.ident.polls(&mut req, &name_refs, &ts, &hostname, false);
        let call = race(cn.call(std::mem::take(&mut req)), stop.wait());
        let res = match monoio::time::timeout_at(mono(sh.hard_end), call).await {
            Ok(Either::Left(r)) => r,
            // The run ended while the poll was parked.
            Ok(Either::Right(())) | Err(_) => break,
        };
        let now = Instant::now();
        match res {
            (Err(e), back) => {
                req = back;
                if now < sh.end() {
                    st.borrow_mut().poll_counts.io(&e);
                }
                conn = None;
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
            (Ok(resp), back) => {
                req = back;
                let status_ok = resp.status == 200;
                match resp.code {
                    Some(0) if status_ok => {
                        let advanced = match jscan::poll_timestamps(cn.body()) {
                            Some(v) => apply_answer(
                                &v, &names, &watch, &mut ts, &mut seen, synced, now, &sh, &st,
                            ),
                            None => {
                                st.borrow_mut().poll_counts.io(&"unparsable polls answer");
                                0
                            }
                        };
                        let mut s = st.borrow_mut();
                        s.poll_counts.ok += 1;
                        if !synced {
                            synced = true;
                            s.synced += 1;
                            s.sync_max_us = s.sync_max_us.max((now - sh.t0).as_micros() as u64);
                            // Churn written before the sync is not this consumer's wake.
                            for (x, &j) in seen.iter_mut().zip(&watch) {
                                *x = sh.churn_log[j].lock().map(|l| l.len()).unwrap_or(0);
                            }
                            drop(s);
                            sh.synced.fetch_add(1, Ordering::Relaxed);
                        } else {
                            s.answers += 1;
                            if advanced == 0 {
                                s.answers_no_change += 1;
                            }
                        }
                    }
                    Some(-304) if status_ok => {
                        st.borrow_mut().not_modified += 1;
                    }
                    _ => {
                        if now < sh.end() {
                            st.borrow_mut()
                                .poll_counts
                                .answer(resp.status, resp.code, 0);
                        }
                        monoio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                if resp.close {
                    conn = None;
                }
            }
        }
    }
    let extra = tmp.borrow();
    st.borrow_mut().poll_counts.merge(&extra.counts);
}

/// Applies a polls answer; returns how many watched apps advanced.
#[allow(clippy::too_many_arguments)]
fn apply_answer(
    data: &[(String, i64)],
    names: &[String],
    watch: &[usize],
    ts: &mut [i64],
    seen: &mut [usize],
    synced: bool,
    now: Instant,
    sh: &Shared,
    st: &RefCell<PerThread>,
) -> u64 {
    let mut advanced = 0;
    for (app, new_ts) in data {
        let new_ts = *new_ts;
        let Some(idx) = names.iter().position(|n| n == app) else {
            continue;
        };
        if new_ts <= ts[idx] {
            continue;
        }
        ts[idx] = new_ts;
        advanced += 1;
        if !synced {
            continue;
        }
        // Match against the churn writes to this app: the first one not yet
        // seen by this consumer whose send time is not after the server's
        // change timestamp.
        let now_ns = (now - sh.t0).as_nanos() as u64;
        let mut s = st.borrow_mut();
        s.wakes += 1;
        let matched = match sh.churn_log[watch[idx]].lock() {
            Ok(log) => {
                let start = seen[idx];
                let covered = log[start.min(log.len())..]
                    .iter()
                    .take_while(|e| e.wall_ns <= new_ts)
                    .count();
                if covered > 0 {
                    seen[idx] = start + covered;
                    Some(now_ns.saturating_sub(log[start].mono_ns))
                } else {
                    None
                }
            }
            Err(_) => None,
        };
        match matched {
            Some(ns) => {
                let us = ns / 1000;
                s.wake.record_us(us);
                sec_slot(&mut s.wake_sec, (now - sh.t0).as_secs() as usize).record_us(us);
            }
            None => s.unmatched += 1,
        }
    }
    advanced
}

/// Starts the measured window (after the warm-up, once every consumer has
/// synced or the sync deadline passed), re-registers random instances with a
/// new version at the churn rate during the window, then tells every task to
/// stop.
async fn coordinator_task(
    c: Common,
    cfg: Arc<FleetCfg>,
    sh: Arc<Shared>,
    st: Rc<RefCell<PerThread>>,
    consumers: usize,
) {
    let warm_end = sh.t0 + sh.warmup;
    loop {
        let now = Instant::now();
        let synced = sh.synced.load(Ordering::Relaxed) >= consumers;
        let lag = sh
            .renew_lag_ns
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let settled = synced && lag < cfg.settle_lag.as_nanos() as u64;
        if now >= warm_end && (settled || now >= sh.sync_deadline) {
            break;
        }
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    let start = Instant::now();
    sh.mstart_ns
        .store((start - sh.t0).as_nanos().max(1) as u64, Ordering::Release);
    let end = sh.end();
    if cfg.churn > 0.0 {
        churn(&c, &cfg, &sh, &st, start, end).await;
    }
    if Instant::now() < end {
        monoio::time::sleep_until(mono(end)).await;
    }
    sh.done.store(true, Ordering::Relaxed);
}

async fn churn(
    c: &Common,
    cfg: &FleetCfg,
    sh: &Shared,
    st: &RefCell<PerThread>,
    start: Instant,
    end: Instant,
) {
    let gap = Duration::from_secs_f64(1.0 / cfg.churn.max(1e-3));
    let tmp = RefCell::new(ReqStats::default());
    let mut conn = None;
    let mut req = Vec::with_capacity(512);
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut k: u32 = 0;
    loop {
        let due = start + gap * k;
        if due >= end || Instant::now() >= end {
            break;
        }
        if due > Instant::now() {
            monoio::time::sleep_until(mono(due)).await;
        }
        if conn.is_none() {
            conn = connect_counted(&c.target, c.req_timeout, &tmp).await;
            if conn.is_none() {
                continue;
            }
        }
        let Some(cn) = conn.as_mut() else {
            continue;
        };
        k += 1;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let i = (rng % cfg.instances as u64) as usize;
        let j = i / cfg.per_app;
        let (app, host) = cfg.names(i);
        c.ident.register(&mut req, &app, &host, i, 1 + k as u64);
        let t = Instant::now();
        if let Ok(mut log) = sh.churn_log[j].lock() {
            log.push(ChurnEntry {
                wall_ns: wall_ns(),
                mono_ns: (t - sh.t0).as_nanos() as u64,
            });
        }
        let limit = (t + c.req_timeout).min(end + Duration::from_secs(2));
        let res = monoio::time::timeout_at(mono(limit), cn.call(std::mem::take(&mut req))).await;
        let mut s = st.borrow_mut();
        s.churn_max_lag_us = s
            .churn_max_lag_us
            .max(t.saturating_duration_since(due).as_micros() as u64);
        match res {
            Ok((Ok(resp), back)) => {
                req = back;
                s.churn.lat.record(t.elapsed());
                s.churn.counts.answer(resp.status, resp.code, 0);
                if resp.close {
                    conn = None;
                }
            }
            Ok((Err(e), back)) => {
                req = back;
                s.churn.counts.io(&e);
                conn = None;
            }
            Err(_) => {
                s.churn.counts.io(&"timeout");
                conn = None;
            }
        }
    }
    let extra = tmp.borrow();
    st.borrow_mut().churn.counts.merge(&extra.counts);
}

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
