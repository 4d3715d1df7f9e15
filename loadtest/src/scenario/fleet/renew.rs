//! The fleet's renew driver. Renew connection r carries the instances
//! i ≡ r (mod renew_conns); instance i renews at offset i/N·R within each
//! period R, open loop, so renews are spread evenly at N/R per second.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::steady::Ctx;
use super::tally::sec_slot;
use super::Keep;
use crate::http::Conn;
use crate::scenario::common::{connect_counted, mono};
use crate::stats::ReqStats;

/// When each renew of one connection is due.
struct Schedule {
    /// The instances this connection renews, in order.
    mine: Vec<usize>,
    instances: usize,
    period: Duration,
    t0: Instant,
}

impl Schedule {
    fn new(x: &Ctx, r: usize) -> Schedule {
        let n = x.cfg.instances;
        Schedule {
            mine: (r..n).step_by(x.cfg.renew_conns).collect(),
            instances: n,
            period: x.cfg.renew_interval,
            t0: x.ph.t0,
        }
    }

    fn offset(&self, i: usize) -> Duration {
        self.period.mul_f64(i as f64 / self.instances as f64)
    }

    /// The k-th renew of this connection: its instance and when it is due.
    fn at(&self, k: u64) -> (usize, Instant) {
        let l = self.mine.len() as u64;
        let i = self.mine[(k % l) as usize];
        (i, self.t0 + self.period * (k / l) as u32 + self.offset(i))
    }

    /// After falling more than a whole interval behind: like a client's
    /// ticker, drop the missed renews and go on from the renews due in the
    /// last 0.9 interval (each instance's latest missed one at most).
    /// Returns the index of the next renew to send.
    fn catch_up(&self, now: Instant) -> u64 {
        let target = now.checked_sub(self.period.mul_f64(0.9)).unwrap_or(self.t0);
        let x = (target - self.t0).as_secs_f64() / self.period.as_secs_f64();
        let p = x.floor();
        let frac = x - p;
        let n = self.instances as f64;
        let pos = self.mine.partition_point(|&m| (m as f64 / n) < frac) as u64;
        p as u64 * self.mine.len() as u64 + pos
    }

    /// Renews due in `[ws, we)`, for the done ratio.
    fn due_between(&self, ws: Instant, we: Instant) -> u64 {
        let w0 = (ws - self.t0).as_secs_f64();
        let w1 = (we - self.t0).as_secs_f64();
        let per = self.period.as_secs_f64();
        self.mine
            .iter()
            .map(|&i| {
                let off = self.offset(i).as_secs_f64();
                let lo = ((w0 - off).max(0.0) / per).ceil();
                let hi = ((w1 - off).max(0.0) / per).ceil();
                (hi - lo).max(0.0) as u64
            })
            .sum()
    }
}

/// Renews connection `r`'s instances on schedule until the end.
pub(super) async fn renew_task(x: Ctx, r: usize) {
    let sched = Schedule::new(&x, r);
    if sched.mine.is_empty() {
        return;
    }
    let tmp = Rc::new(RefCell::new(ReqStats::default()));
    let mut conn = None;
    let mut req = Vec::with_capacity(256);
    let mut k: u64 = 0;
    loop {
        let (i, due) = sched.at(k);
        let end = x.ph.end();
        let now = Instant::now();
        if due >= end || now >= end || x.stop.fired() {
            break;
        }
        if due > now + Duration::from_micros(500) {
            x.ph.renew_lag_ns[r].store(0, Ordering::Relaxed);
            monoio::time::sleep_until(mono(due.min(end))).await;
            continue;
        }
        let late = now.saturating_duration_since(due);
        x.ph.renew_lag_ns[r].store(late.as_nanos() as u64, Ordering::Relaxed);
        if late > sched.period {
            let next = sched.catch_up(now);
            if next > k {
                x.st.borrow_mut().renew_skipped += next - k;
                k = next;
                continue;
            }
        }
        if conn.is_none() {
            conn = connect_counted(&x.c.target, x.c.req_timeout, &tmp).await;
        }
        let Some(cn) = conn.as_mut() else {
            continue;
        };
        k += 1;
        let keep;
        (keep, req) = renew_once(&x, cn, req, i, due).await;
        if keep == Keep::Close {
            conn = None;
        }
    }
    let scheduled =
        x.ph.window()
            .map(|(ws, we)| sched.due_between(ws, we))
            .unwrap_or(0);
    let extra = tmp.borrow();
    let mut s = x.st.borrow_mut();
    s.renew_scheduled += scheduled;
    s.renew.counts.merge(&extra.counts);
}

