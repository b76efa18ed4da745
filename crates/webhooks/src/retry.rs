use std::time::Duration;

/// When to try a failed delivery again: exponential backoff with jitter, and a
/// receiver's `Retry-After` honoured when it asks for more patience than that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// The delay after the first failed attempt; it doubles after each further one.
    pub base: Duration,
    /// The longest computed delay.
    pub max_delay: Duration,
    /// The longest `Retry-After` obeyed; a receiver cannot park a message for longer.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

/// The jitter spreads retries by up to this fraction either way, so that the
/// deliveries that failed together during an outage do not all come back at once.
const JITTER_SPREAD: f64 = 0.2;

impl RetryPolicy {
    /// The wait before the next attempt, or `None` when `attempts_made` used them all.
    ///
    /// `jitter` is a random number in `[0, 1)` from the caller, which keeps this pure:
    /// 0.5 gives the plain delay, 0 gives 20% less and values near 1 up to 20% more,
    /// never above `max_delay`.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if attempts_made >= self.max_attempts {
            return None;
        }
        let computed = self.backoff(attempts_made, jitter);
        let asked = retry_after.map(|d| d.min(self.max_retry_after));
        Some(asked.map_or(computed, |asked| asked.max(computed)))
    }

    /// `base * 2^(n-1)` with jitter, capped at `max_delay`.
    fn backoff(&self, attempts_made: u32, jitter: f64) -> Duration {
        let doublings = attempts_made.saturating_sub(1).min(62);
        let plain = self.base.as_secs_f64() * (1u64 << doublings) as f64;
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let factor = 1.0 + JITTER_SPREAD * (2.0 * jitter - 1.0);
        let secs = (plain * factor).min(self.max_delay.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MID: f64 = 0.5;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn doubles_from_the_base_and_caps() {
        let policy = RetryPolicy::default();
        let delays: Vec<_> = (1..8).map(|n| policy.next_delay(n, None, MID)).collect();
        let expected: Vec<_> = [5, 10, 20, 40, 80, 160, 320]
            .into_iter()
            .map(secs)
            .collect();
        assert_eq!(delays, expected);
        let long = RetryPolicy {
            max_attempts: 100,
            ..policy
        };
        assert_eq!(long.next_delay(11, None, MID), secs(3600));
        assert_eq!(long.next_delay(99, None, 0.99), secs(3600));
    }

    #[test]
    fn stops_after_max_attempts() {
        let policy = RetryPolicy::default();
        assert!(policy.next_delay(7, None, MID).is_some());
        assert_eq!(policy.next_delay(8, None, MID), None);
        assert_eq!(policy.next_delay(9, secs(1), MID), None);
        let once = RetryPolicy {
            max_attempts: 1,
            ..policy
        };
        assert_eq!(once.next_delay(1, None, MID), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.next_delay(3, None, 0.0), secs(16));
        let high = policy.next_delay(3, None, 0.999_999).unwrap();
        assert!(
            high > Duration::from_millis(23_990) && high < secs(24).unwrap(),
            "{high:?}"
        );
        for i in 0..100 {
            let d = policy.next_delay(2, None, i as f64 / 100.0).unwrap();
            assert!(d >= secs(8).unwrap() && d < secs(12).unwrap(), "{d:?}");
        }
        assert_eq!(policy.next_delay(1, None, f64::NAN), secs(5));
    }

    #[test]
    fn retry_after_wins_only_when_longer_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.next_delay(1, secs(2), MID), secs(5));
        assert_eq!(policy.next_delay(1, secs(30), MID), secs(30));
        assert_eq!(policy.next_delay(1, secs(86_400), MID), secs(3600));
        let short = RetryPolicy {
            max_retry_after: Duration::from_secs(60),
            ..policy
        };
        assert_eq!(short.next_delay(1, secs(600), MID), secs(60));
        assert_eq!(short.next_delay(6, secs(600), MID), secs(160));
    }
}
