//! How long to wait before trying again after a failure: exponential with a cap, and jittered
//! so that many clients that lost the same node do not all come back at the same instant.

use std::time::Duration;

/// Exponential backoff with "equal jitter": the n-th consecutive retry waits a random time
/// between half of and the whole of `min(base × 2ⁿ, max)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Default for Backoff {
    /// 500 ms, doubling up to 30 s.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Starts at `base` and doubles up to `max` (`max` is raised to `base` if lower).
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
        }
    }

    /// The longest wait before retry number `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry number `attempt`: uniform in `[ceiling / 2, ceiling]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, &mut fastrand::Rng::new())
    }

    pub(crate) fn delay_with(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rng.u64(0..=spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_doubles_from_base_and_stops_at_max() {
        let b = Backoff::new(100 * MS, 1000 * MS);
        let ceilings: Vec<Duration> = (0..7).map(|n| b.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1000, 1000, 1000].map(|m| m * MS)
        );
        // Huge attempt counts neither overflow nor pass the cap.
        assert_eq!(b.ceiling(u32::MAX), 1000 * MS);
        assert_eq!(
            Backoff::new(Duration::MAX / 2, Duration::MAX).ceiling(40),
            Duration::MAX
        );
    }

    #[test]
    fn max_below_base_is_raised_to_base() {
        assert_eq!(Backoff::new(200 * MS, 50 * MS).ceiling(3), 200 * MS);
    }

    #[test]
    fn jittered_delays_stay_within_half_and_whole_ceiling_and_spread() {
        let b = Backoff::new(100 * MS, 3000 * MS);
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 0..8 {
            let ceiling = b.ceiling(attempt);
            let delays: Vec<Duration> = (0..500).map(|_| b.delay_with(attempt, &mut rng)).collect();
            for d in &delays {
                assert!(
                    *d >= ceiling / 2 && *d <= ceiling,
                    "attempt {attempt}: {d:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
            // Jitter really spreads: both halves of the range are used.
            let mid = ceiling / 2 + ceiling / 4;
            assert!(
                delays.iter().any(|d| *d < mid),
                "attempt {attempt}: none low"
            );
            assert!(
                delays.iter().any(|d| *d > mid),
                "attempt {attempt}: none high"
            );
        }
        // The public draw obeys the same bounds.
        for _ in 0..100 {
            let d = b.delay(2);
            assert!(d >= 200 * MS && d <= 400 * MS, "{d:?}");
        }
    }

    #[test]
    fn zero_base_means_retry_at_once() {
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::ZERO).delay(5),
            Duration::ZERO
        );
    }
}
