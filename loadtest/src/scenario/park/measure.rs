//! Park's control-thread observations while the polls open and park: the
//! server's RSS against polls written, and the wait until every poll is
//! parked (every server-side socket drained and the server's CPU quiet), and the server's own
//! count of how soon it answered them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::polls::Board;
use crate::http::blocking_request;
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

/// The server's own `discovery_poll_wake_seconds` histogram (from a change's publication to
/// each poll's answer), as cumulative (bound in seconds, count) pairs; `None` where the
/// target has no such metric (the Go original, the ceiling).
pub(super) fn server_wake_histogram(c: &Common) -> Option<Vec<(f64, u64)>> {
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        c.target.addr
    );
    let (status, body) = blocking_request(c.target.addr, req.as_bytes(), c.req_timeout).ok()?;
    if status != 200 {
        return None;
    }
    let buckets = parse_buckets(
        &String::from_utf8_lossy(&body),
        "discovery_poll_wake_seconds",
    );
    (!buckets.is_empty()).then_some(buckets)
}

/// The `{le="…"}` buckets of histogram `name` in OpenMetrics text, in order.
fn parse_buckets(text: &str, name: &str) -> Vec<(f64, u64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// What the server's histogram counted between two scrapes: the answers, how many within
/// each bound, and the smallest bound that holds 99 % of them.
pub(super) fn server_wake_figures(before: &[(f64, u64)], after: &[(f64, u64)]) -> Value {
    let within: Vec<(f64, u64)> = after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0, |b| b.1);
            (le, n.saturating_sub(was))
        })
        .collect();
    let total = within.last().map_or(0, |w| w.1);
    let p99 = within
        .iter()
        .find(|w| total > 0 && w.1 * 100 >= total * 99)
        .map(|w| w.0);
    let ms = |s: f64| {
        if s.is_finite() {
            json!(sys::round3(s * 1000.0))
        } else {
            json!("+Inf")
        }
    };
    json!({
        "answers": total,
        "within_ms": within
            .iter()
            .filter(|w| w.0 >= 0.001 && w.0 <= 1.0)
            .map(|w| json!({"ms": ms(w.0), "answers": w.1}))
            .collect::<Vec<_>>(),
        "p99_at_most_ms": p99.map(ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_wake_histogram_is_read_and_differenced() {
        let text = "# TYPE discovery_poll_wake_seconds histogram\n\
            discovery_poll_wake_seconds_count 12\n\
            discovery_poll_wake_seconds_bucket{le=\"0.01\"} 2\n\
            discovery_poll_wake_seconds_bucket{le=\"0.05\"} 10\n\
            discovery_poll_wake_seconds_bucket{le=\"0.1\"} 12\n\
            discovery_poll_wake_seconds_bucket{le=\"+Inf\"} 12\n\
            discovery_poll_hold_seconds_bucket{le=\"0.01\"} 7\n";
        let after = parse_buckets(text, "discovery_poll_wake_seconds");
        assert_eq!(after.len(), 4);
        assert_eq!(after[3], (f64::INFINITY, 12));
        let before = vec![(0.01, 2), (0.05, 2), (0.1, 2), (f64::INFINITY, 2)];
        let f = server_wake_figures(&before, &after);
        assert_eq!(f["answers"], 10);
        // 8 of the 10 new answers within 50 ms is not 99 %: all 10 are by 100 ms.
        assert_eq!(f["p99_at_most_ms"], 100.0);
        assert_eq!(f["within_ms"][1], json!({"ms": 50.0, "answers": 8}));
    }
}
