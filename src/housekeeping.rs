//! The node's timed chores, on one plain thread beside the cores so that scanning the whole
//! registry never stalls a core's I/O: eviction rounds (with the guard's window), the guard's
//! recount, scheduler file reloads, renewing this node's own registration, and the end of
//! start-up protection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock;
use crate::cluster::op::Op;
use crate::metrics;
use crate::node::Node;
use crate::registry::scheduler::{SchedulerChange, SchedulerDir};
use crate::registry::EvictionRules;
use crate::shutdown::Shutdown;

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

/// Applies scheduler changes found on disk to the registry.
pub fn apply_schedulers(node: &Node, dir: &mut SchedulerDir) {
    for change in dir.scan() {
        let now = clock::now_ns();
        match change {
            SchedulerChange::Set(s) => node.registry.set_scheduler(&s.key, Some(s.encoded), now),
            SchedulerChange::Removed(key) => node.registry.set_scheduler(&key, None, now),
        }
    }
}

/// Runs the chores until `shutdown` triggers.
pub fn run(node: &Arc<Node>, shutdown: &Shutdown, mut schedulers: Option<SchedulerDir>) {
    let cfg = &node.config.registry;
    let start = Instant::now();
    let mut evict = Chore::new(cfg.evict_interval, start);
    let mut recount = Chore::new(cfg.guard_recount, start);
    let mut renew_self = Chore::new(cfg.self_renew_interval, start);
    let mut reload = Chore::new(cfg.scheduler_reload, start);
    let protect_until = start + cfg.protect_timeout;
    let rules = EvictionRules {
        after_ns: nanos(cfg.evict_after),
        after_protected_ns: nanos(cfg.evict_after_protected),
    };
    loop {
        let now = Instant::now();
        if node.protected() && now >= protect_until {
            node.end_protection();
        }
        if evict.due(now) {
            let report = node.registry.evict(rules, clock::now_ns());
            let m = &node.metrics;
            metrics::inc(&m.evict_rounds);
            m.evicted
                .fetch_add(report.evicted as u64, std::sync::atomic::Ordering::Relaxed);
            m.self_preservation.store(
                i64::from(report.protected),
                std::sync::atomic::Ordering::Relaxed,
            );
            if report.protected {
                let (expected, threshold) = node.registry.guard().expected();
                tracing::warn!(
                    renews = node.registry.guard().renews_last_window(),
                    expected,
                    threshold,
                    "self-preservation on: fewer renews than expected, evicting only instances silent for {:?}",
                    cfg.evict_after_protected
                );
            }
            if report.expired > 0 {
                tracing::info!(
                    size = report.registry_size,
                    expired = report.expired,
                    evicted = report.evicted,
                    "eviction round"
                );
            }
        }
        if recount.due(now) {
            node.registry.recount();
        }
        if renew_self.due(now) {
            let me = node.self_registration();
            let renewed =
                node.registry
                    .renew(&me.env, &me.appid, &me.zone, &me.hostname, clock::now_ns());
            match renewed {
                Some(inst) => node.cluster.replicate(Op::Renew(inst), false),
                None => {
                    tracing::warn!("own registration was gone; registering again");
                    match node.registry.register(&me, clock::now_ns()) {
                        Ok(inst) => node.cluster.replicate(Op::Register(inst), false),
                        Err(e) => tracing::error!(error = %e, "cannot register this node"),
                    }
                }
            }
        }
        if let Some(dir) = schedulers.as_mut() {
            if reload.due(now) {
                apply_schedulers(node, dir);
            }
        }
        let mut next = evict.next.min(recount.next).min(renew_self.next);
        if schedulers.is_some() {
            next = next.min(reload.next);
        }
        if node.protected() {
            next = next.min(protect_until);
        }
        if shutdown.wait(next.saturating_duration_since(Instant::now())) {
            return;
        }
    }
}