/// Sends the renew of instance `i` that was due at `due` and records it;
/// only renews due inside the window count. Hands the request buffer back.
async fn renew_once(
    x: &Ctx,
    cn: &mut Conn,
    mut req: Vec<u8>,
    i: usize,
    due: Instant,
) -> (Keep, Vec<u8>) {
    let (app, host) = x.cfg.names(i);
    x.c.ident.renew(&mut req, &app, &host);
    let t = Instant::now();
    let lag = t.saturating_duration_since(due).as_micros() as u64;
    let limit = (t + x.c.req_timeout).min(x.ph.hard_end + Duration::from_secs(2));
    let res = monoio::time::timeout_at(mono(limit), cn.call(req)).await;
    let done = Instant::now();
    let window = x.ph.window();
    let in_window = window.is_some_and(|(ws, we)| due >= ws && due < we);
    let mut s = x.st.borrow_mut();
    if in_window {
        s.renew_max_lag_us = s.renew_max_lag_us.max(lag);
    }
    match res {
        Ok((Ok(resp), back)) => {
            let d = done - t;
            sec_slot(&mut s.renew_sec, (t - x.ph.t0).as_secs() as usize).record(d);
            if window.is_some_and(|(ws, we)| done >= ws && done < we) {
                s.renew_answered_in_window += 1;
            }
            if in_window {
                s.renew.lat.record(d);
                s.renew.counts.answer(resp.status, resp.code, 0);
            }
            (Keep::after(resp.close), back)
        }
        Ok((Err(e), back)) => {
            if in_window {
                s.renew.counts.io(&e);
            }
            (Keep::Close, back)
        }
        Err(_) => {
            if in_window {
                s.renew.counts.io(&"timeout");
            }
            // The request buffer went with the dropped future.
            (Keep::Close, Vec::with_capacity(256))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connection 1 of 3 in a fleet of 10, renewing every 10 s.
    fn sched(t0: Instant) -> Schedule {
        Schedule {
            mine: vec![1, 4, 7],
            instances: 10,
            period: Duration::from_secs(10),
            t0,
        }
    }

    #[test]
    fn renews_are_spread_over_the_period() {
        let t0 = Instant::now();
        let s = sched(t0);
        assert_eq!(s.at(0), (1, t0 + Duration::from_secs(1)));
        assert_eq!(s.at(2), (7, t0 + Duration::from_secs(7)));
        assert_eq!(s.at(3), (1, t0 + Duration::from_secs(11)));
    }

    #[test]
    fn each_instance_is_due_once_per_period() {
        let t0 = Instant::now();
        let s = sched(t0);
        let p = Duration::from_secs(10);
        assert_eq!(s.due_between(t0, t0 + p), 3);
        assert_eq!(s.due_between(t0 + p, t0 + p * 3), 6);
        // Only instance 4 (due at 4 s) falls in [2 s, 5 s).
        let (a, b) = (Duration::from_secs(2), Duration::from_secs(5));
        assert_eq!(s.due_between(t0 + a, t0 + b), 1);
    }

    #[test]
    fn catch_up_skips_to_the_last_period() {
        let t0 = Instant::now();
        let s = sched(t0);
        // At 25 s the renews due before 16 s are dropped: next is instance
        // 7 of period 1 (due at 17 s).
        let next = s.catch_up(t0 + Duration::from_secs(25));
        assert_eq!(next, 5);
        assert_eq!(s.at(next), (7, t0 + Duration::from_secs(17)));
    }
}
