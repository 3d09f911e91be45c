//! A connection's frame budget (WIRE.md §3): frames over the rate are dropped
//! with at most one `rate_limited` error a second, and a client that keeps
//! flooding is closed with 1008. "Keeps flooding" (v1.1) counts the seconds in
//! which frames were dropped within the last [`FLOOD_WINDOW_SECS`], pauses or
//! not: more than `JUNO_FLOOD_CLOSE_SECS` of them and the connection is closed,
//! so a client cannot flood for 9 s, pause for 2 and start again forever.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// Per-connection frame budget, with the contract's flood handling.
pub struct Budget {
    /// On the std clock: governor's default (quanta) clock makes each limiter ~100 bytes larger.
    limiter:
        RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>,
    /// Last `rate_limited` error sent (one a second at most).
    last_error: Option<Instant>,
    /// Second 0 of the flood clock: the connection's first dropped frame.
    flood_epoch: Option<Instant>,
    /// Seconds with drops, newest in bit 0 = `flood_second` (no heap: a mostly
    /// idle connection must stay small).
    flood_seconds: u64,
    flood_second: u64,
    /// More seconds with drops than this within the window close the connection.
    flood_close: u32,
}

/// How far back seconds with dropped frames count.
pub const FLOOD_WINDOW_SECS: u32 = 60;

pub enum Verdict {
    Pass,
    /// Drop the frame; send a `rate_limited` error if `true`.
    Drop(bool),
    /// Flooding too long: close with 1008.
    Close,
}

impl Budget {
    pub fn new(per_sec: u32, burst: u32, flood_close: Duration) -> Budget {
        // Invariant: Config refuses zero rates, so both are at least 1.
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Budget {
            limiter: RateLimiter::direct_with_clock(
                Quota::per_second(per_sec).allow_burst(burst),
                MonotonicClock,
            ),
            last_error: None,
            flood_epoch: None,
            flood_seconds: 0,
            flood_second: 0,
            flood_close: u32::try_from(flood_close.as_secs()).unwrap_or(u32::MAX),
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.limiter.check().is_ok() {
            return Verdict::Pass;
        }
        if self.flooded_seconds(now) > self.flood_close {
            return Verdict::Close;
        }
        let tell = self
            .last_error
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if tell {
            self.last_error = Some(now);
        }
        Verdict::Drop(tell)
    }

    /// Marks `now`'s second as one with drops; how many seconds of the window had them.
    fn flooded_seconds(&mut self, now: Instant) -> u32 {
        let epoch = *self.flood_epoch.get_or_insert(now);
        let second = now.saturating_duration_since(epoch).as_secs();
        if second > self.flood_second {
            let shift = second - self.flood_second;
            self.flood_seconds = if shift >= 64 {
                0
            } else {
                self.flood_seconds << shift
            };
            self.flood_second = second;
        }
        // A frame stamped a little out of order lands in its own second.
        let age = self.flood_second.saturating_sub(second);
        if age < u64::from(FLOOD_WINDOW_SECS) {
            self.flood_seconds |= 1 << age;
        }
        let window = (1u64 << FLOOD_WINDOW_SECS) - 1;
        (self.flood_seconds & window).count_ones()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    /// A budget whose limiter lets `burst` frames through and then refills only
    /// once an hour: past the burst every frame is over budget however slowly the
    /// test runs, so the drop, tell and flood rules are driven by the instants
    /// the test passes in, not by the wall clock.
    fn spent_after(burst: u32, flood_close: Duration) -> Budget {
        let mut budget = Budget::new(1, burst, flood_close);
        let hourly = Quota::with_period(LONG)
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::new(burst).expect("burst of at least 1"));
        budget.limiter = RateLimiter::direct_with_clock(hourly, MonotonicClock);
        budget
    }

    fn name(v: &Verdict) -> &'static str {
        match v {
            Verdict::Pass => "pass",
            Verdict::Drop(true) => "drop, tell",
            Verdict::Drop(false) => "drop",
            Verdict::Close => "close",
        }
    }

