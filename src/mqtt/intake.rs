//! What the bridge accepts from the broker, before it reads a message:
//!
//! - Messages above [`super::MqttOptions::max_message_bytes`] are dropped with a
//!   warning. (The transport itself takes up to [`MAX_INCOMING_PACKET`]: rumqttc
//!   drops the *connection* on a larger packet, and a retained one would then
//!   come back on every reconnect.)
//! - Commands carrying the retain flag are ignored: a retained `ON` on a
//!   command topic would otherwise start a stream (or a siren) at every
//!   restart, for as long as it stays on the broker.
//! - Warnings about bad commands go through a [`LogThrottle`]: the first is
//!   logged, repeats within a minute are counted and summarised, so a flood of
//!   commands cannot drown the log or the console's log buffer.

use std::time::Duration;

use tracing::{info, warn};

use crate::base::log_throttle::{LogThrottle, Verdict};

/// Largest packet the MQTT transport takes without dropping the connection.
pub use crate::base::limits::MQTT_MAX_INCOMING_PACKET as MAX_INCOMING_PACKET;

/// How often a repeated warning is logged at most.
const WARN_WINDOW: Duration = Duration::from_secs(60);

/// The bridge's intake filter and throttled warnings.
#[derive(Debug)]
pub(super) struct Intake {
    max_bytes: usize,
    log: LogThrottle,
}

impl Intake {
    /// Drops messages above `max_bytes`.
    pub(super) fn new(max_bytes: usize) -> Self {
        Intake {
            max_bytes,
            log: LogThrottle::new(WARN_WINDOW),
        }
    }

    /// Whether to act on a message of `len` bytes on `topic`. `command` says the
    /// topic is one of our command topics, where retained messages are ignored.
    pub(super) fn admit(&self, topic: &str, len: usize, retain: bool, command: bool) -> bool {
        if len > self.max_bytes {
            self.warn("oversized", |suppressed| {
                warn!(topic = %topic, bytes = len, max = self.max_bytes, suppressed,
                    "MQTT message above limits.mqtt_max_message_bytes dropped");
            });
            return false;
        }
        if command && retain {
            if let Verdict::Log { suppressed } = self.log.check(&format!("retained {topic}")) {
                info!(topic = %topic, suppressed,
                    "retained MQTT command ignored (commands must not be retained; clear it on the broker)");
            }
            return false;
        }
        true
    }

    /// Runs `log` (given how many were left out) the first time `key` comes up
    /// in a window; later ones only count.
    pub(super) fn warn(&self, key: &str, log: impl FnOnce(u64)) {
        if let Verdict::Log { suppressed } = self.log.check(key) {
            log(suppressed);
        }
    }

    /// Logs how many warnings were left out for keys that went quiet. Called
    /// periodically by the bridge.
    pub(super) fn flush(&self) {
        for (key, count) in self.log.flush() {
            warn!(
                key = %key,
                suppressed = count,
                "… {count} more like this in {} s",
                WARN_WINDOW.as_secs()
            );
        }
    }

    /// How often [`Intake::flush`] should run.
    pub(super) fn flush_period() -> Duration {
        WARN_WINDOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn size_and_retain() {
        let i = Intake::new(1024);
        assert!(i.admit("ring/x/light/command", 10, false, true));
        assert!(!i.admit("ring/x/light/command", 2000, false, true));
        assert!(!i.admit("ring/x/stream/command", 2, true, true));
        assert!(
            i.admit("homeassistant/status", 6, true, false),
            "HA birth may be retained"
        );
        let mut logged = 0;
        for _ in 0..5000 {
            i.warn("unknown camera", |_| logged += 1);
        }
        assert_eq!(logged, 1);
        tokio::time::advance(WARN_WINDOW + Duration::from_secs(1)).await;
        let mut summary = None;
        i.warn("unknown camera", |n| summary = Some(n));
        assert_eq!(summary, Some(4999));
    }
}
