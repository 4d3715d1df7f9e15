//! `park`: P connections each holding a parked long poll; server memory per
//! parked poll, then one change and the time until every poll is answered.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::common::{app_name, host_name, mono, Common};
use crate::args::Args;
use crate::http::{blocking_request, Conn};
use crate::rt::run_threads;
use crate::stats::Lat;
use crate::sys::{self, CpuWindow};
use crate::util::{jscan, race, Either, LocalStop};

pub const SWITCHES: &[&str] = &["quiet", "single"];

/// Answer states kept per poll.
const NOT_ANSWERED: i64 = i64::MIN;

struct Shared {
    t0: Instant,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    /// Requests written (polls that may be parked).
    sent: AtomicUsize,
    open_errors: AtomicU64,
    answered: AtomicUsize,
    /// Per poll: ns since t0 when its answer arrived (0 = none).
    answer_ns: Vec<AtomicU64>,
    /// Per poll: envelope code of the answer (NOT_ANSWERED = none, -1000 =
    /// non-200 or unparsable).
    answer_code: Vec<AtomicI64>,
    /// Per app: ns since t0 when its change was sent (0 = not yet).
    change_ns: Vec<AtomicU64>,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    fn error(&self, e: String) {
        self.open_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.first_error.lock() {
            if g.is_none() {
                *g = Some(e);
            }
        }
    }
}

fn ns_since(t0: Instant) -> u64 {
    (Instant::now() - t0).as_nanos().max(1) as u64
}

