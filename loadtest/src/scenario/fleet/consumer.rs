//! The fleet's consumers: each long-polls K apps through /discovery/polls
//! with the timestamps it last saw, and re-polls at once after every answer.
//! Its first answer is the sync; every later answer that advances an app is
//! a wake, matched against the churn writes to that app for its latency.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::phase::Phase;
use super::steady::Ctx;
use super::tally::{sec_slot, Tally};
use crate::http::Resp;
use crate::jscan;
use crate::scenario::common::{app_name, connect_counted, host_name, mono};
use crate::stats::ReqStats;
use crate::task::{race, Either};

/// What one consumer watches and has seen.
struct Watcher {
    /// Indices of the watched apps, and their names.
    watch: Vec<usize>,
    names: Vec<String>,
    hostname: String,
    /// Per watched app: the latest timestamp seen.
    ts: Vec<i64>,
    /// Per watched app: churn writes already matched (or from before sync).
    seen: Vec<usize>,
    synced: bool,
}

impl Watcher {
    fn new(x: &Ctx, m: usize) -> Watcher {
        let watch = x.cfg.consumer_apps(m);
        let names: Vec<String> = watch.iter().map(|&j| app_name(&x.cfg.prefix, j)).collect();
        Watcher {
            hostname: host_name(&format!("{}.consumer", x.cfg.prefix), m),
            ts: vec![0; watch.len()],
            seen: vec![0; watch.len()],
            watch,
            names,
            synced: false,
        }
    }

    fn request(&self, x: &Ctx, req: &mut Vec<u8>) {
        let refs: Vec<&str> = self.names.iter().map(|s| s.as_str()).collect();
        x.c.ident.polls(req, &refs, &self.ts, &self.hostname, false);
    }
}

/// Runs consumer `m` until the end. `gate` counts this thread's consumers
/// still connecting; this one leaves it after its first connect.
pub(super) async fn consumer_task(x: Ctx, m: usize, gate: Rc<Cell<usize>>) {
    let mut gate = Some(gate);
    let mut w = Watcher::new(&x, m);
    let tmp = Rc::new(RefCell::new(ReqStats::default()));
    let mut conn = None;
    let mut req = Vec::with_capacity(512);
    while Instant::now() < x.ph.end() && !x.stop.fired() {
        if conn.is_none() {
            conn = connect_counted(&x.c.target, x.c.req_timeout, &tmp).await;
            if let Some(g) = gate.take() {
                g.set(g.get().saturating_sub(1));
            }
        }
        let Some(cn) = conn.as_mut() else {
            continue;
        };
        w.request(&x, &mut req);
        let call = race(cn.call(std::mem::take(&mut req)), x.stop.wait());
        let res = match monoio::time::timeout_at(mono(x.ph.hard_end), call).await {
            Ok(Either::Left(r)) => r,
            // The run ended while the poll was parked.
            Ok(Either::Right(())) | Err(_) => break,
        };
        let now = Instant::now();
        let resp = match res {
            (Ok(resp), back) => {
                req = back;
                resp
            }
            (Err(e), back) => {
                req = back;
                if now < x.ph.end() {
                    x.st.borrow_mut().poll_counts.io(&e);
                }
                conn = None;
                monoio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !on_answer(&x, &mut w, &resp, cn.body(), now) {
            monoio::time::sleep(Duration::from_millis(100)).await;
        }
        if resp.close {
            conn = None;
        }
    }
    let extra = tmp.borrow();
    x.st.borrow_mut().poll_counts.merge(&extra.counts);
}

/// Counts one poll answer; false when it was an error (the consumer then
/// pauses before polling again).
fn on_answer(x: &Ctx, w: &mut Watcher, resp: &Resp, body: &[u8], now: Instant) -> bool {
    let status_ok = resp.status == 200;
    match resp.code {
        Some(0) if status_ok => {
            let advanced = match jscan::poll_timestamps(body) {
                Some(v) => apply_answer(w, &v, now, &x.ph, &x.st),
                None => {
                    x.st.borrow_mut().poll_counts.io(&"unparsable polls answer");
                    0
                }
            };
            x.st.borrow_mut().poll_counts.ok += 1;
            if !w.synced {
                sync(x, w, now);
            } else {
                let mut s = x.st.borrow_mut();
                s.answers += 1;
                if advanced == 0 {
                    s.answers_no_change += 1;
                }
            }
            true
        }
        Some(-304) if status_ok => {
            x.st.borrow_mut().not_modified += 1;
            true
        }
        _ => {
            if now < x.ph.end() {
                x.st.borrow_mut()
                    .poll_counts
                    .answer(resp.status, resp.code, 0);
            }
            false
        }
    }
}

/// The consumer's first answer: it now holds everything it watches.
fn sync(x: &Ctx, w: &mut Watcher, now: Instant) {
    w.synced = true;
    {
        let mut s = x.st.borrow_mut();
        s.synced += 1;
        s.sync_max_us = s.sync_max_us.max((now - x.ph.t0).as_micros() as u64);
    }
    // Churn written before the sync is not this consumer's wake.
    for (seen, &j) in w.seen.iter_mut().zip(&w.watch) {
        *seen = x.ph.churn_count(j);
    }
    x.ph.synced.fetch_add(1, Ordering::Relaxed);
}

/// Applies a polls answer; returns how many watched apps advanced.
fn apply_answer(
    w: &mut Watcher,
    data: &[(String, i64)],
    now: Instant,
    ph: &Phase,
    st: &RefCell<Tally>,
) -> u64 {
    let mut advanced = 0;
    for (app, new_ts) in data {
        let new_ts = *new_ts;
        let Some(idx) = w.names.iter().position(|n| n == app) else {
            continue;
        };
        if new_ts <= w.ts[idx] {
            continue;
        }
        w.ts[idx] = new_ts;
        advanced += 1;
        if !w.synced {
            continue;
        }
        let now_ns = (now - ph.t0).as_nanos() as u64;
        let mut s = st.borrow_mut();
        s.wakes += 1;
        match match_wake(ph, w.watch[idx], &mut w.seen[idx], new_ts, now_ns) {
            Some(ns) => {
                let us = ns / 1000;
                s.wake.record_us(us);
                sec_slot(&mut s.wake_sec, (now - ph.t0).as_secs() as usize).record_us(us);
            }
            None => s.unmatched += 1,
        }
    }
    advanced
}

/// Matches a wake on app `j` against its churn writes: the first one not
/// yet seen by this consumer whose send time is not after the server's
/// change timestamp. Returns the wake latency (ns) and marks the writes the
/// answer covers as seen.
fn match_wake(ph: &Phase, j: usize, seen: &mut usize, new_ts: i64, now_ns: u64) -> Option<u64> {
    let log = ph.churn_log[j].lock().ok()?;
    let start = *seen;
    let covered = log[start.min(log.len())..]
        .iter()
        .take_while(|e| e.wall_ns <= new_ts)
        .count();
    if covered == 0 {
        return None;
    }
    *seen = start + covered;
    Some(now_ns.saturating_sub(log[start].mono_ns))
}
