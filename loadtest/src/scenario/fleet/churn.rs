//! The fleet's coordinator and churn writer. The coordinator opens the
//! measured window once the warm-up has passed, every consumer has synced and
//! the renews have caught up (or at the sync deadline); during the window it
//! re-registers random instances with a new version at the churn rate (each
//! a change that must wake the polls on that app); then it stops every task.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::steady::Ctx;
use super::Keep;
use crate::http::Conn;
use crate::scenario::common::{connect_counted, mono};
use crate::stats::ReqStats;

/// Opens the window, churns during it, then signals the end.
pub(super) async fn coordinator_task(x: Ctx, consumers: usize) {
    let warm_end = x.ph.t0 + x.ph.warmup;
    loop {
        let now = Instant::now();
        let synced = x.ph.synced.load(Ordering::Relaxed) >= consumers;
        let settled = synced && x.ph.max_renew_lag_ns() < x.cfg.settle_lag.as_nanos() as u64;
        if now >= warm_end && (settled || now >= x.ph.sync_deadline) {
            break;
        }
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    let start = Instant::now();
    x.ph.open_window(start);
    let end = x.ph.end();
    if x.cfg.churn > 0.0 {
        churn(&x, start, end).await;
    }
    if Instant::now() < end {
        monoio::time::sleep_until(mono(end)).await;
    }
    x.ph.done.store(true, Ordering::Relaxed);
}

/// A xorshift generator: the churn picks instances without a dependency.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Re-registers a random instance every 1/churn seconds from `start` to `end`.
async fn churn(x: &Ctx, start: Instant, end: Instant) {
    let gap = Duration::from_secs_f64(1.0 / x.cfg.churn.max(1e-3));
    let tmp = RefCell::new(ReqStats::default());
    let mut conn = None;
    let mut req = Vec::with_capacity(512);
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    let mut k: u32 = 0;
    loop {
        let due = start + gap * k;
        if due >= end || Instant::now() >= end {
            break;
        }
        if due > Instant::now() {
            monoio::time::sleep_until(mono(due)).await;
        }
        if conn.is_none() {
            conn = connect_counted(&x.c.target, x.c.req_timeout, &tmp).await;
        }
        let Some(cn) = conn.as_mut() else {
            continue;
        };
        k += 1;
        let i = (rng.next() % x.cfg.instances as u64) as usize;
        let keep;
        (keep, req) = write_once(x, cn, req, i, 1 + k as u64, due, end).await;
        if keep == Keep::Close {
            conn = None;
        }
    }
    let extra = tmp.borrow();
    x.st.borrow_mut().churn.counts.merge(&extra.counts);
}

/// Re-registers instance `i` with `version`, logging the write for the
/// wake match before it is sent. Hands the request buffer back.
async fn write_once(
    x: &Ctx,
    cn: &mut Conn,
    mut req: Vec<u8>,
    i: usize,
    version: u64,
    due: Instant,
    end: Instant,
) -> (Keep, Vec<u8>) {
    let (app, host) = x.cfg.names(i);
    x.c.ident.register(&mut req, &app, &host, i, version);
    let t = Instant::now();
    x.ph.log_churn(i / x.cfg.per_app, t);
    let limit = (t + x.c.req_timeout).min(end + Duration::from_secs(2));
    let res = monoio::time::timeout_at(mono(limit), cn.call(req)).await;
    let mut s = x.st.borrow_mut();
    let lag = t.saturating_duration_since(due).as_micros() as u64;
    s.churn_max_lag_us = s.churn_max_lag_us.max(lag);
    match res {
        Ok((Ok(resp), back)) => {
            s.churn.lat.record(t.elapsed());
            s.churn.counts.answer(resp.status, resp.code, 0);
            (Keep::after(resp.close), back)
        }
        Ok((Err(e), back)) => {
            s.churn.counts.io(&e);
            (Keep::Close, back)
        }
        Err(_) => {
            s.churn.counts.io(&"timeout");
            (Keep::Close, Vec::with_capacity(512))
        }
    }
}
