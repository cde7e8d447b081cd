//! [`AnnounceError`]: why an announcement was refused or did not play.

use std::time::Duration;

use crate::base::{CameraId, ErrorKind, ResultExt};
use crate::codec::clip::ClipError;
use crate::media::{Claim, HubError};

/// Why an announcement was refused or did not play.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// The request is malformed (empty text, bad language, bad URL, volume out
    /// of range, ...).
    #[error("{0}")]
    BadRequest(String),
    /// The audio's media type is not one we take (HTTP 415).
    #[error("unsupported audio type {mime:?}; send audio/wav, audio/mpeg, audio/ogg or audio/opus")]
    UnsupportedType {
        /// The type as given.
        mime: String,
    },
    /// The audio could not be decoded (HTTP 415).
    #[error("cannot decode the audio")]
    Undecodable(#[source] ClipError),
    /// The audio file is larger than allowed (HTTP 413).
    #[error("the audio is larger than {limit} bytes")]
    TooLarge {
        /// The largest file allowed.
        limit: usize,
    },
    /// The clip plays longer than allowed (HTTP 413).
    #[error("the clip is longer than {}s", .max.as_secs())]
    TooLong {
        /// The longest clip allowed.
        max: Duration,
    },
    /// Fetching the audio URL failed.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// The URL, without query string.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The text-to-speech engine failed or is missing.
    #[error("text to speech: {0}")]
    Tts(String),
    /// Someone else holds the camera's talk floor.
    #[error("{holder} is talking on camera {camera}")]
    FloorTaken {
        /// The camera (hub key).
        camera: CameraId,
        /// The talker holding the floor: a WHEP session id or `announce-<n>`.
        holder: String,
        /// How the holder holds it.
        by: Claim,
    },
    /// The camera's live session takes no talkback.
    #[error("camera {camera} cannot talk: {reason}")]
    CannotTalk {
        /// The camera (hub key).
        camera: CameraId,
        /// Why.
        reason: String,
    },
    /// The live session did not come up.
    #[error("the live session of camera {camera} did not start")]
    NoSession {
        /// The camera (hub key).
        camera: CameraId,
        /// The hub's error.
        #[source]
        source: HubError,
    },
    /// Encoding the clip failed.
    #[error("encoding the clip")]
    Encode(#[source] ClipError),
    /// A blocking step panicked or was cancelled.
    #[error("{0} did not finish")]
    Task(&'static str),
    /// The daemon is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

impl AnnounceError {
    /// The error for a clip that failed to decode: too long, or not audio.
    pub(crate) fn from_decode(e: ClipError) -> Self {
        match e {
            ClipError::TooLong { max } => AnnounceError::TooLong { max },
            ClipError::Timeout(_) | ClipError::Init(_) | ClipError::Build { .. } => {
                AnnounceError::Encode(e)
            }
            e => AnnounceError::Undecodable(e),
        }
    }

    /// The HTTP status: the kind's, except 413 and 415 for bad files.
    pub fn http_status(&self) -> u16 {
        match self {
            AnnounceError::UnsupportedType { .. } | AnnounceError::Undecodable(_) => 415,
            AnnounceError::TooLarge { .. } | AnnounceError::TooLong { .. } => 413,
            e => e.kind().http_status(),
        }
    }
}

impl ResultExt for AnnounceError {
    fn kind(&self) -> ErrorKind {
        match self {
            AnnounceError::BadRequest(_)
            | AnnounceError::UnsupportedType { .. }
            | AnnounceError::Undecodable(_)
            | AnnounceError::TooLarge { .. }
            | AnnounceError::TooLong { .. } => ErrorKind::InvalidArgument,
            AnnounceError::Fetch { .. } | AnnounceError::Tts(_) => ErrorKind::Unavailable,
            AnnounceError::FloorTaken { .. } | AnnounceError::CannotTalk { .. } => {
                ErrorKind::FailedPrecondition
            }
            AnnounceError::NoSession { source, .. } => source.kind(),
            AnnounceError::Encode(_) | AnnounceError::Task(_) => ErrorKind::Internal,
            AnnounceError::ShuttingDown => ErrorKind::Cancelled,
        }
    }
}
