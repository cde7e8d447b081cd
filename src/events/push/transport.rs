//! The push transport seam: where raw FCM-style messages come from.
//!
//! A [`PushTransport`] knows how to obtain the token Ring must send pushes to
//! and how to open one connection ([`PushConnection`]) that yields
//! [`PushItem`]s: data messages exactly as FCM delivers Ring's payloads (a
//! `data` map of string → string whose values are JSON documents), and
//! heartbeats. Implementations: [`super::fcm::FcmTransport`] (Google's
//! FCM/MCS) and [`super::sim::SimTransport`] (the simulator's push socket).
//!
//! Transports never parse Ring payloads, never call Ring and never touch the
//! [`crate::events::EventHub`]; that is the shared path in `super::supervisor`.

use std::collections::BTreeMap;

use crate::base::{ErrorKind, ResultExt};

/// One FCM data message: its `data` map (Ring puts a JSON document in each
/// value: `data`, `analytics`, `android_config`, `img`, or `gcmData`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawPush {
    /// FCM `data`: key → string value. A value that was not a JSON string on
    /// the wire (an object, say) is kept as its JSON text.
    pub data: BTreeMap<String, String>,
    /// FCM `from` (Ring's sender id), when given.
    pub from: Option<String>,
    /// MCS persistent id (FCM) or the simulator's message id, when given.
    pub message_id: Option<String>,
}

impl RawPush {
    /// Builds a message from an FCM JSON body `{"data":{..}, "from", "fcmMessageId"}`
    /// (the decrypted body of an MCS data message, or a simulator frame).
    /// Non-string `data` values are kept as their JSON text.
    pub fn from_fcm_body(body: &serde_json::Value) -> Option<RawPush> {
        let data = body.get("data")?.as_object()?;
        let data = data
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect();
        let text = |k: &str| {
            body.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Some(RawPush {
            data,
            from: text("from"),
            message_id: text("fcmMessageId"),
        })
    }
}

/// What a connection yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushItem {
    /// A data message.
    Message(RawPush),
    /// The connection is alive (MCS heartbeat ping, websocket ping).
    Heartbeat,
}

/// One open push connection.
#[async_trait::async_trait]
pub trait PushConnection: Send {
    /// The next item; `Ok(None)` when the peer closed the connection cleanly.
    /// Answers heartbeats itself where the protocol wants an answer. Must be
    /// cancel-safe enough to be dropped mid-await (the supervisor races it
    /// against shutdown and drops the connection).
    async fn next(&mut self) -> Result<Option<PushItem>, PushError>;
}

/// Where pushes come from.
#[async_trait::async_trait]
pub trait PushTransport: Send + Sync {
    /// A short name for logs (`fcm`, `simulator`).
    fn name(&self) -> &'static str;

    /// The token Ring must send pushes to. May register with the push service
    /// and persist credentials on first use; later calls return the saved
    /// token. The supervisor registers it with Ring before [`connect`].
    ///
    /// [`connect`]: PushTransport::connect
    async fn token(&self) -> Result<String, PushError>;

    /// Opens one connection (after [`PushTransport::token`] succeeded).
    async fn connect(&self) -> Result<Box<dyn PushConnection>, PushError>;

    /// Forgets the credentials (e.g. after the push service rejected them), so
    /// the next [`PushTransport::token`] registers afresh. Default: nothing.
    async fn reset(&self) -> Result<(), PushError> {
        Ok(())
    }
}

/// Errors of the push path.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// This build has no support for the transport.
    #[error("{transport} push is not available in this build: {reason}")]
    NotCompiled {
        /// The transport.
        transport: &'static str,
        /// What is missing (e.g. "built without the `fcm` cargo feature").
        reason: &'static str,
    },
    /// The simulator's push socket could not be opened.
    #[error("connecting to the push socket {url}: {source}")]
    Connect {
        /// Socket URL (the token is never part of it in logs: see `SimTransport`).
        url: String,
        /// The websocket error.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The push peer refused the connection (the simulator: token not
    /// registered with Ring).
    #[error("the push socket {url} refused the connection: HTTP {status}")]
    Refused {
        /// Socket URL without the token.
        url: String,
        /// HTTP status of the refused upgrade.
        status: u16,
    },
    /// The connection failed while reading.
    #[error("push connection lost: {source}")]
    Socket {
        /// The websocket error.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// A frame the transport does not understand.
    #[error("unexpected push frame: {detail}")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// The credentials file could not be read or written.
    #[error("push credentials: {0}")]
    Credentials(#[source] crate::ring::Error),
    /// The credentials file exists but cannot be understood. It is left in
    /// place; delete it to register afresh.
    #[error("push credentials file {path} is corrupt: {detail}")]
    CredentialsCorrupt {
        /// File path.
        path: std::path::PathBuf,
        /// What was wrong (never contains keys).
        detail: String,
    },
    /// FCM (Google) failed at `stage`.
    #[cfg(feature = "fcm")]
    #[error("FCM {stage}: {source}")]
    Fcm {
        /// `register`, `checkin`, `connect`, `read`, `heartbeat ack`.
        stage: &'static str,
        /// The crate's error.
        #[source]
        source: fcm_push_listener::Error,
    },
    /// Telling Ring about the token, or subscribing a camera, failed.
    #[error("registering for pushes with Ring: {0}")]
    Register(#[source] crate::ring::Error),
    /// A step took too long.
    #[error("{what} timed out")]
    Timeout {
        /// The step.
        what: &'static str,
    },
    /// Shut down.
    #[error("cancelled")]
    Cancelled,
}

impl ResultExt for PushError {
    fn kind(&self) -> ErrorKind {
        match self {
            PushError::NotCompiled { .. } => ErrorKind::FailedPrecondition,
            PushError::Connect { .. } | PushError::Socket { .. } => ErrorKind::Unavailable,
            PushError::Refused { status, .. } => match *status {
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::PermissionDenied,
                s if s >= 500 => ErrorKind::Unavailable,
                _ => ErrorKind::FailedPrecondition,
            },
            PushError::Protocol { .. } => ErrorKind::Internal,
            PushError::Credentials(_) => ErrorKind::Internal,
            PushError::CredentialsCorrupt { .. } => ErrorKind::FailedPrecondition,
            #[cfg(feature = "fcm")]
            PushError::Fcm { source, .. } => match source {
                fcm_push_listener::Error::DependencyRejection(..) => ErrorKind::PermissionDenied,
                _ => ErrorKind::Unavailable,
            },
            PushError::Register(e) => e.kind(),
            PushError::Timeout { .. } => ErrorKind::DeadlineExceeded,
            PushError::Cancelled => ErrorKind::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcm_body_keeps_string_values_and_stringifies_objects() {
        let body = serde_json::json!({
            "data": {"version": "2.0.0", "data": "{\"device\":{\"id\":1}}", "video": {}},
            "from": "876313859327",
            "priority": "high",
            "fcmMessageId": "m-1"
        });
        let raw = RawPush::from_fcm_body(&body).expect("has data");
        assert_eq!(raw.data["version"], "2.0.0");
        assert_eq!(raw.data["data"], "{\"device\":{\"id\":1}}");
        assert_eq!(raw.data["video"], "{}");
        assert_eq!(raw.from.as_deref(), Some("876313859327"));
        assert_eq!(raw.message_id.as_deref(), Some("m-1"));
        assert!(RawPush::from_fcm_body(&serde_json::json!({"from": "x"})).is_none());
    }
}
