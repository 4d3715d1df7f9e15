//! `park`: P connections each holding a parked long poll; server memory per
//! parked poll, then one change and the time until every poll is answered.
//!
//! The control thread runs the steps in order (`run`): `apps` registers the
//! apps, `polls` opens the polls on the load threads, `measure` watches them
//! open and park, `apps` sends the change, and `figures` builds the report.

mod apps;
mod figures;
mod measure;
mod polls;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::Common;
use crate::args::Args;
use crate::sys::{self, CpuWindow};
use apps::Change;
use measure::{Opening, Settled};
use polls::Board;

/// Switches (flags without a value) of park.
pub const SWITCHES: &[&str] = &["quiet", "single"];

/// Descriptors kept free beside the polls.
const SPARE_FDS: u64 = 128;

/// Park's flags.
struct ParkCfg {
    requested: usize,
    apps: usize,
    duration: Duration,
    concurrency: usize,
    settle: Duration,
    wake_timeout: Duration,
    single: bool,
    prefix: String,
}

impl ParkCfg {
    fn parse(a: &Args) -> Result<ParkCfg, String> {
        Ok(ParkCfg {
            requested: a.get("polls", 2000usize)?.max(1),
            apps: a.get("apps", 1usize)?.max(1),
            duration: a.duration("duration", Duration::from_secs(60))?,
            concurrency: a.get("connect-concurrency", 256usize)?.max(1),
            settle: a.duration("settle-timeout", Duration::from_secs(15))?,
            wake_timeout: a.duration("wake-timeout", Duration::from_secs(10))?,
            single: a.switch("single")?,
            prefix: a.string("app-prefix", "lt.park"),
        })
    }

    /// Polls that fit the open-file limit.
    fn polls(&self, c: &Common) -> usize {
        let limit = sys::raise_nofile();
        let polls = self.requested.min(limit.saturating_sub(SPARE_FDS) as usize);
        if polls < self.requested {
            c.log(&format!(
                "park: {} polls do not fit RLIMIT_NOFILE {limit}; using {polls}",
                self.requested
            ));
        }
        polls
    }
}

/// What the control thread observed, for the report.
struct Measured {
    polls: usize,
    sent: usize,
    opening: Opening,
    settled: Settled,
    /// Seconds from the first connect until all were parked.
    parked_s: f64,
    parked: usize,
    rss_before: u64,
    rss_after: u64,
    change: Change,
    wake_cpu: Option<f64>,
    /// The server's own histogram of the wake, where it has one.
    server_wake: Option<serde_json::Value>,
}

/// The answer a woken poll of this set-up gets, app 0 with its one instance, in the
/// `/discovery/poll` form (the `polls` form only wraps it in the appid, a few bytes more), for
/// the ceiling's park mode. It is also a fetch answer, which the set-up reads its timestamp
/// from.
pub fn sample_body(a: &Args, id: &crate::proto::Ident) -> Result<String, String> {
    let cfg = ParkCfg::parse(a)?;
    let app = super::common::app_name(&cfg.prefix, 0);
    let hosts = [(super::common::host_name(&cfg.prefix, 0), 0)];
    let info = id.instance_info_json(&app, &hosts, 1_700_000_000_000_000_000);
    Ok(crate::proto::envelope_ok(&info))
}

/// `loadgen park`: one park run, reported.
pub fn run(argv: &[String]) -> Result<Value, String> {
    let a = Args::parse(argv, SWITCHES)?;
    let c = Common::parse(&a, 8)?;
    let cfg = ParkCfg::parse(&a)?;
    a.finish()?;
    let polls = cfg.polls(&c);
    let deadline = Instant::now() + cfg.duration;
    let current = apps::register_apps(&c, &cfg)?;
    // Let the server settle after the set-up before the baseline RSS.
    std::thread::sleep(Duration::from_millis(500));
    let pid = c.server_pid.map(|p| p.to_string());
    let rss = || pid.as_deref().and_then(sys::rss_kb).unwrap_or(0);
    let rss_before = rss();
    let board = Arc::new(Board::new(deadline, polls, cfg.apps));
    c.log(&format!(
        "park: opening {polls} polls on {} app(s) from {} source address(es)",
        cfg.apps, c.target.src_addrs
    ));
    let load = polls::start(&c, &cfg, board.clone(), current, polls);
    let m = measure_park(&c, &cfg, &board, polls, rss_before, rss);
    board.stop.store(true, Ordering::Relaxed);
    match load.join() {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("runtime: {e}")),
        Err(_) => return Err("load thread panicked".into()),
    }
    let (figures, series) = figures::build(&c, &cfg, &board, &m);
    let v = c.write_report("park", &a, figures, series)?;
    print_park(&c.label, &v["figures"]);
    Ok(v)
}

/// Watches the polls open and park, sends the change and waits for the
/// answers.
fn measure_park(
    c: &Common,
    cfg: &ParkCfg,
    board: &Board,
    polls: usize,
    rss_before: u64,
    rss: impl Fn() -> u64,
) -> Measured {
    let mut opening = measure::watch_opening(board, polls, &rss);
    let sent = board.sent.load(Ordering::Relaxed);
    let settled = measure::wait_parked(c, board, sent, cfg.settle);
    opening.ramp.push((sent, rss()));
    let parked_s = opening.started.elapsed().as_secs_f64();
    let parked = sent.saturating_sub(board.answered.load(Ordering::Relaxed));
    let rss_after = rss();
    if parked_s > 25.0 {
        c.log("park: parking took over 25 s; the first polls may have expired (-304) already");
    }
    let wake_before = measure::server_wake_histogram(c);
    let cpu = CpuWindow::start(c.server_pid);
    let change = apps::change_all(c, cfg, board);
    measure::wait_answered(board, sent, cfg.wake_timeout);
    let wake_cpu = cpu.end().0;
    let server_wake = wake_before
        .zip(measure::server_wake_histogram(c))
        .map(|(before, after)| measure::server_wake_figures(&before, &after));
    Measured {
        polls,
        sent,
        opening,
        settled,
        parked_s,
        parked,
        rss_before,
        rss_after,
        change,
        wake_cpu,
        server_wake,
    }
}

/// One line of the main figures on stdout.
pub fn print_park(label: &str, f: &Value) {
    println!(
        "{label:<8} park    polls {} parked {}  rss {} -> {} MiB ({} B/poll)  answered {} (early {}, bad {}, missing {})  wake p50 {} ms p99 {} ms max {} ms (server-side p99 <= {} ms)  errors {}",
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
        f["server_wake"]["p99_at_most_ms"],
        f["errors"],
    );
}
