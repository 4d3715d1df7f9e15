//! Counters and histograms an operator reads at `/metrics`. Per-core means per-core: each
//! serving thread bumps counters and histogram buckets in its own cache-line-aligned slot of a
//! [`PerCore`], and a scrape sums the slots, so nothing on the request path writes a cache line
//! that another core writes. Counters of the housekeeping thread (one writer) are plain atomics.
//! The exposition format is written by `api::metrics`.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

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

/// Upper bounds of the latency histograms, in nanoseconds: 50 µs to 60 s, then +Inf.
pub(crate) const LATENCY_BOUNDS_NS: [u64; 21] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    45_000_000_000,
    60_000_000_000,
    u64::MAX,
];

/// Upper bounds of the replication batch-size histogram (ops per request), then +Inf.
pub(crate) const BATCH_BOUNDS: [u64; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, u64::MAX];

/// A histogram with the fixed bounds `N` given at each call (the last is `u64::MAX`, +Inf):
/// one counter per bucket and the sum, all written by one thread.
#[derive(Debug)]
pub(crate) struct Histogram<const N: usize> {
    counts: [AtomicU64; N],
    sum: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    /// Counts `value` in the first bucket whose bound is not below it.
    pub(crate) fn observe(&self, bounds: &[u64; N], value: u64) {
        let i = bounds.partition_point(|&b| b < value).min(N - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Adds this histogram's counts into `into`.
    pub(crate) fn add_to(&self, into: &mut Merged<N>) {
        for (m, c) in into.counts.iter_mut().zip(&self.counts) {
            *m += c.load(Ordering::Relaxed);
        }
        into.sum += self.sum.load(Ordering::Relaxed);
    }
}

/// Histograms of several threads summed at scrape time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Merged<const N: usize> {
    /// Per bucket, not cumulative.
    pub(crate) counts: [u64; N],
    pub(crate) sum: u64,
}

impl<const N: usize> Default for Merged<N> {
    fn default() -> Self {
        Merged {
            counts: [0; N],
            sum: 0,
        }
    }
}

impl<const N: usize> Merged<N> {
    /// Observations counted.
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(upper bound, count)` pairs with bounds divided by `scale` (the last is `f64::MAX`, which
    /// the exposition writes as +Inf), the sum divided by `scale`, and the count.
    pub(crate) fn exposition(&self, bounds: &[u64; N], scale: f64) -> (Vec<(f64, u64)>, f64, u64) {
        let buckets = bounds
            .iter()
            .zip(self.counts)
            .map(|(&b, c)| {
                let bound = if b == u64::MAX {
                    f64::MAX
                } else {
                    b as f64 / scale
                };
                (bound, c)
            })
            .collect();
        (buckets, self.sum as f64 / scale, self.count())
    }

    /// The value under which a share `q` (0..1) of the observations fall, as the upper bound
    /// of the bucket it lands in (`None` with no observations or in the +Inf bucket).
    pub(crate) fn quantile(&self, bounds: &[u64; N], q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (bounds[i] != u64::MAX).then_some(bounds[i]);
            }
        }
        None
    }
}

/// Slots for endpoints: the API's routes index them (see `api::Route::slot`).
pub(crate) const ENDPOINTS: usize = 24;

/// The ecodes answers are counted by, as labels; any other ecode counts as "other".
pub(crate) const ECODE_LABELS: [&str; 6] = ["0", "-304", "-400", "-404", "-500", "other"];

/// The slot of `ecode` in [`ECODE_LABELS`].
pub(crate) fn ecode_slot(ecode: i32) -> usize {
    match ecode {
        0 => 0,
        -304 => 1,
        -400 => 2,
        -404 => 3,
        -500 => 4,
        _ => 5,
    }
}

/// One endpoint's counters on one core.
#[derive(Debug, Default)]
pub(crate) struct EndpointStats {
    /// Answers by ecode slot ([`ECODE_LABELS`]).
    pub(crate) answers: [AtomicU64; ECODE_LABELS.len()],
    /// Time from the request framed to its answer written into the output buffer (or parked).
    pub(crate) latency: Histogram<{ LATENCY_BOUNDS_NS.len() }>,
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
    pub(crate) auth_refused: AtomicU64,
    pub(crate) limit_refused: AtomicU64,
    /// Per endpoint, indexed by route slot.
    pub(crate) endpoints: [EndpointStats; ENDPOINTS],
    /// How long parked polls were held, from parking to their answer (data or -304).
    pub(crate) poll_hold: Histogram<{ LATENCY_BOUNDS_NS.len() }>,
    /// From a change's publication to the answer of a poll parked on it.
    pub(crate) poll_wake: Histogram<{ LATENCY_BOUNDS_NS.len() }>,
    pub(crate) polls_refused: AtomicU64,
}

/// The node's counters and gauges.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) cores: PerCore<CoreCounters>,
    pub(crate) evict_rounds: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) self_preservation: AtomicI64,
    /// When the node started, for uptime.
    pub(crate) started: Instant,
    /// Unix time of the start, in seconds.
    pub(crate) started_unix: i64,
    /// The I/O driver the cores run on, set by the first core that starts.
    pub(crate) driver: OnceLock<&'static str>,
}

/// Adds one to a counter.
pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Moves a gauge by `d`.
pub(crate) fn add(g: &AtomicI64, d: i64) {
    g.fetch_add(d, Ordering::Relaxed);
}

/// Nanoseconds since `t`, saturated.
pub(crate) fn nanos_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl Metrics {
    /// Counters for `cores` serving threads.
    pub(crate) fn new(cores: usize) -> Metrics {
        Metrics {
            cores: PerCore::new(cores),
            evict_rounds: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            self_preservation: AtomicI64::new(0),
            started: Instant::now(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            driver: OnceLock::new(),
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

    /// A counter or gauge summed over every core.
    pub(crate) fn sum(&self, f: impl Fn(&CoreCounters) -> i64) -> i64 {
        self.cores.iter().map(f).sum()
    }

    /// A histogram summed over every core.
    pub(crate) fn merged<const N: usize>(
        &self,
        f: impl Fn(&CoreCounters) -> &Histogram<N>,
    ) -> Merged<N> {
        let mut m = Merged::default();
        for c in self.cores.iter() {
            f(c).add_to(&mut m);
        }
        m
    }
}

/// Reads a counter.
pub(crate) fn count(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Reads a gauge.
pub(crate) fn gauge(g: &AtomicI64) -> i64 {
    g.load(Ordering::Relaxed)
}

/// The process's resident memory in bytes and its open file descriptors, from `/proc`
/// (`None` where that is not mounted).
pub(crate) fn process() -> (Option<u64>, Option<u64>) {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
            // SAFETY: sysconf only reads a constant of the system.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            Some(pages * u64::try_from(page).ok()?)
        });
    let fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    (rss, fds)
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
        let per: Vec<u64> = m.cores.iter().map(|c| count(&c.requests)).collect();
        assert_eq!(per, [1, 0, 3]);
        assert_eq!(m.sum(|c| count(&c.requests) as i64), 4);
        assert!(std::mem::align_of::<Padded<CoreCounters>>() >= 128);
    }

    #[test]
    fn histograms_bucket_merge_and_give_quantiles() {
        let m = Metrics::new(2);
        let b = &LATENCY_BOUNDS_NS;
        m.core().poll_wake.observe(b, 10_000); // 10 µs: first bucket
        m.core().poll_wake.observe(b, 50_000); // on a bound: that bucket
        std::thread::scope(|s| {
            s.spawn(|| {
                enter_core(0);
                m.core().poll_wake.observe(b, 3_000_000); // 3 ms: the 5 ms bucket
                m.core().poll_wake.observe(b, u64::MAX / 2); // beyond 60 s: +Inf
            });
        });
        let merged = m.merged(|c| &c.poll_wake);
        assert_eq!(merged.count(), 4);
        assert_eq!(merged.counts[0], 2);
        assert_eq!(merged.counts[6], 1);
        assert_eq!(merged.counts[b.len() - 1], 1);
        assert_eq!(merged.quantile(b, 0.5), Some(50_000));
        assert_eq!(merged.quantile(b, 0.75), Some(5_000_000));
        assert_eq!(merged.quantile(b, 1.0), None);
        let (buckets, _, n) = merged.exposition(b, 1e9);
        assert_eq!(n, 4);
        assert_eq!(buckets[0], (50e-6, 2));
        assert_eq!(buckets.last().unwrap().0, f64::MAX);
        assert_eq!(
            Merged::<3>::default().quantile(&[1, 2, u64::MAX], 0.5),
            None
        );
    }

    #[test]
    fn ecodes_have_slots_and_others_share_the_last() {
        assert_eq!(ecode_slot(0), 0);
        assert_eq!(ecode_slot(-404), 3);
        assert_eq!(ECODE_LABELS[ecode_slot(-404)], "-404");
        assert_eq!(ECODE_LABELS[ecode_slot(-409)], "other");
    }
}
