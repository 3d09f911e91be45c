//! A connection's frame budget (WIRE.md §3): frames over the rate are dropped
//! with at most one `rate_limited` error a second, and a client that keeps
//! flooding for `JUNO_FLOOD_CLOSE_SECS` is closed with 1008.

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
    /// Start of the current run of dropped frames, and the last drop.
    flood_since: Option<Instant>,
    last_drop: Option<Instant>,
    flood_close: Duration,
}

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
            flood_since: None,
            last_drop: None,
            flood_close,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.limiter.check().is_ok() {
            return Verdict::Pass;
        }
        // A gap of more than a second between drops ends a flood.
        if self
            .last_drop
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(1))
        {
            self.flood_since = Some(now);
        }
        self.last_drop = Some(now);
        if self
            .flood_since
            .is_some_and(|t| now.duration_since(t) >= self.flood_close)
        {
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
}
