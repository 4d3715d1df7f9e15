//! When renew timestamps cannot be trusted. An instance is evicted when its client has been
//! silent for `evictAfter` by this node's wall clock; that holds only while the node has been
//! running and its wall clock moving with real time. After the node was stopped or starved
//! (SIGSTOP, a paused VM) every instance looks silent for as long as the node was, though its
//! client renewed through other nodes meanwhile; after the wall clock jumped forward every
//! instance looks silent for the size of the jump. Either way eviction waits one `evictAfter`
//! from the moment it is noticed: long enough for every live client to renew here again.

use std::time::{Duration, Instant};

/// A wait that overran, or a clock that moved, by at most this much is ordinary scheduling and
/// clock discipline (NTP slews; a step of this size is within any renew interval).
const TOLERANCE: Duration = Duration::from_secs(2);

/// What made renew timestamps look older than they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lapse {
    /// The node's housekeeping woke this much later than it asked to.
    Stopped(Duration),
    /// The wall clock moved this much further than the monotonic clock.
    ClockJumped(Duration),
}

/// The node's two clocks as last seen, and until when eviction waits.
#[derive(Debug)]
pub(super) struct Lapses {
    base: Instant,
    /// Wall-clock nanoseconds minus monotonic nanoseconds since `base`, as last seen.
    offset_ns: i128,
    hold_until: Option<Instant>,
}

impl Lapses {
    pub(super) fn new(mono: Instant, wall_ns: i64) -> Lapses {
        Lapses {
            base: mono,
            offset_ns: i128::from(wall_ns),
            hold_until: None,
        }
    }

    /// Notes the clocks after a wait that took `overslept` longer than asked; a lapse holds
    /// eviction for `hold` from `mono`.
    pub(super) fn observe(
        &mut self,
        mono: Instant,
        wall_ns: i64,
        overslept: Duration,
        hold: Duration,
    ) -> Option<Lapse> {
        let offset = i128::from(wall_ns) - mono.duration_since(self.base).as_nanos() as i128;
        let jumped = offset - std::mem::replace(&mut self.offset_ns, offset);
        let lapse = if overslept > TOLERANCE {
            Some(Lapse::Stopped(overslept))
        } else if jumped > TOLERANCE.as_nanos() as i128 {
            Some(Lapse::ClockJumped(Duration::from_nanos(
                u64::try_from(jumped).unwrap_or(u64::MAX),
            )))
        } else {
            None
        };
        if lapse.is_some() {
            self.hold_until = Some(mono + hold);
        }
        lapse
    }

    /// True while eviction waits after a lapse.
    pub(super) fn holding(&self, mono: Instant) -> bool {
        self.hold_until.is_some_and(|until| mono < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;
    const HOLD: Duration = Duration::from_secs(90);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn clocks_moving_together_hold_nothing() {
        let t0 = Instant::now();
        let mut l = Lapses::new(t0, 1_000 * SEC);
        for i in 1..=10u64 {
            let wall = 1_000 * SEC + i as i64 * 60 * SEC + 3_000_000; // a few ms of drift
            assert_eq!(l.observe(t0 + secs(60 * i), wall, secs(1), HOLD), None);
            assert!(!l.holding(t0 + secs(60 * i)));
        }
    }

    #[test]
    fn a_long_stop_holds_eviction_for_the_hold_from_when_it_is_noticed() {
        let t0 = Instant::now();
        let mut l = Lapses::new(t0, 0);
        let woke = t0 + secs(75);
        // Asked to sleep 60 s, woke after 75 s; the wall clock moved with it.
        assert_eq!(
            l.observe(woke, 75 * SEC, secs(15), HOLD),
            Some(Lapse::Stopped(secs(15)))
        );
        assert!(l.holding(woke));
        assert!(l.holding(woke + HOLD - secs(1)));
        assert!(!l.holding(woke + HOLD));
    }

    #[test]
    fn a_forward_jump_of_the_wall_clock_holds_eviction() {
        let t0 = Instant::now();
        let mut l = Lapses::new(t0, 0);
        let at = t0 + secs(6);
        assert_eq!(
            l.observe(at, 126 * SEC, Duration::ZERO, HOLD),
            Some(Lapse::ClockJumped(secs(120)))
        );
        assert!(l.holding(at + secs(89)));
        // The clock stays where it jumped to: no further lapse, and the hold ends.
        assert_eq!(
            l.observe(at + secs(6), 132 * SEC, Duration::ZERO, HOLD),
            None
        );
        assert!(!l.holding(at + HOLD));
    }

    #[test]
    fn a_backward_jump_holds_nothing_but_the_jump_back_does() {
        let t0 = Instant::now();
        let mut l = Lapses::new(t0, 200 * SEC);
        // Back by 2 min: timestamps look newer, nothing looks silent.
        assert_eq!(
            l.observe(t0 + secs(6), 86 * SEC, Duration::ZERO, HOLD),
            None
        );
        // Forward to true time again: everything renewed meanwhile looks 2 min older.
        assert_eq!(
            l.observe(t0 + secs(12), 212 * SEC, Duration::ZERO, HOLD),
            Some(Lapse::ClockJumped(secs(120)))
        );
    }

    #[test]
    fn small_overruns_and_steps_are_tolerated() {
        let t0 = Instant::now();
        let mut l = Lapses::new(t0, 0);
        assert_eq!(l.observe(t0 + secs(2), 3 * SEC, secs(2), HOLD), None);
        assert!(!l.holding(t0 + secs(2)));
    }
}
