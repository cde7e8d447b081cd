//! The push audit behind the push watchdog: which events polling found that
//! push has not delivered (yet).
//!
//! [`EventHub::publish`](super::EventHub::publish) feeds it: an event first
//! delivered by polling is *unconfirmed* until push delivers the same ding id
//! (as a duplicate the hub drops); one still unconfirmed after the grace period
//! is a push miss. Push that has gone silent while polling keeps finding events
//! shows up exactly so: every event polling finds becomes a miss. The watchdog
//! in `push::supervisor` reads it. Pure bookkeeping: no I/O, no clock other
//! than Tokio's `Instant`.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::EventSource;

/// Unconfirmed events remembered at most (the oldest are forgotten first).
const MAX_UNCONFIRMED: usize = 256;

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct PushAudit {
    /// Ding id → when polling delivered it.
    unconfirmed: HashMap<String, Instant>,
}

impl PushAudit {
    /// Records an event published by `source`; `fresh` is whether the hub
    /// delivered it (not a duplicate).
    pub(super) fn record(&mut self, ding_id: &str, source: EventSource, fresh: bool) {
        match source {
            EventSource::Push => {
                self.unconfirmed.remove(ding_id);
            }
            EventSource::Poll if fresh => {
                if self.unconfirmed.len() >= MAX_UNCONFIRMED
                    && let Some(oldest) = self
                        .unconfirmed
                        .iter()
                        .min_by_key(|(_, t)| **t)
                        .map(|(k, _)| k.clone())
                {
                    self.unconfirmed.remove(&oldest);
                }
                self.unconfirmed.insert(ding_id.to_owned(), Instant::now());
            }
            EventSource::Poll => {}
        }
    }

    /// Removes and returns the ding ids polling delivered at least `grace`
    /// ago that push never delivered.
    pub(super) fn take_misses(&mut self, grace: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut missed: Vec<String> = self
            .unconfirmed
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= grace)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &missed {
            self.unconfirmed.remove(k);
        }
        missed.sort();
        missed
    }

    /// Forgets what is unconfirmed: each push connection is judged only by
    /// events polling finds while it is up.
    pub(super) fn clear(&mut self) {
        self.unconfirmed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn misses_and_confirmations() {
        let mut a = PushAudit::default();
        a.record("1", EventSource::Poll, true);
        a.record("2", EventSource::Poll, true);
        a.record("3", EventSource::Poll, false); // a duplicate: push had it
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(a.take_misses(Duration::from_secs(10)).is_empty());
        // Push delivers "2" late: confirmed, not a miss.
        a.record("2", EventSource::Push, false);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(a.take_misses(Duration::from_secs(10)), vec!["1".to_owned()]);
        assert!(a.take_misses(Duration::from_secs(10)).is_empty());
        a.record("4", EventSource::Poll, true);
        a.clear();
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(a.take_misses(Duration::from_secs(10)).is_empty());
    }
}
