//! Back-to-back requests over keep-alive connections (fetch and renew): each
//! connection sends its next request as soon as the last one is answered.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::common::{connect_counted, mono, Common};
use crate::rt::{run_threads, Target};
use crate::stats::ReqStats;
use crate::sys::{self, CpuWindow, Sample, Sampler};

/// What a closed loop measured.
pub struct Closed {
    pub stats: ReqStats,
    /// The measured window (the warm-up is not in it).
    pub window: Duration,
    /// Connection attempts, the first connects included.
    pub connects: u64,
}

/// A closed loop with the server's CPU and RSS measured around it.
pub struct Measured {
    pub closed: Closed,
    /// The server's CPU over the loop (% of a core), when its pid is known.
    pub server_cpu: Option<f64>,
    pub loadgen_cpu: f64,
    /// The server's CPU and RSS once a second.
    pub samples: Vec<Sample>,
}

/// Runs `closed_loop` (answers must carry code 0) while sampling the server.
pub fn measured_loop<F>(
    c: &Common,
    conns: usize,
    warmup: Duration,
    duration: Duration,
    make: F,
) -> Result<Measured, String>
where
    F: Fn(usize, u64, &mut Vec<u8>) + Send + Sync + 'static,
{
    let sampler = Sampler::start(c.server_pid, Duration::from_secs(1), Instant::now(), None);
    let cpu = CpuWindow::start(c.server_pid);
    let closed = closed_loop(c, conns, warmup, duration, 0, make);
    let (server_cpu, loadgen_cpu) = cpu.end();
    let samples = sampler.finish();
    Ok(Measured {
        closed: closed?,
        server_cpu,
        loadgen_cpu,
        samples,
    })
}

impl Measured {
    /// The figures fetch and renew share.
    pub fn figures(&self) -> Value {
        let r = &self.closed.stats;
        json!({
            "req_per_s": (r.lat.count() as f64 / self.closed.window.as_secs_f64()).round(),
            "latency": r.lat.json(),
            "errors": r.counts.errors(),
            "counts": r.counts.json(),
            "error_samples": r.counts.samples,
            "connect_attempts": self.closed.connects,
            "server_cpu_pct": self.server_cpu.map(sys::round1),
            "loadgen_cpu_pct": sys::round1(self.loadgen_cpu),
            "resources": sys::samples_summary(&self.samples),
        })
    }

    /// The series fetch and renew share.
    pub fn series(&self) -> Value {
        json!({ "samples": sys::samples_json(&self.samples) })
    }
}

/// Human summary shared by fetch and renew.
pub fn print_closed(c: &Common, what: &str, v: &Value) {
    let f = &v["figures"];
    let l = &f["latency"];
    println!(
        "{:<8} {:<7} {:>10} req/s  p50 {:>7} ms  p99 {:>7} ms  p999 {:>7} ms  max {:>7} ms  errors {}  server cpu {}%  loadgen cpu {}%",
        c.label,
        what,
        f["req_per_s"],
        l["p50_ms"],
        l["p99_ms"],
        l["p999_ms"],
        l["max_ms"],
        f["errors"],
        f["server_cpu_pct"],
        f["loadgen_cpu_pct"],
    );
    if let Some(s) = f["error_samples"].as_array() {
        if !s.is_empty() {
            println!("         error kinds: {}", Value::Array(s.clone()));
        }
    }
}

/// `conns` connections each send a request, wait for its answer and send the
/// next, from now until `warmup + duration`. Only requests sent after the
/// warm-up and answered before the end are recorded. `make(conn, k, buf)`
/// writes the k-th request of a connection into `buf` (it may leave a fixed
/// request in place).
pub fn closed_loop<F>(
    c: &Common,
    conns: usize,
    warmup: Duration,
    duration: Duration,
    want: i64,
    make: F,
) -> Result<Closed, String>
where
    F: Fn(usize, u64, &mut Vec<u8>) + Send + Sync + 'static,
{
    let mstart = Instant::now() + warmup;
    let job = Arc::new(ClosedJob {
        mstart,
        end: mstart + duration,
        want,
        target: c.target.clone(),
        req_timeout: c.req_timeout,
        make,
    });
    let threads = c.threads.min(conns.max(1));
    let per_thread = run_threads(threads, c.driver, move |ti| {
        let mine: Vec<usize> = (ti..conns).step_by(threads).collect();
        closed_thread(job.clone(), mine)
    })
    .map_err(|e| format!("runtime: {e}"))?;
    let mut stats = ReqStats::default();
    let mut connects = 0;
    for (s, n) in &per_thread {
        stats.merge(s);
        connects += n;
    }
    Ok(Closed {
        stats,
        window: duration,
        connects,
    })
}

/// A closed loop, shared by its connections on every thread.
struct ClosedJob<F> {
    /// Start of the measured window.
    mstart: Instant,
    end: Instant,
    want: i64,
    target: Target,
    req_timeout: Duration,
    /// Writes a connection's k-th request.
    make: F,
}

/// One load thread: its connections (by index), and what they measured.
async fn closed_thread<F>(job: Arc<ClosedJob<F>>, mine: Vec<usize>) -> (ReqStats, u64)
where
    F: Fn(usize, u64, &mut Vec<u8>) + Send + Sync + 'static,
{
    let stats = Rc::new(RefCell::new(ReqStats::default()));
    let connects = Rc::new(Cell::new(0u64));
    let handles: Vec<_> = mine
        .into_iter()
        .map(|ci| {
            monoio::spawn(closed_conn(
                job.clone(),
                ci,
                stats.clone(),
                connects.clone(),
            ))
        })
        .collect();
    for h in handles {
        h.await;
    }
    let stats = Rc::try_unwrap(stats)
        .map(|s| s.into_inner())
        .unwrap_or_default();
    (stats, connects.get())
}

/// Connection `ci`: request, answer, next request, until the end.
async fn closed_conn<F>(
    job: Arc<ClosedJob<F>>,
    ci: usize,
    stats: Rc<RefCell<ReqStats>>,
    connects: Rc<Cell<u64>>,
) where
    F: Fn(usize, u64, &mut Vec<u8>),
{
    let mut conn = None;
    let mut req = Vec::with_capacity(512);
    let mut k: u64 = 0;
    while Instant::now() < job.end {
        if conn.is_none() {
            conn = connect_counted(&job.target, job.req_timeout, &stats).await;
            connects.set(connects.get() + 1);
        }
        let Some(cn) = conn.as_mut() else {
            continue;
        };
        (job.make)(ci, k, &mut req);
        k += 1;
        let t = Instant::now();
        let limit = (t + job.req_timeout).min(job.end + Duration::from_secs(1));
        match monoio::time::timeout_at(mono(limit), cn.call(req)).await {
            Ok((Ok(resp), back)) => {
                req = back;
                let now = Instant::now();
                if t >= job.mstart && now <= job.end {
                    let mut s = stats.borrow_mut();
                    s.lat.record(now - t);
                    s.counts.answer(resp.status, resp.code, job.want);
                    s.bytes += cn.body().len() as u64;
                }
                if resp.close {
                    conn = None;
                }
            }
            Ok((Err(e), back)) => {
                req = back;
                req.clear();
                if Instant::now() < job.end {
                    stats.borrow_mut().counts.io(&e);
                }
                conn = None;
            }
            Err(_) => {
                // The request buffer went with the dropped future.
                req = Vec::with_capacity(512);
                if Instant::now() < job.end {
                    stats.borrow_mut().counts.io(&"timeout");
                }
                conn = None;
            }
        }
    }
}