pub fn run(argv: &[String]) -> Result<Value, String> {
    let a = Args::parse(argv, SWITCHES)?;
    let c = Common::parse(&a, 8)?;
    let requested = a.get("polls", 2000usize)?.max(1);
    let apps = a.get("apps", 1usize)?.max(1);
    let duration = a.duration("duration", Duration::from_secs(60))?;
    let concurrency = a.get("connect-concurrency", 256usize)?.max(1);
    let settle = a.duration("settle-timeout", Duration::from_secs(15))?;
    let wake_timeout = a.duration("wake-timeout", Duration::from_secs(10))?;
    let single = a.switch("single")?;
    let prefix = a.string("app-prefix", "lt.park");
    a.finish()?;

    let limit = sys::raise_nofile();
    let polls = requested.min(limit.saturating_sub(128) as usize);
    if polls < requested {
        c.log(&format!(
            "park: {requested} polls do not fit RLIMIT_NOFILE {limit}; using {polls}"
        ));
    }
    let t_run = Instant::now();
    let deadline = t_run + duration;
    let pid = c.server_pid.map(|p| p.to_string());
    let rss = || pid.as_deref().and_then(sys::rss_kb).unwrap_or(0);

    // Apps with one instance each; their current latest_timestamp.
    let id = c.ident.clone();
    let mut buf = Vec::new();
    let mut current = Vec::with_capacity(apps);
    for j in 0..apps {
        let app = app_name(&prefix, j);
        id.register(&mut buf, &app, &host_name(&prefix, j), j, 1);
        let (st, body) = blocking_request(c.target.addr, &buf, c.req_timeout)
            .map_err(|e| format!("register {app}: {e}"))?;
        if st != 200 || crate::http::body_code(&body) != Some(0) {
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

    std::thread::sleep(Duration::from_millis(500));
    let rss_before = rss();
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sh = Arc::new(Shared {
        t0,
        deadline,
        stop: stop.clone(),
        sent: AtomicUsize::new(0),
        open_errors: AtomicU64::new(0),
        answered: AtomicUsize::new(0),
        answer_ns: (0..polls).map(|_| AtomicU64::new(0)).collect(),
        answer_code: (0..polls).map(|_| AtomicI64::new(NOT_ANSWERED)).collect(),
        change_ns: (0..apps).map(|_| AtomicU64::new(0)).collect(),
        first_error: std::sync::Mutex::new(None),
    });
    c.log(&format!(
        "park: opening {polls} polls on {apps} app(s) from {} source address(es)",
        c.target.src_addrs
    ));

    // The poll connections run on the load threads; this thread controls.
    let threads = c.threads;
    let c2 = c.clone();
    let sh2 = sh.clone();
    let current2 = Arc::new(current);
    let prefix2 = prefix.clone();
    let load = std::thread::spawn(move || {
        run_threads(threads, c2.driver, move |ti| {
            let c = c2.clone();
            let sh = sh2.clone();
            let current = current2.clone();
            let prefix = prefix2.clone();
            async move {
                let stop = LocalStop::default();
                let watcher = monoio::spawn(stop.clone().watch(
                    sh.stop.clone(),
                    Duration::from_millis(20),
                    sh.deadline,
                ));
                let inflight = Rc::new(Cell::new(0usize));
                let per_thread_limit = concurrency.div_ceil(threads).max(1);
                let keep: Rc<RefCell<Vec<Conn>>> = Rc::new(RefCell::new(Vec::new()));
                let mut hs = Vec::new();
                for p in (ti..polls).step_by(threads) {
                    while inflight.get() >= per_thread_limit && Instant::now() < sh.deadline {
                        monoio::time::sleep(Duration::from_millis(1)).await;
                    }
                    if Instant::now() >= sh.deadline || stop.fired() {
                        break;
                    }
                    inflight.set(inflight.get() + 1);
                    let j = p % current.len();
                    let task = poll_task(
                        c.clone(),
                        sh.clone(),
                        p,
                        app_name(&prefix, j),
                        current[j],
                        single,
                        inflight.clone(),
                        stop.clone(),
                        keep.clone(),
                    );
                    hs.push(monoio::spawn(task));
                }
                for h in hs {
                    h.await;
                }
                watcher.await;
                drop(keep);
            }
        })
    });

    // Ramp: RSS against polls written.
    let mut ramp = Vec::new();
    let t_open = Instant::now();
    let mut opened_at = None;
    while Instant::now() < deadline {
        let sent = sh.sent.load(Ordering::Relaxed);
        ramp.push((sent, rss()));
        if sent + sh.open_errors.load(Ordering::Relaxed) as usize >= polls {
            opened_at = Some(Instant::now());
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let open_s = opened_at.map(|t| (t - t_open).as_secs_f64());
    let sent = sh.sent.load(Ordering::Relaxed);

    // Parked = the server has read every request (empty receive queues on
    // its side) and its CPU has gone quiet.
    let settle_end = (Instant::now() + settle).min(deadline);
    let port = c.target.addr.port();
    let mut drained = 0;
    let mut quiet = false;
    while Instant::now() < settle_end {
        let (_, d) = sys::server_sockets(port);
        drained = d;
        let w = CpuWindow::start(c.server_pid);
        std::thread::sleep(Duration::from_millis(200));
        let busy = w.end().0.unwrap_or(0.0);
        quiet = busy < 5.0;
        if drained >= sent && quiet {
            break;
        }
    }
    ramp.push((sent, rss()));
    let parked_s = (Instant::now() - t_open).as_secs_f64();
    let early_before_change = sh.answered.load(Ordering::Relaxed);
    let rss_after = rss();
    let parked = sent.saturating_sub(early_before_change);
    if parked_s > 25.0 {
        c.log("park: parking took over 25 s; the first polls may have expired (-304) already");
    }

    // The change: re-register each app's instance with a new version.
    let cpu = CpuWindow::start(c.server_pid);
    let mut change_lat = Vec::new();
    let mut change_err = None;
    for j in 0..apps {
        let app = app_name(&prefix, j);
        id.register(&mut buf, &app, &host_name(&prefix, j), j, 2);
        sh.change_ns[j].store(ns_since(t0), Ordering::Relaxed);
        let t = Instant::now();
        match blocking_request(c.target.addr, &buf, c.req_timeout) {
            Ok((200, body)) if crate::http::body_code(&body) == Some(0) => {
                change_lat.push(t.elapsed().as_secs_f64() * 1000.0)
            }
            Ok((st, body)) => {
                change_err = Some(format!(
                    "change {app}: status {st} {}",
                    String::from_utf8_lossy(&body)
                ))
            }
            Err(e) => change_err = Some(format!("change {app}: {e}")),
        }
    }
    let wake_end = (Instant::now() + wake_timeout).min(deadline);
    while Instant::now() < wake_end && sh.answered.load(Ordering::Relaxed) < sent {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (wake_cpu, _) = cpu.end();
    stop.store(true, Ordering::Relaxed);
    let joined = load.join();
    match joined {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("runtime: {e}")),
        Err(_) => return Err("load thread panicked".into()),
    }

    // Figures.
    let mut lat = Lat::default();
    let mut lats_ms = Vec::with_capacity(polls);
    let (mut early, mut bad, mut answered) = (0u64, 0u64, 0u64);
    for p in 0..polls {
        let code = sh.answer_code[p].load(Ordering::Relaxed);
        if code == NOT_ANSWERED {
            continue;
        }
        let at = sh.answer_ns[p].load(Ordering::Relaxed);
        let ch = sh.change_ns[p % apps].load(Ordering::Relaxed);
        if ch == 0 || at < ch {
            early += 1;
            continue;
        }
        if code != 0 {
            bad += 1;
            continue;
        }
        answered += 1;
        let us = (at - ch) / 1000;
        lat.record_us(us);
        lats_ms.push(us as f64 / 1000.0);
    }
    lats_ms.sort_by(|a, b| a.total_cmp(b));
    let cdf: Vec<Value> = if lats_ms.is_empty() {
        Vec::new()
    } else {
        let step = (lats_ms.len() / 500).max(1);
        let mut v: Vec<Value> = lats_ms
            .iter()
            .enumerate()
            .step_by(step)
            .map(|(i, ms)| json!({"fraction": sys::round3((i + 1) as f64 / lats_ms.len() as f64), "ms": sys::round3(*ms)}))
            .collect();
        if let Some(last) = lats_ms.last() {
            v.push(json!({"fraction": 1.0, "ms": sys::round3(*last)}));
        }
        v
    };
    let bytes_per_poll = if parked > 0 && rss_before > 0 {
        Some(((rss_after as f64 - rss_before as f64) * 1024.0 / parked as f64).round())
    } else {
        None
    };
    let open_errors = sh.open_errors.load(Ordering::Relaxed);
    let unanswered = (sent as u64).saturating_sub(answered + early + bad);
    let errors = open_errors + early + bad + unanswered + change_err.is_some() as u64;
    let figures = json!({
        "polls_requested": requested,
        "polls": polls,
        "apps": apps,
        "src_addrs": c.target.src_addrs,
        "sent": sent,
        "open_s": open_s.map(sys::round3),
        "open_rate_per_s": open_s.map(|s| (sent as f64 / s.max(1e-9)).round()),
        "open_errors": open_errors,
        "first_open_error": sh.first_error.lock().ok().and_then(|g| g.clone()),
        "parked": parked,
        "parked_after_s": sys::round3(parked_s),
        "server_drained_sockets": drained,
        "server_quiet": quiet,
        "rss_before_mib": sys::round3(rss_before as f64 / 1024.0),
        "rss_after_mib": sys::round3(rss_after as f64 / 1024.0),
        "bytes_per_parked_poll": bytes_per_poll,
        "change_register_ms": change_lat.iter().map(|v| sys::round3(*v)).collect::<Vec<_>>(),
        "change_error": change_err,
        "answered": answered,
        "answered_early": early,
        "answered_bad": bad,
        "unanswered": unanswered,
        "wake_latency": lat.json(),
        "server_cpu_during_wake_pct": wake_cpu.map(sys::round1),
        "errors": errors,
    });
    let ramp_json: Vec<Value> = ramp
        .iter()
        .map(|(n, kb)| json!({"parked": n, "rss_mib": sys::round3(*kb as f64 / 1024.0)}))
        .collect();
    let v = c.write_report(
        "park",
        &a,
        figures,
        json!({ "ramp": ramp_json, "wake_cdf": cdf }),
    )?;
    print_park(&c.label, &v["figures"]);
    Ok(v)
}

#[allow(clippy::too_many_arguments)]
async fn poll_task(
    c: Common,
    sh: Arc<Shared>,
    p: usize,
    app: String,
    ts: i64,
    single: bool,
    inflight: Rc<Cell<usize>>,
    stop: LocalStop,
    keep: Rc<RefCell<Vec<Conn>>>,
) {
    let release = |inflight: &Rc<Cell<usize>>| inflight.set(inflight.get().saturating_sub(1));
    let mut req = Vec::with_capacity(256);
    let hostname = host_name("lt.park.client", p);
    c.ident
        .polls(&mut req, &[app.as_str()], &[ts], &hostname, single);
    let mut conn = None;
    for attempt in 0..3 {
        if Instant::now() >= sh.deadline || stop.fired() {
            break;
        }
        let limit = mono((Instant::now() + c.req_timeout).min(sh.deadline));
        match monoio::time::timeout_at(limit, c.target.connect()).await {
            Ok(Ok(cn)) => {
                conn = Some(cn);
                break;
            }
            Ok(Err(e)) => {
                if attempt == 2 {
                    sh.error(format!("connect: {e}"));
                }
            }
            Err(_) => {
                if attempt == 2 {
                    sh.error("connect timeout".into());
                }
            }
        }
        monoio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(mut cn) = conn else {
        release(&inflight);
        return;
    };
    let (r, _) = cn.send(req).await;
    release(&inflight);
    if let Err(e) = r {
        sh.error(format!("send: {e}"));
        return;
    }
    sh.sent.fetch_add(1, Ordering::Relaxed);
    let got = monoio::time::timeout_at(mono(sh.deadline), race(cn.recv(), stop.wait())).await;
    if let Ok(Either::Left(res)) = got {
        let at = ns_since(sh.t0);
        let code = match res {
            Ok(resp) if resp.status == 200 => resp.code.unwrap_or(-1000),
            Ok(_) => -1000,
            Err(_) => -1001,
        };
        sh.answer_ns[p].store(at, Ordering::Relaxed);
        sh.answer_code[p].store(code, Ordering::Relaxed);
        sh.answered.fetch_add(1, Ordering::Relaxed);
    }
    // Hold the connection until the runtime ends so closes do not overlap
    // the wake being measured.
    keep.borrow_mut().push(cn);
}

pub fn print_park(label: &str, f: &Value) {
    println!(
        "{label:<8} park    polls {} parked {}  rss {} -> {} MiB ({} B/poll)  answered {} (early {}, bad {}, missing {})  wake p50 {} ms p99 {} ms max {} ms  errors {}",
        f["polls"],
        f["parked"],
        f["rss_before_mib"],
        f["rss_after_mib"],
        f["bytes_per_parked_poll"],
        f["answered"],
        f["answered_early"],
        f["answered_bad"],
        f["unanswered"],
        f["wake_latency"]["p50_ms"],
        f["wake_latency"]["p99_ms"],
        f["wake_latency"]["max_ms"],
        f["errors"],
    );
}
