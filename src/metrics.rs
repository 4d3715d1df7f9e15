//! Counters an operator reads at `/metrics`. Per-core means per-core: each serving thread bumps
//! counters in its own cache-line-aligned slot of a [`PerCore`], and a scrape sums the slots, so
//! nothing on the request path writes a cache line that another core writes. Counters of the
//! housekeeping thread (one writer) are plain atomics.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

thread_local! {
    /// This thread's slot in every [`PerCore`]: 0 for threads that are not cores.
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// Gives the calling thread (core `core`) its own slot, `core + 1`.
pub(crate) fn enter_core(core: usize) {
    SLOT.with(|s| s.set(core + 1));
}

/// One value per serving thread, each on its own cache line, plus slot 0 shared by the other
/// threads (housekeeping, cluster), whose writes are rare.
#[derive(Debug)]
pub(crate) struct PerCore<T> {
    slots: Box<[Padded<T>]>,
}

/// Aligned to 128 bytes: two cache lines, as adjacent-line prefetchers pair them.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T: Default> PerCore<T> {
    /// Slots for `cores` serving threads and the others.
    pub(crate) fn new(cores: usize) -> PerCore<T> {
        PerCore {
            slots: (0..=cores).map(|_| Padded::default()).collect(),
        }
    }
}

impl<T> PerCore<T> {
    /// The calling thread's slot (the last one for a core beyond the count given to `new`).
    pub(crate) fn mine(&self) -> &T {
        let i = SLOT.with(Cell::get).min(self.slots.len() - 1);
        &self.slots[i].0
    }

    /// Every slot, for summing.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|p| &p.0)
    }
}

/// The counters each core keeps.
#[derive(Debug, Default)]
pub(crate) struct CoreCounters {
    pub(crate) requests: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
    pub(crate) connections_open: AtomicI64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) polls_parked: AtomicI64,
    pub(crate) polls_answered: AtomicU64,
    pub(crate) poll_timeouts: AtomicU64,
    pub(crate) polls_refused: AtomicU64,
}

/// The node's counters and gauges.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) cores: PerCore<CoreCounters>,
    pub(crate) evict_rounds: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) self_preservation: AtomicI64,
}

/// Adds one to a counter.
pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Moves a gauge by `d`.
pub(crate) fn add(g: &AtomicI64, d: i64) {
    g.fetch_add(d, Ordering::Relaxed);
}

/// A value computed at scrape time: name, type, help, value.
pub(crate) type Sample<'a> = (&'a str, &'a str, &'a str, i64);

impl Metrics {
    /// Counters for `cores` serving threads.
    pub(crate) fn new(cores: usize) -> Metrics {
        Metrics {
            cores: PerCore::new(cores),
            evict_rounds: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            self_preservation: AtomicI64::new(0),
        }
    }

    /// This core's counters.
    pub(crate) fn core(&self) -> &CoreCounters {
        self.cores.mine()
    }

    /// Polls parked now, all cores together.
    pub(crate) fn polls_parked(&self) -> i64 {
        self.sum(|c| c.polls_parked.load(Ordering::Relaxed))
    }

    fn sum(&self, f: impl Fn(&CoreCounters) -> i64) -> i64 {
        self.cores.iter().map(f).sum()
    }

    /// The exposition text: the counters here, then `computed` samples from the caller.
    pub(crate) fn render(&self, computed: &[Sample<'_>]) -> String {
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed) as i64;
        let gauge = |g: &AtomicI64| g.load(Ordering::Relaxed);
        let own: [Sample<'_>; 11] = [
            (
                "discovery_requests_total",
                "counter",
                "HTTP requests answered.",
                self.sum(|c| count(&c.requests)),
            ),
            (
                "discovery_bad_requests_total",
                "counter",
                "Requests answered with ecode -400.",
                self.sum(|c| count(&c.bad_requests)),
            ),
            (
                "discovery_connections_open",
                "gauge",
                "Open client connections.",
                self.sum(|c| gauge(&c.connections_open)),
            ),
            (
                "discovery_connections_refused_total",
                "counter",
                "Connections refused with 503 (httpServer.maxConns or maxConnsPerIp reached).",
                self.sum(|c| count(&c.connections_refused)),
            ),
            (
                "discovery_polls_parked",
                "gauge",
                "Long-polls waiting for a change.",
                self.sum(|c| gauge(&c.polls_parked)),
            ),
            (
                "discovery_polls_answered_total",
                "counter",
                "Long-polls answered with data.",
                self.sum(|c| count(&c.polls_answered)),
            ),
            (
                "discovery_poll_timeouts_total",
                "counter",
                "Long-polls answered -304 at the deadline.",
                self.sum(|c| count(&c.poll_timeouts)),
            ),
            (
                "discovery_polls_refused_total",
                "counter",
                "Long-polls refused with 503 (httpServer.maxParkedPolls reached).",
                self.sum(|c| count(&c.polls_refused)),
            ),
            (
                "discovery_evict_rounds_total",
                "counter",
                "Eviction rounds run.",
                count(&self.evict_rounds),
            ),
            (
                "discovery_evicted_total",
                "counter",
                "Instances evicted for missing renews.",
                count(&self.evicted),
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
            use std::fmt::Write;
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_core_slots_are_apart_and_summed() {
        let m = Metrics::new(2);
        inc(&m.core().requests);
        std::thread::scope(|s| {
            s.spawn(|| {
                enter_core(1);
                inc(&m.core().requests);
                inc(&m.core().requests);
                assert!(!std::ptr::eq(m.core(), m.cores.iter().next().unwrap()));
            });
            s.spawn(|| {
                // A core beyond the count shares the last slot rather than failing.
                enter_core(7);
                inc(&m.core().requests);
            });
        });
        let per: Vec<u64> = m
            .cores
            .iter()
            .map(|c| c.requests.load(Ordering::Relaxed))
            .collect();
        assert_eq!(per, [1, 0, 3]);
        assert!(m.render(&[]).contains("discovery_requests_total 4\n"));
        assert!(std::mem::align_of::<Padded<CoreCounters>>() >= 128);
    }
}
