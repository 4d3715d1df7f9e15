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

/// A value computed at scrape time: name, type, help, value.
pub type Sample<'a> = (&'a str, &'a str, &'a str, i64);

impl Metrics {
    /// The exposition text: the counters here, then `computed` samples from the caller.
    pub fn render(&self, computed: &[Sample<'_>]) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as i64;
        let gauge = |g: &AtomicI64| g.load(Ordering::Relaxed);
        let own: [Sample<'_>; 9] = [
            (
                "discovery_requests_total",
                "counter",
                "HTTP requests answered.",
                get(&self.requests),
            ),
            (
                "discovery_bad_requests_total",
                "counter",
                "Requests answered with ecode -400.",
                get(&self.bad_requests),
            ),
            (
                "discovery_connections_open",
                "gauge",
                "Open client connections.",
                gauge(&self.connections_open),
            ),
            (
                "discovery_polls_parked",
                "gauge",
                "Long-polls waiting for a change.",
                gauge(&self.polls_parked),
            ),
            (
                "discovery_polls_answered_total",
                "counter",
                "Long-polls answered with data.",
                get(&self.polls_answered),
            ),
            (
                "discovery_poll_timeouts_total",
                "counter",
                "Long-polls answered -304 at the deadline.",
                get(&self.poll_timeouts),
            ),
            (
                "discovery_evict_rounds_total",
                "counter",
                "Eviction rounds run.",
                get(&self.evict_rounds),
            ),
            (
                "discovery_evicted_total",
                "counter",
                "Instances evicted for missing renews.",
                get(&self.evicted),
            ),
            (
                "discovery_self_preservation",
                "gauge",
                "1 while eviction is held back by self-preservation.",
                gauge(&self.self_preservation),
            ),
        ];
        let mut s = String::with_capacity(2048);
        for (name, kind, help, value) in own.iter().chain(computed) {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        s
    }
}
