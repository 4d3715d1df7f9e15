//! Park's poll connections, on the load threads. Each opens a connection
//! (a bounded number at a time), writes one long poll, and records on the
//! shared `Board` when its answer arrived and with which code. Connections
//! are held until the runtime ends, so closes do not overlap the wake.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ParkCfg;
use crate::http::Conn;
use crate::rt::run_threads;
use crate::scenario::common::{app_name, host_name, mono, Common};
use crate::task::{race, Either, LocalStop};

/// Code recorded for a poll that has no answer yet.
pub(super) const NOT_ANSWERED: i64 = i64::MIN;
/// Code recorded for a non-200 or unparsable answer.
const BAD_ANSWER: i64 = -1000;
/// Code recorded for a read error.
const READ_ERROR: i64 = -1001;

/// What the poll connections report to the control thread.
pub(super) struct Board {
    pub t0: Instant,
    pub deadline: Instant,
    pub stop: Arc<AtomicBool>,
    /// Requests written (polls that may be parked).
    pub sent: AtomicUsize,
    pub open_errors: AtomicU64,
    pub answered: AtomicUsize,
    /// Per poll: ns since t0 when its answer arrived (0 = none).
    pub answer_ns: Vec<AtomicU64>,
    /// Per poll: envelope code of the answer (NOT_ANSWERED = none).
    pub answer_code: Vec<AtomicI64>,
    /// Per app: ns since t0 when its change was sent (0 = not yet).
    pub change_ns: Vec<AtomicU64>,
    pub first_error: Mutex<Option<String>>,
}

impl Board {
    pub fn new(deadline: Instant, polls: usize, apps: usize) -> Board {
        Board {
            t0: Instant::now(),
            deadline,
            stop: Arc::new(AtomicBool::new(false)),
            sent: AtomicUsize::new(0),
            open_errors: AtomicU64::new(0),
            answered: AtomicUsize::new(0),
            answer_ns: (0..polls).map(|_| AtomicU64::new(0)).collect(),
            answer_code: (0..polls).map(|_| AtomicI64::new(NOT_ANSWERED)).collect(),
            change_ns: (0..apps).map(|_| AtomicU64::new(0)).collect(),
            first_error: Mutex::new(None),
        }
    }

    fn error(&self, e: String) {
        self.open_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.first_error.lock() {
            if g.is_none() {
                *g = Some(e);
            }
        }
    }

    /// ns since t0, at least 1 (0 means "not yet").
    pub fn ns_since_t0(&self) -> u64 {
        (Instant::now() - self.t0).as_nanos().max(1) as u64
    }
}

/// What every poll task of one load thread shares.
#[derive(Clone)]
struct Ctx {
    c: Common,
    board: Arc<Board>,
    single: bool,
    /// Polls of this thread still connecting or writing.
    inflight: Rc<Cell<usize>>,
    stop: LocalStop,
    /// Connections held until the runtime ends.
    keep: Rc<RefCell<Vec<Conn>>>,
}

/// Opens `polls` polls on the load threads, poll p on app p mod apps with
/// that app's timestamp in `current`. Runs until the board's stop flag.
pub(super) fn start(
    c: &Common,
    cfg: &ParkCfg,
    board: Arc<Board>,
    current: Vec<i64>,
    polls: usize,
) -> JoinHandle<std::io::Result<Vec<()>>> {
    let threads = c.threads;
    let (c, current) = (c.clone(), Arc::new(current));
    let (prefix, single, concurrency) = (cfg.prefix.clone(), cfg.single, cfg.concurrency);
    let per_thread_limit = concurrency.div_ceil(threads).max(1);
    std::thread::spawn(move || {
        run_threads(threads, c.driver, move |ti| {
            let x = Ctx {
                c: c.clone(),
                board: board.clone(),
                single,
                inflight: Rc::new(Cell::new(0)),
                stop: LocalStop::default(),
                keep: Rc::new(RefCell::new(Vec::new())),
            };
            let (current, prefix) = (current.clone(), prefix.clone());
            async move {
                let b = &x.board;
                let watcher = monoio::spawn(x.stop.clone().watch(
                    b.stop.clone(),
                    Duration::from_millis(20),
                    b.deadline,
                ));
                let mut hs = Vec::new();
                for p in (ti..polls).step_by(threads) {
                    while x.inflight.get() >= per_thread_limit && Instant::now() < b.deadline {
                        monoio::time::sleep(Duration::from_millis(1)).await;
                    }
                    if Instant::now() >= b.deadline || x.stop.fired() {
                        break;
                    }
                    x.inflight.set(x.inflight.get() + 1);
                    let j = p % current.len();
                    let task = poll_task(x.clone(), p, app_name(&prefix, j), current[j]);
                    hs.push(monoio::spawn(task));
                }
                for h in hs {
                    h.await;
                }
                watcher.await;
            }
        })
    })
}

/// Connects, trying three times; the third failure is counted.
async fn connect(x: &Ctx) -> Option<Conn> {
    for attempt in 0..3 {
        if Instant::now() >= x.board.deadline || x.stop.fired() {
            break;
        }
        let limit = mono((Instant::now() + x.c.req_timeout).min(x.board.deadline));
        let why = match monoio::time::timeout_at(limit, x.c.target.connect()).await {
            Ok(Ok(cn)) => return Some(cn),
            Ok(Err(e)) => format!("connect: {e}"),
            Err(_) => "connect timeout".to_string(),
        };
        if attempt == 2 {
            x.board.error(why);
        }
        monoio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Poll p: connect, write one long poll for `app` at timestamp `ts`, then
/// wait for its answer until the stop or the deadline.
async fn poll_task(x: Ctx, p: usize, app: String, ts: i64) {
    let release = |x: &Ctx| x.inflight.set(x.inflight.get().saturating_sub(1));
    let mut req = Vec::with_capacity(256);
    let hostname = host_name("lt.park.client", p);
    x.c.ident
        .polls(&mut req, &[app.as_str()], &[ts], &hostname, x.single);
    let Some(mut cn) = connect(&x).await else {
        release(&x);
        return;
    };
    let (r, _) = cn.send(req).await;
    release(&x);
    if let Err(e) = r {
        x.board.error(format!("send: {e}"));
        return;
    }
    let b = &x.board;
    b.sent.fetch_add(1, Ordering::Relaxed);
    let got = monoio::time::timeout_at(mono(b.deadline), race(cn.recv(), x.stop.wait())).await;
    if let Ok(Either::Left(res)) = got {
        let at = b.ns_since_t0();
        let code = match res {
            Ok(resp) if resp.status == 200 => resp.code.unwrap_or(BAD_ANSWER),
            Ok(_) => BAD_ANSWER,
            Err(_) => READ_ERROR,
        };
        b.answer_ns[p].store(at, Ordering::Relaxed);
        b.answer_code[p].store(code, Ordering::Relaxed);
        b.answered.fetch_add(1, Ordering::Relaxed);
    }
    x.keep.borrow_mut().push(cn);
}
