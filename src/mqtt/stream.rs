//! The seams between MQTT and live media: [`StreamControl`] (the `stream`
//! switch) and [`SnapshotSource`] (JPEGs from a running stream).
//!
//! The daemon implements them over the media hub ([`super::HubStreams`] and
//! `snapshot::LiveSnapshots`); tests script them. MQTT only calls them and
//! never decodes media. The stream status is the hub's own
//! [`StreamStatus`]: its `state`, `last_error` and `video_codec` become the
//! switch's `status`, `reason` and `video_codec` attributes; its [`LiveStats`]
//! the `stats` attribute.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;

use crate::base::{CameraId, ErrorKind, ResultExt};

/// Life of one camera's live stream (the `status` attribute, the same words as
/// ring-mqtt) and its status: the hub's own types.
pub use crate::media::{LiveStats, StreamState, StreamStatus};

/// Where viewers can watch a camera (published as `stream` attributes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamEndpoints {
    /// e.g. `rtsp://host:8554/front-door`.
    pub rtsp_url: Option<String>,
    /// WHEP endpoint for browsers.
    pub whep_url: Option<String>,
}

/// Why a stream could not be started or stopped.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{reason}")]
pub struct StreamError {
    kind: ErrorKind,
    reason: String,
}

impl StreamError {
    /// An error of `kind` with a reason shown to the user as-is.
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        StreamError {
            kind,
            reason: reason.into(),
        }
    }

    /// The reason text.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl ResultExt for StreamError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Starts and stops live streams on behalf of the `stream` switch.
///
/// `start` keeps a stream up (as if a viewer watched) for at most
/// `max_duration`, after which the implementation stops it and reports
/// [`StreamState::Inactive`]. Calls must not block for long: return once the
/// request is accepted and report progress through [`StreamControl::status`].
#[async_trait::async_trait]
pub trait StreamControl: Send + Sync {
    /// Starts (or extends) a stream of `camera_id` for at most `max_duration`.
    async fn start(&self, camera_id: CameraId, max_duration: Duration) -> Result<(), StreamError>;
    /// Releases the switch's hold on the stream (viewers may keep it running).
    async fn stop(&self, camera_id: CameraId) -> Result<(), StreamError>;
    /// Watches the stream state of `camera_id` (the receiver stays valid as long
    /// as the implementation lives).
    fn status(&self, camera_id: CameraId) -> watch::Receiver<StreamStatus>;
    /// Where viewers can watch `camera_id`.
    fn endpoints(&self, _camera_id: CameraId) -> StreamEndpoints {
        StreamEndpoints::default()
    }
    /// Statistics of `camera_id`'s stream (the `stats` attribute while active).
    fn stats(&self, _camera_id: CameraId) -> Option<LiveStats> {
        None
    }
}

/// Provides JPEG stills of running live streams. Decoding is the media layer's
/// job; returning `None` makes MQTT fall back to a Ring snapshot.
#[async_trait::async_trait]
pub trait SnapshotSource: Send + Sync {
    /// A recent JPEG of `camera_id`'s live stream, if one is running.
    async fn latest_jpeg(&self, camera_id: CameraId) -> Option<Bytes>;
}
