//! Self-preservation: when far fewer renews arrive than the registered instances should send,
//! the fault is more likely the network than the instances, so eviction holds back. Renews are
//! counted per core (every renew bumps one), and summed when a window closes.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::metrics::PerCore;

/// Share of the expected renews below which the registry protects itself.
const PROTECT_BELOW: f64 = 0.85;

/// Counts renews per window against the renews expected (two per instance per window).
#[derive(Debug)]
pub struct SelfPreservation {
    expected_per_window: AtomicI64,
    /// Renews ever counted, per core; a window is the difference between two rolls.
    renews: PerCore<AtomicI64>,
    /// The sum of `renews` at the last roll.
    renews_at_roll: AtomicI64,
    renews_last_window: AtomicI64,
    /// Whether the window before the last one had too few renews.
    below_before: AtomicBool,
    /// Whether a window has closed yet (before the first, there is none to judge).
    rolled: AtomicBool,
}

impl SelfPreservation {
    /// A guard whose renew counter has a slot for each of `cores` serving threads.
    pub(crate) fn new(cores: usize) -> SelfPreservation {
        SelfPreservation {
            expected_per_window: AtomicI64::new(0),
            renews: PerCore::new(cores),
            renews_at_roll: AtomicI64::new(0),
            renews_last_window: AtomicI64::new(0),
            below_before: AtomicBool::new(false),
            rolled: AtomicBool::new(false),
        }
    }

    /// A new instance will send two renews a window.
    pub(crate) fn add_instance(&self) {
        self.expected_per_window.fetch_add(2, Ordering::Relaxed);
    }

    /// A cancelled instance no longer renews.
    pub(crate) fn remove_instance(&self) {
        let _ = self
            .expected_per_window
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |e| {
                Some((e - 2).max(0))
            });
    }

    /// Recounts the expectation from the true number of instances (drift from evictions).
    pub(crate) fn set_instances(&self, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX / 2);
        self.expected_per_window.store(count * 2, Ordering::Relaxed);
    }

    /// One renew arrived.
    pub(crate) fn count_renew(&self) {
        self.renews.mine().fetch_add(1, Ordering::Relaxed);
    }

    /// Closes the current window; its count becomes the one `protected` judges by.
    pub(crate) fn roll_window(&self) {
        let had_window = self.rolled.swap(true, Ordering::Relaxed);
        self.below_before
            .store(had_window && self.below(), Ordering::Relaxed);
        let total = self.renews_total();
        let before = self.renews_at_roll.swap(total, Ordering::Relaxed);
        self.renews_last_window
            .store(total - before, Ordering::Relaxed);
    }

    /// Renews counted since start, over all cores: it moves whenever any renew time does.
    pub fn renews_total(&self) -> i64 {
        self.renews.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Renews expected per window, and the threshold under which protection is on.
    pub fn expected(&self) -> (i64, i64) {
        let e = self.expected_per_window.load(Ordering::Relaxed);
        (e, (e as f64 * PROTECT_BELOW) as i64)
    }

    /// Renews counted in the last closed window.
    pub fn renews_last_window(&self) -> i64 {
        self.renews_last_window.load(Ordering::Relaxed)
    }

    /// True while the last window, or the one before it, saw fewer renews than the threshold.
    /// Protection ends only after a whole window of renews: the window in which a partition
    /// heals also counts the backlog of renews the peers replay at once, while the instances
    /// whose renews are still on their way would look silent to the eviction that follows.
    pub fn protected(&self) -> bool {
        self.below() || self.below_before.load(Ordering::Relaxed)
    }

    fn below(&self) -> bool {
        self.renews_last_window() < self.expected().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protects_below_85_percent_of_expected() {
        let g = SelfPreservation::new(1);
        for _ in 0..10 {
            g.add_instance();
        }
        assert_eq!(g.expected(), (20, 17));
        for _ in 0..16 {
            g.count_renew();
        }
        g.roll_window();
        assert!(g.protected());
        for _ in 0..17 {
            g.count_renew();
        }
        g.roll_window();
        assert!(g.protected(), "one window of renews back is not enough");
        for _ in 0..17 {
            g.count_renew();
        }
        g.roll_window();
        assert!(!g.protected());
        g.roll_window();
        assert!(g.protected(), "an empty window protects again");
    }

    #[test]
    fn renews_of_every_core_are_summed() {
        let g = SelfPreservation::new(2);
        g.set_instances(5);
        std::thread::scope(|s| {
            for core in 0..2 {
                let g = &g;
                s.spawn(move || {
                    crate::metrics::enter_core(core);
                    for _ in 0..5 {
                        g.count_renew();
                    }
                });
            }
        });
        g.roll_window();
        assert_eq!(g.renews_last_window(), 10);
        assert!(!g.protected());
    }

    #[test]
    fn expectation_follows_cancels_and_recount() {
        let g = SelfPreservation::new(1);
        g.add_instance();
        g.remove_instance();
        g.remove_instance();
        assert_eq!(g.expected().0, 0);
        g.set_instances(100);
        assert_eq!(g.expected(), (200, 170));
    }
}
