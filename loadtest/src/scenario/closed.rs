//! Back-to-back requests over keep-alive connections (fetch and renew).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::{connect_counted, mono, Common};
use crate::rt::run_threads;
use crate::stats::ReqStats;

pub struct Closed {
    pub stats: ReqStats,
    pub window: Duration,
    pub connects: u64,
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
    let t0 = Instant::now();
    let mstart = t0 + warmup;
    let end = mstart + duration;
    let make = Arc::new(make);
    let threads = c.threads.min(conns.max(1));
    let target = c.target.clone();
    let req_timeout = c.req_timeout;
    let per_thread = run_threads(threads, c.driver, move |ti| {
        let make = make.clone();
        let target = target.clone();
        async move {
            let stats = Rc::new(RefCell::new(ReqStats::default()));
            let connects = Rc::new(RefCell::new(0u64));
            let mut handles = Vec::new();
            for ci in (ti..conns).step_by(threads) {
                let make = make.clone();
                let target = target.clone();
                let stats = stats.clone();
                let connects = connects.clone();
                handles.push(monoio::spawn(async move {
                    let mut conn = None;
                    let mut req = Vec::with_capacity(512);
                    let mut k: u64 = 0;
                    while Instant::now() < end {
                        if conn.is_none() {
                            conn = connect_counted(&target, req_timeout, &stats).await;
                            *connects.borrow_mut() += 1;
                        }
                        let Some(cn) = conn.as_mut() else {
                            continue;
                        };
                        make(ci, k, &mut req);
                        k += 1;
                        let t = Instant::now();
                        let limit = (t + req_timeout).min(end + Duration::from_secs(1));
                        match monoio::time::timeout_at(mono(limit), cn.call(req)).await {
                            Ok((Ok(resp), back)) => {
                                req = back;
                                let now = Instant::now();
                                if t >= mstart && now <= end {
                                    let mut s = stats.borrow_mut();
                                    s.lat.record(now - t);
                                    s.counts.answer(resp.status, resp.code, want);
                                    s.bytes += cn.body().len() as u64;
                                }
                                if resp.close {
                                    conn = None;
                                }
                            }
                            Ok((Err(e), back)) => {
                                req = back;
                                req.clear();
                                if Instant::now() < end {
                                    stats.borrow_mut().counts.io(&e);
                                }
                                conn = None;
                            }
                            Err(_) => {
                                req = Vec::with_capacity(512);
                                if Instant::now() < end {
                                    stats.borrow_mut().counts.io(&"timeout");
                                }
                                conn = None;
                            }
                        }
                    }
                }));
            }
            for h in handles {
                h.await;
            }
            let connects = *connects.borrow();
            let stats = Rc::try_unwrap(stats)
                .map(|s| s.into_inner())
                .unwrap_or_default();
            (stats, connects)
        }
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
