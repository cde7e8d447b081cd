//! Retry policy of the Ring client: bounded, jittered exponential backoff for
//! transport errors and 5xx, and the limits on honouring `Retry-After`
//! (ring-api.md §1.5, §1.6).
//!
//! Pure data and arithmetic; the waiting itself happens in `ring::request`.

use std::time::Duration;

use rand::Rng;

/// How the client retries. Tests shorten every delay.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per call for transport errors, timeouts, 5xx and short 429s
    /// (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, ±50 % jitter.
    pub base_delay: Duration,
    /// Upper bound of one backoff delay.
    pub max_delay: Duration,
    /// Added to every `Retry-After` (Ring's clients wait one extra second).
    pub retry_after_extra: Duration,
    /// Wait used when a 429 on session creation has no `Retry-After` (dgreif: 200 s).
    pub session_retry_after_default: Duration,
    /// Wait used when a 429 on any other call has no `Retry-After`.
    pub retry_after_default: Duration,
    /// Longest `Retry-After` an API call waits in place. A longer one fails the
    /// call at once with `RateLimited` (and, for session creation, no session
    /// is attempted again before the deadline), so callers are never blocked
    /// for minutes.
    pub max_rate_limit_wait: Duration,
    /// Re-create the session after this long (ring-api.md §1.5: 12 h).
    pub session_max_age: Duration,
    /// Renew the access token this long before `expires_in` ends (60 s).
    pub token_renew_margin: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(20),
            retry_after_extra: Duration::from_secs(1),
            session_retry_after_default: Duration::from_secs(200),
            retry_after_default: Duration::from_secs(5),
            max_rate_limit_wait: Duration::from_secs(30),
            session_max_age: Duration::from_secs(12 * 3600),
            token_renew_margin: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1` (`attempt` counts from 0):
    /// `base_delay * 2^attempt`, capped at `max_delay`, jittered to 50–150 %.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let factor = rand::rng().random_range(0.5..1.5);
        exp.mul_f64(factor).min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for _ in 0..50 {
            let d0 = p.backoff(0);
            assert!(
                d0 >= Duration::from_secs(1) && d0 <= Duration::from_secs(3),
                "{d0:?}"
            );
            assert!(p.backoff(10) <= p.max_delay);
            assert!(p.backoff(40) <= p.max_delay);
        }
    }
}