    /// The verdicts for frames at `t0 + ms` for each of `at`.
    fn verdicts(budget: &mut Budget, t0: Instant, at: &[u64]) -> Vec<&'static str> {
        at.iter()
            .map(|&ms| name(&budget.check(t0 + Duration::from_millis(ms))))
            .collect()
    }

    #[test]
    fn a_burst_passes_and_so_does_a_client_within_the_rate() {
        let t0 = Instant::now();
        let mut budget = Budget::new(10, 20, LONG);
        assert_eq!(verdicts(&mut budget, t0, &[0; 20]), ["pass"; 20]);
        // 1000 a second with no burst to spare: a frame every 2 ms always has room.
        let mut budget = Budget::new(1000, 1, LONG);
        for i in 0..20 {
            std::thread::sleep(Duration::from_millis(2));
            assert_eq!(name(&budget.check(Instant::now())), "pass", "frame {i}");
        }
    }

    #[test]
    fn the_frame_after_the_burst_is_dropped_with_a_tell() {
        // One frame a second: the fourth, right after a burst of three, is over
        // (the checks take microseconds, a refill a second).
        let t0 = Instant::now();
        let mut budget = Budget::new(1, 3, LONG);
        assert_eq!(
            verdicts(&mut budget, t0, &[0, 0, 0, 0]),
            ["pass", "pass", "pass", "drop, tell"]
        );
    }

    #[test]
    fn over_budget_frames_are_dropped_with_at_most_one_tell_a_second() {
        let t0 = Instant::now();
        let mut budget = spent_after(1, LONG);
        assert_eq!(verdicts(&mut budget, t0, &[0]), ["pass"]);
        // A frame every 100 ms for 2.5 s: a tell at the first drop, then one when a
        // full second has passed since the last tell, never more.
        let at: Vec<u64> = (1..=25).map(|i| i * 100).collect();
        let got = verdicts(&mut budget, t0, &at);
        let tells: Vec<u64> = at
            .iter()
            .zip(&got)
            .filter(|(_, v)| **v == "drop, tell")
            .map(|(ms, _)| *ms)
            .collect();
        assert_eq!(tells, [100, 1100, 2100], "{got:?}");
        assert!(got.iter().all(|v| v.starts_with("drop")), "{got:?}");
    }

    #[test]
    fn a_client_flooding_for_flood_close_is_closed() {
        let t0 = Instant::now();
        let mut budget = spent_after(1, Duration::from_secs(2));
        assert_eq!(verdicts(&mut budget, t0, &[0]), ["pass"]);
        // Dropped frames from 0.5 s on, every half second: the flood began at 0.5 s,
        // so it is closed at 2.5 s and not a moment before.
        assert_eq!(
            verdicts(&mut budget, t0, &[500, 1000, 1500, 2000, 2499, 2500]),
            ["drop, tell", "drop", "drop, tell", "drop", "drop", "close"]
        );
    }

    #[test]
    fn pauses_do_not_reset_a_flood() {
        let t0 = Instant::now();
        let mut budget = spent_after(1, Duration::from_secs(10));
        assert_eq!(verdicts(&mut budget, t0, &[0]), ["pass"]);
        // WIRE.md v1.1's evasion: flood for 9 s, pause for 1.2 s, again and again.
        let at: Vec<u64> = (0..3u64)
            .flat_map(|round| (0..90).map(move |i| 1 + round * 10_200 + i * 100))
            .collect();
        let got = verdicts(&mut budget, t0, &at);
        let closed_at = at
            .iter()
            .zip(&got)
            .find(|(_, v)| **v == "close")
            .map(|(ms, _)| *ms)
            .expect("a flood with pauses is closed");
        // The 11th second with drops (counting from the first) is in the second round.
        assert!(
            (10_200..12_300).contains(&closed_at),
            "closed at {closed_at} ms"
        );
    }

    #[test]
    fn seconds_of_flooding_older_than_a_minute_no_longer_count() {
        let t0 = Instant::now();
        let mut budget = spent_after(1, Duration::from_secs(10));
        assert_eq!(verdicts(&mut budget, t0, &[0]), ["pass"]);
        // Eight seconds of flooding, then eight more a minute later: never more
        // than ten seconds with drops in any 60 s.
        let at: Vec<u64> = (0..8u64)
            .map(|s| 1 + s * 1000)
            .chain((0..8u64).map(|s| 70_001 + s * 1000))
            .collect();
        let got = verdicts(&mut budget, t0, &at);
        assert!(got.iter().all(|v| v.starts_with("drop")), "{got:?}");
        // …but three more seconds now make eleven within the minute.
        assert_eq!(
            verdicts(&mut budget, t0, &[78_001, 79_001, 80_001]),
            ["drop, tell", "drop, tell", "close"]
        );
    }

    #[test]
    fn a_gap_of_exactly_a_second_continues_a_flood() {
        let t0 = Instant::now();
        let mut budget = spent_after(1, Duration::from_secs(2));
        assert_eq!(verdicts(&mut budget, t0, &[0]), ["pass"]);
        assert_eq!(
            verdicts(&mut budget, t0, &[100, 1100, 2099, 2100]),
            ["drop, tell", "drop, tell", "drop", "close"]
        );
    }
}
