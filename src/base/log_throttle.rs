//! [`LogThrottle`]: keeps a flood of identical warnings (5,000 MQTT commands for
//! an unknown device, a client hammering a limit) from drowning the log and the
//! console's log buffer. The first occurrence of a key is logged; later ones in
//! the same window are only counted, and the next occurrence after the window
//! logs once more with how many were left out ("… 4,999 more in 60 s").
//! [`LogThrottle::flush`] reports counts of keys that went quiet.
//!
//! The map is bounded: at most [`MAX_KEYS`] keys (plus one overflow key) are tracked (expired ones are
//! evicted first; when every slot is busy new keys are counted under one
//! overflow key), so an attacker choosing keys cannot grow it. Time is
//! `tokio::time::Instant`, so tests run on paused time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Most keys tracked at once.
pub const MAX_KEYS: usize = 4096;
/// Key that counts occurrences of new keys while the map is full.
const OVERFLOW_KEY: &str = "(other keys)";

/// Whether to log an occurrence now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it. `suppressed` occurrences of the same key were left out since the
    /// last logged one (0 for the first).
    Log {
        /// Occurrences not logged since the last logged one.
        suppressed: u64,
    },
    /// Counted, not logged.
    Skip,
}

#[derive(Debug)]
struct Slot {
    /// When the current window began (the last logged occurrence).
    since: Instant,
    suppressed: u64,
}

/// Per-key log rate limiter; cheap to share behind an `Arc` or in a static.
#[derive(Debug)]
pub struct LogThrottle {
    window: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl LogThrottle {
    /// At most one logged occurrence per key and `window`.
    pub fn new(window: Duration) -> Self {
        LogThrottle {
            window,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The window length (for messages such as "… N more in 60 s").
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records one occurrence of `key` and says whether to log it.
    pub fn check(&self, key: &str) -> Verdict {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if !slots.contains_key(key) && slots.len() >= MAX_KEYS {
            let window = self.window;
            slots.retain(|_, s| now.duration_since(s.since) < window);
        }
        let key = if slots.contains_key(key) || slots.len() < MAX_KEYS {
            key
        } else {
            OVERFLOW_KEY
        };
        match slots.get_mut(key) {
            None => {
                slots.insert(
                    key.to_owned(),
                    Slot {
                        since: now,
                        suppressed: 0,
                    },
                );
                Verdict::Log { suppressed: 0 }
            }
            Some(s) if now.duration_since(s.since) >= self.window => {
                let suppressed = std::mem::take(&mut s.suppressed);
                s.since = now;
                Verdict::Log { suppressed }
            }
            Some(s) => {
                s.suppressed = s.suppressed.saturating_add(1);
                Verdict::Skip
            }
        }
    }

    /// Keys whose window ended with occurrences left out: `(key, count)`. They
    /// are reset, so each count is reported once. Call it from a periodic task.
    pub fn flush(&self) -> Vec<(String, u64)> {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        slots.retain(|k, s| {
            if now.duration_since(s.since) < self.window {
                return true;
            }
            if s.suppressed > 0 {
                out.push((k.clone(), s.suppressed));
            }
            false
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn first_logged_rest_counted_then_summarised() {
        let t = LogThrottle::new(Duration::from_secs(60));
        assert_eq!(t.check("a"), Verdict::Log { suppressed: 0 });
        for _ in 0..4999 {
            assert_eq!(t.check("a"), Verdict::Skip);
        }
        assert_eq!(
            t.check("b"),
            Verdict::Log { suppressed: 0 },
            "keys are independent"
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(t.check("a"), Verdict::Log { suppressed: 4999 });
        assert_eq!(t.check("a"), Verdict::Skip);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(t.flush(), vec![("a".to_owned(), 1)]);
        assert!(t.flush().is_empty(), "reported once");
        assert_eq!(t.check("a"), Verdict::Log { suppressed: 0 });
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_whatever_the_keys() {
        let t = LogThrottle::new(Duration::from_secs(60));
        for i in 0..MAX_KEYS + 100 {
            t.check(&format!("k{i}"));
        }
        let len = t.slots.lock().unwrap().len();
        assert!(
            len <= MAX_KEYS + 1,
            "{len} (the keys plus the overflow key)"
        );
        // New keys while full are counted under the overflow key.
        assert_eq!(t.check("late"), Verdict::Skip);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(t.check("late"), Verdict::Log { suppressed: 0 });
    }
}
