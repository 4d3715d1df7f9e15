//! Flags and helpers shared by every scenario.

use std::cell::RefCell;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::args::Args;
use crate::http::Conn;
use crate::proto::Ident;
use crate::rt::{run_threads, Driver, Target};
use crate::stats::ReqStats;
use crate::sys;

/// Flags every scenario takes.
#[derive(Clone)]
pub struct Common {
    pub target: Target,
    pub ident: Ident,
    pub threads: usize,
    pub driver: Driver,
    pub server_pid: Option<u32>,
    pub out: Option<PathBuf>,
    pub label: String,
    /// Longest wait for one ordinary (non-poll) answer.
    pub req_timeout: Duration,
    pub quiet: bool,
}

impl Common {
    /// Reads the common flags; `default_src_addrs` is the scenario's default.
    pub fn parse(a: &Args, default_src_addrs: u32) -> Result<Common, String> {
        let addr: SocketAddrV4 = a
            .string("addr", "127.0.0.1:7171")
            .parse()
            .map_err(|_| "--addr: expected ipv4:port".to_string())?;
        let src_addrs = a.get("src-addrs", default_src_addrs)?;
        let target = Target::new(addr, src_addrs)?;
        let ident = Ident {
            host: addr.to_string(),
            env: a.string("env", "dev"),
            zone: a.string("zone", "sh001"),
            region: a.string("region", "sh"),
        };
        let threads = a.get("threads", sys::nproc())?.max(1);
        let driver = Driver::parse(&a.string("driver", "auto"))?;
        driver.install();
        let server_pid = a.opt::<u32>("server-pid")?;
        let out = a.opt::<String>("out")?.map(PathBuf::from);
        let label = a.string("label", "target");
        let req_timeout = a.duration("timeout", Duration::from_secs(5))?;
        let quiet = a.switch("quiet")?;
        Ok(Common {
            target,
            ident,
            threads,
            driver,
            server_pid,
            out,
            label,
            req_timeout,
            quiet,
        })
    }

    /// Assembles the report, writes it to --out and returns it.
    pub fn write_report(
        &self,
        scenario: &str,
        a: &Args,
        figures: Value,
        series: Value,
    ) -> Result<Value, String> {
        let v = json!({
            "tool": "discovery-loadtest",
            "tool_version": env!("CARGO_PKG_VERSION"),
            "scenario": scenario,
            "target": self.label,
            "started_unix": sys::unix_time(),
            "machine": sys::machine_json(),
            "client": {
                "threads": self.threads,
                "driver": self.driver.name(),
                "cpus": sys::allowed_cpus(),
            },
            "params": a.params_json(),
            "figures": figures,
            "series": series,
        });
        if let Some(p) = &self.out {
            if let Some(dir) = p.parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("create {}: {e}", dir.display()))?;
                }
            }
            let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
            std::fs::write(p, text + "\n").map_err(|e| format!("write {}: {e}", p.display()))?;
        }
        Ok(v)
    }

    /// A progress line on stderr (unless `--quiet`).
    pub fn log(&self, msg: &str) {
        if !self.quiet {
            eprintln!("[{}] {msg}", self.label);
        }
    }
}

/// Name of app j: `<prefix>.app<j>`.
pub fn app_name(prefix: &str, j: usize) -> String {
    format!("{prefix}.app{j}")
}

/// Hostname of instance i: the prefix with dashes, then `-<i>`.
pub fn host_name(prefix: &str, i: usize) -> String {
    format!("{}-{i}", prefix.replace('.', "-"))
}

/// A std instant on monoio's clock.
pub fn mono(t: Instant) -> monoio::time::Instant {
    monoio::time::Instant::from_std(t)
}

/// Result of a closed-loop batch of requests.
pub struct Bulk {
    pub stats: ReqStats,
    pub elapsed: Duration,
    /// Items that were never answered with the wanted code.
    pub failed: u64,
}

impl Bulk {
    /// The bulk's figures for the report.
    pub fn json(&self) -> Value {
        json!({
            "elapsed_s": sys::round3(self.elapsed.as_secs_f64()),
            "failed_items": self.failed,
            "result": self.stats.json(self.elapsed),
        })
    }
}

