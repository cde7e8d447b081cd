//! Live snapshots: JPEG stills decoded from a running live stream's cached key
//! frame, so MQTT (whose `SnapshotSource` is implemented over [`LiveSnapshots`])
//! need not ask Ring while a camera streams (battery cameras cannot snapshot
//! then; ring-api.md §5).
//!
//! [`LiveSnapshots`] reads the media hub only: it never takes a lease, so it
//! never starts a stream (while it decodes, the stream's statistics count it as
//! a `snapshot` viewer). It answers `None` unless the stream is
//! [`crate::media::StreamState::Active`] and a key frame is cached, and it
//! decodes each key frame (by hub sequence number) at most once per camera.
//! The decoding itself ([`jpeg_from_keyframe`]) uses GStreamer on the
//! blocking pool; this module must not touch GStreamer anywhere else.

mod decode;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt as _;
use tokio::sync::Mutex;

pub use decode::{
    DECODE_TIMEOUT, decode_blocking, decode_video_blocking, jpeg_from_keyframe,
    jpeg_from_video_keyframe,
};

use crate::base::{CameraId, ErrorKind, ResultExt};
use crate::media::{Frame, Hub, StreamState, ViewerKind};

/// Errors of snapshot decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The access unit holds no IDR slice.
    #[error("not an H.264 key frame ({bytes} bytes)")]
    NotAKeyframe {
        /// Size of the access unit.
        bytes: usize,
    },
    /// GStreamer failed at `stage`.
    #[error("GStreamer {stage}: {detail}")]
    Gst {
        /// What was being done.
        stage: &'static str,
        /// GStreamer's message.
        detail: String,
    },
    /// The pipeline ended without producing a picture (undecodable frame).
    #[error("the key frame decoded to no picture")]
    NoPicture,
    /// No picture within the time limit.
    #[error("decoding took longer than {waited:?}")]
    Timeout {
        /// The limit.
        waited: Duration,
    },
    /// The blocking task was aborted (runtime shutting down).
    #[error("decoding was aborted")]
    Aborted,
}

impl ResultExt for SnapshotError {
    fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotAKeyframe { .. } => ErrorKind::InvalidArgument,
            SnapshotError::Gst { .. } | SnapshotError::NoPicture => ErrorKind::Internal,
            SnapshotError::Timeout { .. } => ErrorKind::DeadlineExceeded,
            SnapshotError::Aborted => ErrorKind::Cancelled,
        }
    }
}

/// The last JPEG made for one camera.
struct Cached {
    /// Hub sequence number of the key frame it was decoded from.
    seq: u64,
    jpeg: Bytes,
}

/// One camera's cache slot; its async mutex also serializes that camera's decodes.
type Slot = Arc<Mutex<Option<Cached>>>;

/// JPEGs of running live streams, for [`crate::mqtt::SnapshotSource`].
/// Cheap to clone. Hub stream ids are Ring's numeric camera ids as strings.
#[derive(Clone)]
pub struct LiveSnapshots {
    hub: Hub,
    /// Per camera.
    cache: Arc<Mutex<HashMap<CameraId, Slot>>>,
}

impl std::fmt::Debug for LiveSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSnapshots").finish_non_exhaustive()
    }
}

impl LiveSnapshots {
    /// Snapshots from `hub`'s streams.
    pub fn new(hub: Hub) -> Self {
        LiveSnapshots {
            hub,
            cache: Arc::default(),
        }
    }

    /// The cached key frame of `camera_id` if its stream is active; never
    /// creates a stream, takes a lease or waits for frames.
    pub fn current_keyframe(&self, camera_id: CameraId) -> Option<Arc<Frame>> {
        if !self.hub.cameras().contains(&camera_id) {
            return None;
        }
        let stream = self.hub.stream(camera_id);
        if stream.status().borrow().state != StreamState::Active || stream.video_params().is_none()
        {
            return None;
        }
        // The subscriber's backlog starts with the cached key frame: ready at once.
        let first = stream.subscribe().recv().now_or_never()?.ok()?;
        first.is_video_keyframe().then_some(first)
    }

    /// A JPEG of `camera_id`'s current key frame (decoded once per key frame).
    /// `Ok(None)` when the camera is not streaming.
    pub async fn jpeg(&self, camera_id: CameraId) -> Result<Option<Bytes>, SnapshotError> {
        let Some(frame) = self.current_keyframe(camera_id) else {
            return Ok(None);
        };
        let _viewer = self
            .hub
            .stream(camera_id)
            .count_reader(ViewerKind::Snapshot);
        let slot = self
            .cache
            .lock()
            .await
            .entry(camera_id)
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.seq == frame.seq) {
            return Ok(Some(c.jpeg.clone()));
        }
        let codec = self
            .hub
            .stream(camera_id)
            .video_params()
            .map(|p| p.codec)
            .unwrap_or_default();
        let jpeg = jpeg_from_video_keyframe(codec, &frame.data).await?;
        *slot = Some(Cached {
            seq: frame.seq,
            jpeg: jpeg.clone(),
        });
        Ok(Some(jpeg))
    }
}
