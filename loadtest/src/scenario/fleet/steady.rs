//! Phase 2 of the fleet: the steady mix. Each load thread runs its share of
//! the renew connections and consumers; thread 0 also runs the coordinator,
//! which opens the measured window and drives the churn.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::phase::Phase;
use super::tally::Tally;
use super::{churn, consumer, renew, FleetCfg};
use crate::rt::run_threads;
use crate::scenario::common::Common;
use crate::sys::{Sample, Sampler};
use crate::task::LocalStop;

/// What every task of one load thread shares.
#[derive(Clone)]
pub(super) struct Ctx {
    pub c: Common,
    pub cfg: Arc<FleetCfg>,
    pub ph: Arc<Phase>,
    /// This thread's figures; `Rc` because the thread's tasks share them and
    /// never leave the thread.
    pub st: Rc<RefCell<Tally>>,
    pub stop: LocalStop,
}

/// What the steady phase measured.
pub(super) struct Steady {
    pub phase: Arc<Phase>,
    pub tally: Tally,
    /// Server CPU and RSS once a second.
    pub samples: Vec<Sample>,
}

/// Runs the steady mix with `consumers` consumers until the window ends.
pub(super) fn run(c: &Common, cfg: &FleetCfg, consumers: usize) -> Result<Steady, String> {
    let ph = Arc::new(Phase::new(cfg));
    c.log(&format!(
        "fleet: {} instances renewing every {:?} over {} conns, {consumers} consumers x {} apps, churn {}/s, {:?}",
        cfg.instances,
        cfg.renew_interval,
        cfg.renew_conns,
        cfg.watch.min(cfg.apps()),
        cfg.churn,
        cfg.duration
    ));
    let sampler = Sampler::start(c.server_pid, Duration::from_secs(1), ph.t0, None);
    let threads = c.threads;
    let (c2, cfg2, ph2) = (c.clone(), Arc::new(cfg.clone()), ph.clone());
    let per_thread = run_threads(threads, c.driver, move |ti| {
        let x = Ctx {
            c: c2.clone(),
            cfg: cfg2.clone(),
            ph: ph2.clone(),
            st: Rc::new(RefCell::new(Tally::default())),
            stop: LocalStop::default(),
        };
        load_thread(x, ti, threads, consumers)
    })
    .map_err(|e| format!("runtime: {e}"))?;
    let samples = sampler.finish();
    let mut tally = Tally::default();
    for p in &per_thread {
        tally.merge(p);
    }
    Ok(Steady {
        phase: ph,
        tally,
        samples,
    })
}

/// Load thread `ti` of `threads`: its renew connections (r ≡ ti), its
/// consumers (m ≡ ti) and, on thread 0, the coordinator.
async fn load_thread(x: Ctx, ti: usize, threads: usize, consumers: usize) -> Tally {
    let watcher = monoio::spawn(x.stop.clone().watch(
        x.ph.done.clone(),
        Duration::from_millis(20),
        x.ph.hard_end,
    ));
    let mut hs = Vec::new();
    for r in (ti..x.cfg.renew_conns).step_by(threads) {
        hs.push(monoio::spawn(renew::renew_task(x.clone(), r)));
    }
    if ti == 0 {
        hs.push(monoio::spawn(churn::coordinator_task(x.clone(), consumers)));
    }
    // Consumers connect a bounded number at a time, so that thousands of
    // simultaneous connects do not overflow the server's backlog.
    let gate = Rc::new(Cell::new(0usize));
    let limit = x.cfg.connect_concurrency.div_ceil(threads).max(1);
    for m in (ti..consumers).step_by(threads) {
        while gate.get() >= limit && Instant::now() < x.ph.hard_end && !x.stop.fired() {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
        gate.set(gate.get() + 1);
        let task = consumer::consumer_task(x.clone(), m, gate.clone());
        hs.push(monoio::spawn(task));
    }
    for h in hs {
        h.await;
    }
    watcher.await;
    let st = x.st;
    Rc::try_unwrap(st)
        .map(|s| s.into_inner())
        .unwrap_or_default()
}
