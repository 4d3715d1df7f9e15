//! The node's timed chores, on one plain thread beside the cores so that scanning the whole
//! registry never stalls a core's I/O: eviction rounds (with the guard's window), the guard's
//! recount, scheduler file reloads, renewing this node's own registration, and the end of
//! start-up protection.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lapses::{Lapse, Lapses};
use super::schedulers::{SchedulerChange, SchedulerDir};
use crate::clock;
use crate::cluster::op::Op;
use crate::cluster::Cluster;
use crate::config::RegistryConfig;
use crate::identity::Identity;
use crate::metrics::{self, Metrics};
use crate::registry::{EvictionRules, Registry};
use crate::shutdown::Shutdown;
use crate::wire::Origin;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// One chore and when it is next due.
struct Chore {
    every: Duration,
    next: Instant,
}

impl Chore {
    fn new(every: Duration, start: Instant) -> Chore {
        Chore {
            every,
            next: start + every,
        }
    }

    fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}

/// What the chores work on.
pub(super) struct Housekeeping {
    pub(super) registry: Arc<Registry>,
    pub(super) cluster: Arc<Cluster>,
    pub(super) identity: Arc<Identity>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) timings: RegistryConfig,
}

impl Housekeeping {
    /// Applies scheduler changes found on disk to the registry.
    pub(super) fn apply_schedulers(&self, dir: &mut SchedulerDir) {
        for change in dir.scan() {
            let now = clock::now_ns();
            match change {
                SchedulerChange::Set(s) => {
                    self.registry.set_scheduler(&s.key, Some(s.encoded), now)
                }
                SchedulerChange::Removed(key) => self.registry.set_scheduler(&key, None, now),
            }
        }
    }

    /// Runs the chores until `shutdown` triggers.
    pub(super) fn run(&self, shutdown: &Shutdown, mut schedulers: Option<SchedulerDir>) {
        let cfg = &self.timings;
        let start = Instant::now();
        let mut evict = Chore::new(cfg.evict_interval, start);
        let mut recount = Chore::new(cfg.guard_recount, start);
        let mut renew_self = Chore::new(cfg.self_renew_interval, start);
        let mut reload = Chore::new(cfg.scheduler_reload, start);
        let mut save = Chore::new(cfg.snapshot_interval, start);
        let protect_until = start + cfg.protect_timeout;
        let rules = EvictionRules {
            after_ns: nanos(cfg.evict_after),
            after_protected_ns: nanos(cfg.evict_after_protected),
        };
        let mut lapses = Lapses::new(start, clock::now_ns());
        let mut overslept = Duration::ZERO;
        loop {
            let now = Instant::now();
            if let Some(lapse) = lapses.observe(now, clock::now_ns(), overslept, cfg.evict_after) {
                self.log_lapse(lapse);
            }
            if self.cluster.protected() && now >= protect_until {
                self.cluster.end_protection();
            }
            if evict.due(now) {
                if lapses.holding(now) {
                    self.evict(EvictionRules::NONE);
                } else {
                    self.evict(rules);
                }
            }
            if recount.due(now) {
                self.registry.recount();
            }
            if renew_self.due(now) {
                self.renew_self();
            }
            if let Some(dir) = schedulers.as_mut() {
                if reload.due(now) {
                    self.apply_schedulers(dir);
                }
            }
            if let Some(path) = &cfg.snapshot {
                if save.due(now) {
                    if let Err(e) = super::persist::save(path, &self.registry) {
                        tracing::error!(path = %path.display(), error = %e, "snapshot not written");
                    }
                }
            }
            let mut next = evict.next.min(recount.next).min(renew_self.next);
            if schedulers.is_some() {
                next = next.min(reload.next);
            }
            if cfg.snapshot.is_some() {
                next = next.min(save.next);
            }
            if self.cluster.protected() {
                next = next.min(protect_until);
            }
            let asked = next.saturating_duration_since(Instant::now());
            let slept_from = Instant::now();
            if shutdown.wait(asked) {
                return;
            }
            overslept = slept_from.elapsed().saturating_sub(asked);
        }
    }

    fn log_lapse(&self, lapse: Lapse) {
        let hold = self.timings.evict_after;
        match lapse {
            Lapse::Stopped(d) => tracing::warn!(
                late = ?d,
                "housekeeping woke {d:?} late (the process was stopped or starved): eviction waits {hold:?} (evictAfter) for clients to renew here again"
            ),
            Lapse::ClockJumped(d) => tracing::warn!(
                jump = ?d,
                "the wall clock jumped {d:?} forward: eviction waits {hold:?} (evictAfter) for clients to renew here again"
            ),
        }
    }

    /// One eviction round, logged (at info) when it found anything expired; a change of the
    /// self-preservation state is logged once, when it happens.
    fn evict(&self, rules: EvictionRules) {
        let report = self.registry.evict(rules, clock::now_ns());
        let m = &self.metrics;
        metrics::inc(&m.evict_rounds);
        m.evicted
            .fetch_add(report.evicted as u64, Ordering::Relaxed);
        let was = m
            .self_preservation
            .swap(i64::from(report.protected), Ordering::Relaxed);
        let guard = self.registry.self_preservation();
        let (expected, threshold) = guard.expected();
        match (was != 0, report.protected) {
            (false, true) => tracing::warn!(
                state = "on",
                renews = guard.renews_last_window(),
                expected,
                threshold,
                "self-preservation on: fewer renews than expected, evicting only instances silent for {:?}",
                self.timings.evict_after_protected
            ),
            (true, false) => tracing::info!(
                state = "off",
                renews = guard.renews_last_window(),
                expected,
                threshold,
                "self-preservation off: renews are back, evicting instances silent for {:?}",
                self.timings.evict_after
            ),
            _ => {}
        }
        if report.expired > 0 {
            tracing::info!(
                size = report.registry_size,
                expired = report.expired,
                evicted = report.evicted,
                protected = report.protected,
                "eviction round"
            );
        }
    }

    fn renew_self(&self) {
        match self.registry.renew(&self.identity.key(), clock::now_ns()) {
            Some(inst) => self.cluster.forward(Op::Renew(inst), Origin::Client),
            None => {
                tracing::warn!("own registration was gone; registering again");
                match self
                    .registry
                    .register(&self.identity.registration(), clock::now_ns())
                {
                    Ok(inst) => self.cluster.forward(Op::Register(inst), Origin::Client),
                    Err(e) => tracing::error!(error = %e, "cannot register this node"),
                }
            }
        }
    }
}
