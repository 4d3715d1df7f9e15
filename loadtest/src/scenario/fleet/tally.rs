//! What one load thread measured in the fleet's steady phase: renews, poll
//! answers and wakes, churn writes, and per-second latency histograms. Each
//! thread keeps its own and they are merged after the threads join.

use crate::stats::{Counts, Lat, ReqStats};

/// The per-thread figures of the steady phase.
#[derive(Default)]
pub(super) struct Tally {
    pub renew: ReqStats,
    pub renew_sec: Vec<Lat>,
    pub renew_max_lag_us: u64,
    pub renew_scheduled: u64,
    pub renew_skipped: u64,
    /// Renews answered inside the window, whenever they were due.
    pub renew_answered_in_window: u64,
    pub wake: Lat,
    pub wake_sec: Vec<Lat>,
    pub wakes: u64,
    pub unmatched: u64,
    pub answers: u64,
    pub answers_no_change: u64,
    pub not_modified: u64,
    pub poll_counts: Counts,
    pub synced: u64,
    pub sync_max_us: u64,
    pub churn: ReqStats,
    pub churn_max_lag_us: u64,
}

impl Tally {
    pub fn merge(&mut self, o: &Tally) {
        self.renew.merge(&o.renew);
        merge_secs(&mut self.renew_sec, &o.renew_sec);
        self.renew_max_lag_us = self.renew_max_lag_us.max(o.renew_max_lag_us);
        self.renew_scheduled += o.renew_scheduled;
        self.renew_skipped += o.renew_skipped;
        self.renew_answered_in_window += o.renew_answered_in_window;
        self.wake.merge(&o.wake);
        merge_secs(&mut self.wake_sec, &o.wake_sec);
        self.wakes += o.wakes;
        self.unmatched += o.unmatched;
        self.answers += o.answers;
        self.answers_no_change += o.answers_no_change;
        self.not_modified += o.not_modified;
        self.poll_counts.merge(&o.poll_counts);
        self.synced += o.synced;
        self.sync_max_us = self.sync_max_us.max(o.sync_max_us);
        self.churn.merge(&o.churn);
        self.churn_max_lag_us = self.churn_max_lag_us.max(o.churn_max_lag_us);
    }
}

fn merge_secs(a: &mut Vec<Lat>, b: &[Lat]) {
    while a.len() < b.len() {
        a.push(Lat::new(2));
    }
    for (x, y) in a.iter_mut().zip(b) {
        x.merge(y);
    }
}

/// The histogram of second `s` of the phase (seconds past a bound share the
/// last slot, so a long run cannot grow the vector without limit).
pub(super) fn sec_slot(v: &mut Vec<Lat>, s: usize) -> &mut Lat {
    let s = s.min(100_000);
    while v.len() <= s {
        v.push(Lat::new(2));
    }
    &mut v[s]
}