/// Sends one request per item in `items`, closed loop over `conns`
/// keep-alive connections, as fast as the server answers. An item whose
/// connection fails is retried up to 3 times; a wrong answer is not retried.
/// Stops claiming items at `limit`.
pub fn bulk<F>(
    c: &Common,
    items: std::ops::Range<usize>,
    conns: usize,
    want: i64,
    progress: Option<Arc<AtomicU64>>,
    limit: Duration,
    make: F,
) -> Result<Bulk, String>
where
    F: Fn(usize, &mut Vec<u8>) + Send + Sync + 'static,
{
    let start = Instant::now();
    let job = Arc::new(BulkJob {
        cursor: AtomicUsize::new(items.start),
        end: items.end,
        deadline: start + limit,
        failed: AtomicU64::new(0),
        want,
        progress,
        target: c.target.clone(),
        req_timeout: c.req_timeout,
        make,
    });
    let conns = conns.max(1).min(items.len().max(1));
    let threads = c.threads.min(conns);
    let job2 = job.clone();
    let per_thread = run_threads(threads, c.driver, move |ti| {
        bulk_thread(job2.clone(), (ti..conns).step_by(threads).count())
    })
    .map_err(|e| format!("runtime: {e}"))?;
    let mut stats = ReqStats::default();
    for s in &per_thread {
        stats.merge(s);
    }
    // Items without a wanted answer: failed ones, and ones never sent
    // because the time limit passed.
    let not_done = (items.len() as u64)
        .saturating_sub(stats.counts.ok)
        .max(job.failed.load(Ordering::Relaxed));
    Ok(Bulk {
        stats,
        elapsed: start.elapsed(),
        failed: not_done,
    })
}

/// A bulk run, shared by its connections on every thread.
struct BulkJob<F> {
    /// The next item to claim.
    cursor: AtomicUsize,
    end: usize,
    deadline: Instant,
    failed: AtomicU64,
    want: i64,
    progress: Option<Arc<AtomicU64>>,
    target: Target,
    req_timeout: Duration,
    /// Writes item i's request.
    make: F,
}

/// One load thread of a bulk run with `conns` connections.
async fn bulk_thread<F>(job: Arc<BulkJob<F>>, conns: usize) -> ReqStats
where
    F: Fn(usize, &mut Vec<u8>) + Send + Sync + 'static,
{
    let stats = Rc::new(RefCell::new(ReqStats::default()));
    let handles: Vec<_> = (0..conns)
        .map(|_| monoio::spawn(bulk_conn(job.clone(), stats.clone())))
        .collect();
    for h in handles {
        h.await;
    }
    Rc::try_unwrap(stats)
        .map(|s| s.into_inner())
        .unwrap_or_default()
}

/// One connection of a bulk run: claims items until none are left or the
/// deadline passes.
async fn bulk_conn<F>(job: Arc<BulkJob<F>>, stats: Rc<RefCell<ReqStats>>)
where
    F: Fn(usize, &mut Vec<u8>),
{
    let mut conn = None;
    let mut req = Vec::with_capacity(512);
    while Instant::now() < job.deadline {
        let i = job.cursor.fetch_add(1, Ordering::Relaxed);
        if i >= job.end {
            break;
        }
        (job.make)(i, &mut req);
        if send_item(&job, &mut conn, &mut req, i, &stats).await {
            if let Some(p) = &job.progress {
                p.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            job.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends item i's request (in `req`), reconnecting and retrying up to 3
/// times on a connection failure; true when it got the wanted answer.
async fn send_item<F>(
    job: &BulkJob<F>,
    conn: &mut Option<Conn>,
    req: &mut Vec<u8>,
    i: usize,
    stats: &RefCell<ReqStats>,
) -> bool
where
    F: Fn(usize, &mut Vec<u8>),
{
    for _attempt in 0..3 {
        if Instant::now() >= job.deadline {
            break;
        }
        if conn.is_none() {
            *conn = connect_counted(&job.target, job.req_timeout, stats).await;
        }
        let Some(cn) = conn.as_mut() else {
            continue;
        };
        let t = Instant::now();
        let r = monoio::time::timeout(job.req_timeout, cn.call(std::mem::take(req))).await;
        match r {
            Ok((Ok(resp), back)) => {
                *req = back;
                let mut s = stats.borrow_mut();
                s.lat.record(t.elapsed());
                if resp.close {
                    *conn = None;
                }
                return s.counts.answer(resp.status, resp.code, job.want);
            }
            Ok((Err(e), back)) => {
                *req = back;
                stats.borrow_mut().counts.io(&e);
                *conn = None;
            }
            Err(_) => {
                // The request buffer went with the dropped future.
                *req = Vec::with_capacity(512);
                (job.make)(i, req);
                stats.borrow_mut().counts.io(&"timeout");
                *conn = None;
            }
        }
    }
    false
}

/// Connects, counting a failure (and pausing briefly) in `stats`.
pub async fn connect_counted(
    target: &Target,
    limit: Duration,
    stats: &RefCell<ReqStats>,
) -> Option<Conn> {
    match monoio::time::timeout(limit, target.connect()).await {
        Ok(Ok(cn)) => Some(cn),
        Ok(Err(e)) => {
            stats.borrow_mut().counts.io(&e);
            monoio::time::sleep(Duration::from_millis(20)).await;
            None
        }
        Err(_) => {
            stats.borrow_mut().counts.io(&"connect timeout");
            None
        }
    }
}
