//! [`WhepError`]: what [`super::WhepServer`] calls return. Every variant carries its
//! context (camera, session) and maps to one [`ErrorKind`], which alone decides the
//! HTTP status at the web edge.

use crate::base::{CameraId, ErrorKind, ResultExt};

/// An error of a WHEP session operation.
#[derive(Debug, thiserror::Error)]
pub enum WhepError {
    /// The offer is not valid SDP (or not an offer at all).
    #[error("bad SDP offer: {reason}")]
    BadOffer {
        /// What is wrong, for the client.
        reason: String,
    },
    /// The offer or trickle fragment exceeds a size or shape limit
    /// ([`super::SdpLimits`]); refused before parsing.
    #[error("SDP too large: {reason}")]
    TooLarge {
        /// Which limit, for the client.
        reason: String,
    },
    /// The offer is valid SDP but asks for nothing we can serve (no H.264
    /// packetization-mode=1 video, ...).
    #[error("unsupported offer: {reason}")]
    UnsupportedOffer {
        /// What is missing.
        reason: String,
    },
    /// A trickle-ICE fragment (PATCH body) could not be parsed or applied.
    #[error("bad ICE fragment for session {session}: {reason}")]
    BadCandidate {
        /// Session id.
        session: String,
        /// What is wrong.
        reason: String,
    },
    /// The PATCH carries new ICE credentials: an ICE restart, which we do not do.
    #[error("session {session}: ICE restarts are not supported; start a new session")]
    IceRestart {
        /// Session id.
        session: String,
    },
    /// `If-Match` did not match the session's entity tag.
    #[error("session {session}: If-Match {got:?} does not match the session's ETag")]
    EtagMismatch {
        /// Session id.
        session: String,
        /// The `If-Match` value the client sent.
        got: String,
    },
    /// No such session (never created, deleted, or ended), or not on this camera.
    #[error("no WHEP session {session} on camera {camera}")]
    NoSuchSession {
        /// Camera id (hub key).
        camera: CameraId,
        /// Session id.
        session: String,
    },
    /// Another session holds the talk floor of this camera.
    #[error("someone else is talking on {camera}")]
    FloorTaken {
        /// Camera id (hub key).
        camera: CameraId,
        /// The session that holds the floor.
        holder: String,
    },
    /// The session's offer had no audio the viewer sends, so it cannot talk.
    #[error("session {session} sends no audio (offer audio as sendrecv to talk)")]
    NoUplinkAudio {
        /// Session id.
        session: String,
    },
    /// The camera streams a codec the viewer's offer does not have (H.265 to a
    /// browser without an H.265 decoder, see `docs/design/0009-h265.md`); we never
    /// transcode.
    #[error(
        "camera {camera} streams {codec} and this browser's offer has no {codec}, so it cannot play it over WebRTC; \
         watch it over RTSP, use a browser that decodes {codec} (recent Chrome, Safari), \
         or set stream.h265 = false (RING_H265=false) so Ring sends H.264"
    )]
    CodecUnavailable {
        /// Camera id (hub key).
        camera: CameraId,
        /// The stream's codec, e.g. `H.265`.
        codec: &'static str,
    },
    /// The server already serves [`super::WhepOptions::max_sessions`] viewers.
    #[error("too many WebRTC viewers ({max}); close one and retry")]
    TooManySessions {
        /// The configured limit.
        max: usize,
    },
    /// The daemon is shutting down; no new sessions.
    #[error("WebRTC server is shutting down")]
    ShuttingDown,
    /// No UDP socket could be bound for the session's ICE (the port range is
    /// used up, or no local address to gather on).
    #[error("no UDP port for the WebRTC session (webrtc.min_port..webrtc.max_port)")]
    Transport {
        /// The last bind error.
        #[source]
        source: std::io::Error,
    },
}

impl ResultExt for WhepError {
    fn kind(&self) -> ErrorKind {
        match self {
            WhepError::BadOffer { .. }
            | WhepError::TooLarge { .. }
            | WhepError::UnsupportedOffer { .. }
            | WhepError::BadCandidate { .. }
            | WhepError::IceRestart { .. } => ErrorKind::InvalidArgument,
            WhepError::EtagMismatch { .. }
            | WhepError::FloorTaken { .. }
            | WhepError::NoUplinkAudio { .. }
            | WhepError::CodecUnavailable { .. } => ErrorKind::FailedPrecondition,
            WhepError::NoSuchSession { .. } => ErrorKind::NotFound,
            WhepError::TooManySessions { .. } => ErrorKind::ResourceExhausted,
            WhepError::ShuttingDown => ErrorKind::Cancelled,
            WhepError::Transport { .. } => ErrorKind::ResourceExhausted,
        }
    }
}
