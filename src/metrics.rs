//! Counters an operator reads at `/metrics` (Prometheus text format). Plain atomics bumped on
//! the paths that matter at 3 a.m.: what arrives, what is parked, what eviction does.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The node's counters and gauges.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub bad_requests: AtomicU64,
    pub connections_open: AtomicI64,
    pub polls_parked: AtomicI64,
    pub polls_answered: AtomicU64,
    pub poll_timeouts: AtomicU64,
    pub evict_rounds: AtomicU64,
    pub evicted: AtomicU64,
    pub self_preservation: AtomicI64,
}

/// Adds one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Moves a gauge by `d`.
pub fn add(g: &AtomicI64, d: i64) {
    g.fetch_add(d, Ordering::Relaxed);
}

impl Metrics {
    /// The exposition text; `apps` and `instances` are counted by the caller.
    pub fn render(
        &self,
        apps: usize,
        instances: usize,
        renews_last_window: i64,
        expected: i64,
    ) -> String {
        let mut s = String::with_capacity(1024);
        let mut line = |name: &str, kind: &str, help: &str, value: i64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as i64;
        let gauge = |g: &AtomicI64| g.load(Ordering::Relaxed);
        line(
            "discovery_apps",
            "gauge",
            "Apps (env, appid) with at least one instance.",
            apps as i64,
        );
        line(
            "discovery_instances",
            "gauge",
            "Registered instances.",
            instances as i64,
        );
        line(
            "discovery_requests_total",
            "counter",
            "HTTP requests answered.",
            get(&self.requests),
        );
        line(
            "discovery_bad_requests_total",
            "counter",
            "Requests answered with ecode -400.",
            get(&self.bad_requests),
        );
        line(
            "discovery_connections_open",
            "gauge",
            "Open client connections.",
            gauge(&self.connections_open),
        );
        line(
            "discovery_polls_parked",
            "gauge",
            "Long-polls waiting for a change.",
            gauge(&self.polls_parked),
        );
        line(
            "discovery_polls_answered_total",
            "counter",
            "Long-polls answered with data.",
            get(&self.polls_answered),
        );
        line(
            "discovery_poll_timeouts_total",
            "counter",
            "Long-polls answered -304 at the deadline.",
            get(&self.poll_timeouts),
        );
        line(
            "discovery_evict_rounds_total",
            "counter",
            "Eviction rounds run.",
            get(&self.evict_rounds),
        );
        line(
            "discovery_evicted_total",
            "counter",
            "Instances evicted for missing renews.",
            get(&self.evicted),
        );
        line(
            "discovery_renews_last_window",
            "gauge",
            "Renews counted in the last guard window.",
            renews_last_window,
        );
        line(
            "discovery_renews_expected",
            "gauge",
            "Renews expected per guard window.",
            expected,
        );
        line(
            "discovery_self_preservation",
            "gauge",
            "1 while eviction is held back by self-preservation.",
            gauge(&self.self_preservation),
        );
        s
    }
}
