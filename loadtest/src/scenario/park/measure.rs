//! Park's control-thread observations while the polls open and park: the
//! server's RSS against polls written, and the wait until every poll is
//! parked (every server-side socket drained and the server's CPU quiet).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::polls::Board;
use crate::scenario::common::Common;
use crate::sys::{self, CpuWindow};

/// Server CPU (% of a core) under which it counts as quiet.
const QUIET_CPU_PCT: f64 = 5.0;

/// The opening of the polls.
pub(super) struct Opening {
    /// (polls written, server RSS KiB), every 25 ms.
    pub ramp: Vec<(usize, u64)>,
    pub started: Instant,
    /// Seconds until every poll was written or failed, if that happened.
    pub open_s: Option<f64>,
}

/// Samples RSS against polls written until all `polls` are written or
/// failed, or the deadline.
pub(super) fn watch_opening(board: &Board, polls: usize, rss: impl Fn() -> u64) -> Opening {
    let started = Instant::now();
    let mut ramp = Vec::new();
    let mut open_s = None;
    while Instant::now() < board.deadline {
        let sent = board.sent.load(Ordering::Relaxed);
        ramp.push((sent, rss()));
        if sent + board.open_errors.load(Ordering::Relaxed) as usize >= polls {
            open_s = Some(started.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Opening {
        ramp,
        started,
        open_s,
    }
}

/// How the wait for "all parked" ended.
pub(super) struct Settled {
    /// Server-side sockets with an empty receive queue.
    pub drained: usize,
    pub quiet: bool,
}

/// Waits until the server has read every one of the `sent` requests (empty
/// receive queues on its side) and its CPU has gone quiet, for at most
/// `limit` (and not past the deadline).
pub(super) fn wait_parked(c: &Common, board: &Board, sent: usize, limit: Duration) -> Settled {
    let end = (Instant::now() + limit).min(board.deadline);
    let port = c.target.addr.port();
    let mut s = Settled {
        drained: 0,
        quiet: false,
    };
    while Instant::now() < end {
        s.drained = sys::server_sockets(port).1;
        let w = CpuWindow::start(c.server_pid);
        std::thread::sleep(Duration::from_millis(200));
        s.quiet = w.end().0.unwrap_or(0.0) < QUIET_CPU_PCT;
        if s.drained >= sent && s.quiet {
            break;
        }
    }
    s
}

/// Waits until all `sent` polls are answered, for at most `limit`.
pub(super) fn wait_answered(board: &Board, sent: usize, limit: Duration) {
    let end = (Instant::now() + limit).min(board.deadline);
    while Instant::now() < end && board.answered.load(Ordering::Relaxed) < sent {
        std::thread::sleep(Duration::from_millis(5));
    }
}
