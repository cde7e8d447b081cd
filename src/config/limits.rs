//! `[limits]`: resource limits against hostile or broken clients on every
//! surface (HTTP, WHEP, RTSP, MQTT). Each limit has a default that a normal home never
//! reaches; `docs/CONFIG.md` ("Limits") explains what each one protects, and
//! `docs/design/0007-threat-model.md` which attack it answers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::base::limits::MQTT_MAX_INCOMING_PACKET;

/// `[limits]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// How long an HTTP client may take to send a request's headers (from the
    /// first byte, and between keep-alive requests). Slow-header clients are
    /// disconnected. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub http_header_timeout: Duration,
    /// An HTTP connection with no bytes read or written this long is closed.
    /// The console's log stream sends a keep-alive every 15 s, so values below
    /// that cut it (it reconnects). Default 60 s.
    #[serde(with = "humantime_serde")]
    pub http_idle_timeout: Duration,
    /// Largest HTTP request body in bytes (REST JSON, WHEP offers). Default 1 MiB.
    pub http_max_body_bytes: usize,
    /// Largest WHEP SDP offer in bytes. Browsers send 5-20 KB. Default 64 KiB.
    pub whep_max_offer_bytes: usize,
    /// Most lines in a WHEP offer or trickle fragment. Default 2000.
    pub whep_max_offer_lines: usize,
    /// Largest MQTT message we act on, in bytes; larger ones are dropped with a
    /// warning (the connection stays up). Default 64 KiB.
    pub mqtt_max_message_bytes: usize,
    /// Wrong RTSP passwords a client address may send per minute before it is
    /// refused for a while (the right password from other clients still works).
    /// Default 10.
    pub rtsp_auth_failures_per_minute: usize,
    /// RTSP clients that may wait at once for one camera to start; further
    /// DESCRIBEs get 503 at once. Default 8.
    pub rtsp_describe_waiters: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            http_header_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(60),
            http_max_body_bytes: 1024 * 1024,
            whep_max_offer_bytes: 64 * 1024,
            whep_max_offer_lines: 2000,
            mqtt_max_message_bytes: 64 * 1024,
            rtsp_auth_failures_per_minute: 10,
            rtsp_describe_waiters: 8,
        }
    }
}

impl LimitsConfig {
    /// Range checks (called by `Config::validate`).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if self.http_header_timeout < Duration::from_secs(1) {
            return invalid("limits.http_header_timeout", "must be at least 1s");
        }
        if self.http_idle_timeout < Duration::from_secs(1) {
            return invalid("limits.http_idle_timeout", "must be at least 1s");
        }
        if self.http_max_body_bytes < 16 * 1024 {
            return invalid("limits.http_max_body_bytes", "must be at least 16384");
        }
        if self.whep_max_offer_bytes < 4096 || self.whep_max_offer_bytes > self.http_max_body_bytes
        {
            return invalid(
                "limits.whep_max_offer_bytes",
                "must be at least 4096 and at most limits.http_max_body_bytes",
            );
        }
        if self.whep_max_offer_lines < 50 {
            return invalid("limits.whep_max_offer_lines", "must be at least 50");
        }
        if self.mqtt_max_message_bytes < 1024
            || self.mqtt_max_message_bytes > MQTT_MAX_INCOMING_PACKET
        {
            return invalid(
                "limits.mqtt_max_message_bytes",
                &format!("must be between 1024 and {MQTT_MAX_INCOMING_PACKET}"),
            );
        }
        if self.rtsp_auth_failures_per_minute == 0 {
            return invalid("limits.rtsp_auth_failures_per_minute", "must be at least 1");
        }
        if self.rtsp_describe_waiters == 0 {
            return invalid("limits.rtsp_describe_waiters", "must be at least 1");
        }
        Ok(())
    }
}
