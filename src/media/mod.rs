//! The per-camera media hub: the one place where live frames from a producer
//! (`ring::live`, or a test fake) meet every consumer (RTSP, WebRTC, snapshots).
//!
//! - Frames are depacketized access units ([`Frame`]): H.264 or H.265 (per stream,
//!   [`VideoParams::codec`]) Annex-B AUs at 90 kHz,
//!   Opus packets at 48 kHz. Never raw RTP; each consumer packetizes for itself.
//! - A [`Hub`] owns one [`CameraStream`] per camera id. A viewer takes a [`Lease`]:
//!   the first lease opens a live session through the [`LiveOpener`] seam; after the
//!   last lease is dropped the source is closed once [`HubOptions::linger`] passes.
//! - [`CameraStream::subscribe`] yields the cached GOP (from its key frame, audio
//!   included), then live frames; slow subscribers get [`RecvError::Lagged`] and
//!   resume at a key frame. The producer is never blocked.
//! - Sessions are renewed before their cap and recovered after failures with
//!   jittered backoff; output timestamps never go backwards. A cap shorter than
//!   the source declares is learned from the first early end ([`LearnedCaps`]).
//! - [`StreamStatus`] (a `watch`) tells REST/MQTT whether a camera is live;
//!   [`CameraStream::stats`] says how well ([`LiveStats`], `stats.rs`).
//! - [`Floors`]: one talker per camera at a time (WHEP talkback, announcements).
//!
//! This module is pure Rust + Tokio: it must not depend on GStreamer or webrtc.
//! See `docs/design/0001-media-hub.md`.

mod backoff;
mod caps;
mod error;
mod floor;
mod frame;
pub mod h264;
pub mod h265;
mod hub;
mod keeper;
pub mod mp4;
pub mod nal_pay;
mod source;
mod stats;
mod stream;
mod subscriber;
mod supervisor;
pub mod testutil;
mod timeline;
mod video_rtp;

#[cfg(test)]
mod tests;

pub use caps::{LearnedCaps, MIN_LEARNED_CAP};
pub use error::{HubError, RecvError, SourceError};
pub use floor::{Claim, Floors};
pub use frame::{AUDIO_CLOCK_RATE, Frame, MediaKind, VIDEO_CLOCK_RATE, VideoCodec, VideoParams};
pub use hub::{CameraStream, CountedReader, Hub, Lease};
pub use keeper::Keeper;
pub use source::{
    LiveOpener, LiveSource, TalkbackCodec, TalkbackError, TalkbackPacket, TalkbackSender,
};
pub use stats::{
    LiveStats, RATE_WINDOW, Rate, SeqGaps, TransportStats, TransportTotals, ViewerCounts,
    ViewerKind, ViewerStats,
};
pub use stream::HubOptions;
pub use subscriber::Subscriber;
pub use video_rtp::{VideoDepacketizer, payload_has_key_nal};

use crate::base::ErrorKind;

/// Whether a camera's live source is running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// No viewer; no live session.
    #[default]
    Inactive,
    /// A live session is being opened, or waits for its first key frame.
    Activating,
    /// Frames are flowing.
    Active,
    /// The last attempt failed; the hub retries with backoff while viewers remain.
    Failed,
}

impl StreamState {
    /// `inactive`, `activating`, `active` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Inactive => "inactive",
            StreamState::Activating => "activating",
            StreamState::Active => "active",
            StreamState::Failed => "failed",
        }
    }

    /// Whether the switch shows ON (activating or active).
    pub fn is_on(self) -> bool {
        matches!(self, StreamState::Activating | StreamState::Active)
    }
}

/// Snapshot of a camera stream's status, published through a `watch` channel.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamStatus {
    /// Current state.
    pub state: StreamState,
    /// The most recent error since the stream was last active, for display.
    pub last_error: Option<String>,
    /// The kind of `last_error`.
    pub error_kind: Option<ErrorKind>,
    /// The session cap learned from an early end (ms), when shorter than the
    /// source's declared cap; renewals happen ahead of it.
    pub learned_cap_ms: Option<u64>,
    /// The video codec of the camera's current or most recent live session (what
    /// Ring sent), `None` before its first described key frame.
    pub video_codec: Option<VideoCodec>,
}

impl StreamStatus {
    /// A `failed` status with a reason (for a stream that could not even be
    /// asked for, e.g. by an output's switch).
    pub fn failed(reason: impl Into<String>) -> Self {
        StreamStatus {
            state: StreamState::Failed,
            last_error: Some(reason.into()),
            ..StreamStatus::default()
        }
    }
}
