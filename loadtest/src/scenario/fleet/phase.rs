//! The steady phase's shared clock and signals, read by every task on every
//! load thread: when the measured window starts and ends, how far behind each
//! renew connection is, how many consumers have synced, and the log of churn
//! writes that wakes are matched against.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::FleetCfg;

/// One churn write: wall-clock send time (ns since the epoch, comparable to
/// the server's latest_timestamp) and monotonic send time (ns since t0).
#[derive(Clone, Copy)]
pub(super) struct ChurnEntry {
    pub wall_ns: i64,
    pub mono_ns: u64,
}

/// The steady phase. Renews run from t0; the measured window starts once the
/// warm-up has passed and every consumer has synced (its first poll is
/// answered at once with everything it watches, a burst that is start-up,
/// not steady state), or at the sync deadline, and lasts `duration`.
pub(super) struct Phase {
    pub t0: Instant,
    pub warmup: Duration,
    pub duration: Duration,
    pub sync_deadline: Instant,
    pub hard_end: Instant,
    /// ns after t0 at which the window starts; 0 until it is known.
    mstart_ns: AtomicU64,
    /// Set when the window has ended; every task then stops.
    pub done: Arc<AtomicBool>,
    /// Per renew connection: how late (ns) its last renew was sent.
    pub renew_lag_ns: Vec<AtomicU64>,
    pub synced: AtomicUsize,
    /// Per app: the churn writes sent to it, in order.
    pub churn_log: Vec<Mutex<Vec<ChurnEntry>>>,
}

impl Phase {
    /// A phase starting now for `cfg`.
    pub fn new(cfg: &FleetCfg) -> Phase {
        let t0 = Instant::now();
        let sync_deadline = t0 + cfg.warmup + cfg.sync_timeout;
        Phase {
            t0,
            warmup: cfg.warmup,
            duration: cfg.duration,
            sync_deadline,
            hard_end: sync_deadline + cfg.duration,
            mstart_ns: AtomicU64::new(0),
            done: Arc::new(AtomicBool::new(false)),
            renew_lag_ns: (0..cfg.renew_conns).map(|_| AtomicU64::new(0)).collect(),
            synced: AtomicUsize::new(0),
            churn_log: (0..cfg.apps()).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// Starts the measured window at `start`.
    pub fn open_window(&self, start: Instant) {
        let ns = (start - self.t0).as_nanos().max(1) as u64;
        self.mstart_ns.store(ns, Ordering::Release);
    }

    /// The measured window, once it has started.
    pub fn window(&self) -> Option<(Instant, Instant)> {
        match self.mstart_ns.load(Ordering::Acquire) {
            0 => None,
            ns => {
                let s = self.t0 + Duration::from_nanos(ns);
                Some((s, s + self.duration))
            }
        }
    }

    /// When the tasks stop: the end of the window, or the hard end before
    /// the window is known.
    pub fn end(&self) -> Instant {
        self.window().map(|w| w.1).unwrap_or(self.hard_end)
    }

    /// The largest lag of any renew connection now.
    pub fn max_renew_lag_ns(&self) -> u64 {
        self.renew_lag_ns
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Records a churn write to app `j` sent at `t`.
    pub fn log_churn(&self, j: usize, t: Instant) {
        if let Ok(mut log) = self.churn_log[j].lock() {
            log.push(ChurnEntry {
                wall_ns: wall_ns(),
                mono_ns: (t - self.t0).as_nanos() as u64,
            });
        }
    }

    /// How many churn writes app `j` has had so far.
    pub fn churn_count(&self, j: usize) -> usize {
        self.churn_log[j].lock().map(|l| l.len()).unwrap_or(0)
    }
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
