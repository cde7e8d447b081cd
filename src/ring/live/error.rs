//! The typed error of a Ring live call, and the `close` reasons Ring sends.
//!
//! Follows the crate's library error shape (retina style): an opaque, cheaply
//! clonable [`Error`] carrying the camera (`doorbot_id`) and, once known, the
//! Ring session id; the details live in [`ErrorInner`]. The kind
//! ([`crate::base::ErrorKind`]) alone decides whether a caller retries.

use std::sync::Arc;
use std::time::Duration;

use crate::base::{CameraId, ErrorKind, ResultExt};

/// Ring's `close` reason codes (ring-api.md §6.3).
pub mod close_code {
    /// Normal close (also used by the simulator at the session cap).
    pub const NORMAL: u32 = 0;
    /// Authentication failed: invalid or expired ticket, unknown session.
    pub const AUTH_FAILED: u32 = 5;
    /// The server got no `ping` in time ("Timeout waiting for ping").
    pub const PING_TIMEOUT: u32 = 6;
}

/// The `reason` of a `close` message, as sent by Ring.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CloseReason {
    /// Numeric code, see [`close_code`].
    pub code: u32,
    /// Human text, e.g. "Timeout waiting for ping". May be empty.
    #[serde(default)]
    pub text: String,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.text.is_empty() {
            write!(f, "code {}", self.code)
        } else {
            write!(f, "code {}: {}", self.code, self.text)
        }
    }
}

/// Error from a live call. Cheap to clone; the same error is returned by
/// every later call on an ended [`super::LiveCall`].
#[derive(Clone, Debug, thiserror::Error)]
#[error("live call to camera {camera}{}: {inner}", .session.as_deref().map(|s| format!(" (session {s})")).unwrap_or_default())]
pub struct Error {
    camera: CameraId,
    session: Option<String>,
    inner: Arc<ErrorInner>,
}

/// The details of an [`Error`].
#[derive(Debug, thiserror::Error)]
pub enum ErrorInner {
    /// The signalling URL given by the caller is unusable.
    #[error("bad signalling URL: {0}")]
    BadUrl(String),
    /// Opening the signalling websocket failed (TCP, TLS, HTTP upgrade).
    /// The URL is not included: it carries the ticket.
    #[error("connecting to signalling host {host}: {source}")]
    Connect {
        /// Host of the signalling URL.
        host: String,
        /// The websocket error.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// Reading or writing the signalling websocket failed mid-call.
    #[error("signalling websocket: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// The signalling socket ended without a `close` message.
    #[error("signalling socket ended without a close message")]
    SignallingLost,
    /// Ring sent `close` with a non-zero reason.
    #[error("Ring closed the session ({0})")]
    ServerClosed(CloseReason),
    /// Ring sent something we cannot use (bad JSON, bad SDP, missing field).
    #[error("unexpected {method} message from Ring: {detail}")]
    Protocol {
        /// The message's `method`.
        method: String,
        /// What was wrong.
        detail: String,
    },
    /// The local WebRTC stack failed.
    #[error("WebRTC {context}: {source}")]
    WebRtc {
        /// What we were doing.
        context: &'static str,
        /// The WebRTC stack's (str0m's) error.
        #[source]
        source: str0m::RtcError,
    },
    /// No local UDP socket for ICE could be opened.
    #[error("opening the call's UDP sockets: {0}")]
    Sockets(#[source] std::io::Error),
    /// ICE/DTLS failed or the peer connection closed under us.
    #[error("peer connection {0}")]
    PeerFailed(&'static str),
    /// A step took too long.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we were waiting for.
        what: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// Talkback was used before the audio codec was negotiated.
    #[error("talkback is not ready (audio not negotiated yet)")]
    TalkNotReady,
    /// The call was already hung up by us.
    #[error("the call was hung up")]
    HungUp,
    /// Cancelled (shutdown) before the call was set up.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn new(camera: CameraId, session: Option<String>, inner: ErrorInner) -> Self {
        Error {
            camera,
            session,
            inner: Arc::new(inner),
        }
    }

    /// The details.
    pub fn inner(&self) -> &ErrorInner {
        &self.inner
    }

    /// The camera (`doorbot_id`) of the call.
    pub fn camera(&self) -> CameraId {
        self.camera
    }

    /// The Ring session id, if the session had been created.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The reason Ring gave, if Ring closed the session.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &*self.inner {
            ErrorInner::ServerClosed(r) => Some(r),
            _ => None,
        }
    }
}

impl ResultExt for Error {
    fn kind(&self) -> ErrorKind {
        match &*self.inner {
            ErrorInner::BadUrl(_) => ErrorKind::InvalidArgument,
            ErrorInner::Connect { source, .. } => match &**source {
                tokio_tungstenite::tungstenite::Error::Http(r)
                    if matches!(r.status().as_u16(), 401 | 403) =>
                {
                    ErrorKind::Unauthenticated
                }
                _ => ErrorKind::Unavailable,
            },
            ErrorInner::WebSocket(_) | ErrorInner::SignallingLost => ErrorKind::Unavailable,
            ErrorInner::ServerClosed(r) if r.code == close_code::AUTH_FAILED => {
                ErrorKind::Unauthenticated
            }
            ErrorInner::ServerClosed(_) => ErrorKind::Unavailable,
            ErrorInner::Protocol { .. } | ErrorInner::PeerFailed(_) => ErrorKind::Unavailable,
            ErrorInner::WebRtc { .. } | ErrorInner::Sockets(_) => ErrorKind::Internal,
            ErrorInner::Timeout { .. } => ErrorKind::DeadlineExceeded,
            ErrorInner::TalkNotReady | ErrorInner::HungUp => ErrorKind::FailedPrecondition,
            ErrorInner::Cancelled => ErrorKind::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_display() {
        let e = Error::new(
            CameraId::new(7),
            Some("s1".into()),
            ErrorInner::ServerClosed(CloseReason {
                code: 5,
                text: "invalid or expired token".into(),
            }),
        );
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(
            e.to_string(),
            "live call to camera 7 (session s1): Ring closed the session (code 5: invalid or expired token)"
        );
        assert_eq!(e.close_reason().map(|r| r.code), Some(5));
        let e = Error::new(
            CameraId::new(7),
            None,
            ErrorInner::ServerClosed(CloseReason {
                code: 6,
                text: String::new(),
            }),
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(
            e.to_string(),
            "live call to camera 7: Ring closed the session (code 6)"
        );
    }
}
