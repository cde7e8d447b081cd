//! Jittered exponential backoff for re-opening failed live sessions, so a broken
//! camera never causes a tight loop.

use std::time::Duration;

use rand::Rng as _;

/// Doubling delay between `min` and `max`, each delay jittered by ±25 %.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(10));
        let max = max.max(min);
        Backoff {
            min,
            max,
            current: min,
        }
    }

    /// The next delay. Errors that retrying will not fix jump straight to `max`.
    pub(crate) fn next_delay(&mut self, retryable: bool) -> Duration {
        let base = if retryable { self.current } else { self.max };
        self.current = (self.current * 2).min(self.max);
        base.mul_f64(rand::rng().random_range(0.75..=1.25))
    }

    /// Called after a healthy session: the next failure waits `min` again.
    pub(crate) fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let d: Vec<f64> = (0..6).map(|_| b.next_delay(true).as_secs_f64()).collect();
        for (got, want) in d.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            assert!(*got >= want * 0.75 && *got <= want * 1.25, "{d:?}");
        }
        b.reset();
        assert!(b.next_delay(true) <= Duration::from_millis(1250));
        assert!(b.next_delay(false) >= Duration::from_secs(6));
    }
}
