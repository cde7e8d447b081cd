//! [`HubStreams`]: the MQTT `stream` switch's view of the media hub. Starting
//! holds the stream through [`Keeper`] for a bounded time; the status is the
//! hub's own per-camera `watch` (no copy, no forwarding task).

use std::time::Duration;

use tokio::sync::watch;

use super::stream::{LiveStats, StreamControl, StreamEndpoints, StreamError, StreamStatus};
use crate::base::{CameraId, ErrorKind};
use crate::cameras::{Directory, Urls};
use crate::media::{Hub, Keeper};

/// Streams for MQTT, backed by the hub.
pub struct HubStreams {
    hub: Hub,
    keeper: Keeper,
    directory: Directory,
    urls: Urls,
}

impl HubStreams {
    /// A stream control over `hub`, holding streams with `keeper`, for the
    /// cameras of `directory`; endpoints are built from `urls`.
    pub fn new(hub: Hub, keeper: Keeper, directory: Directory, urls: Urls) -> Self {
        HubStreams {
            hub,
            keeper,
            directory,
            urls,
        }
    }
}

#[async_trait::async_trait]
impl StreamControl for HubStreams {
    async fn start(&self, camera_id: CameraId, max_duration: Duration) -> Result<(), StreamError> {
        let cam = self.directory.get(camera_id).ok_or_else(|| {
            StreamError::new(ErrorKind::NotFound, format!("no camera {camera_id}"))
        })?;
        let caps = cam.camera.capabilities();
        if !caps.live_view {
            return Err(StreamError::new(
                ErrorKind::FailedPrecondition,
                caps.reason
                    .unwrap_or_else(|| "live view unavailable".into()),
            ));
        }
        self.keeper.start(camera_id, max_duration);
        Ok(())
    }

    async fn stop(&self, camera_id: CameraId) -> Result<(), StreamError> {
        self.keeper.stop(camera_id);
        Ok(())
    }

    fn status(&self, camera_id: CameraId) -> watch::Receiver<StreamStatus> {
        self.hub.status(camera_id)
    }

    fn stats(&self, camera_id: CameraId) -> Option<LiveStats> {
        Some(self.hub.stream(camera_id).stats())
    }

    fn endpoints(&self, camera_id: CameraId) -> StreamEndpoints {
        let Some(e) = self.directory.get(camera_id) else {
            return StreamEndpoints::default();
        };
        let urls = self.urls.get();
        StreamEndpoints {
            rtsp_url: urls.rtsp(&e.slug),
            whep_url: Some(urls.whep(&e.slug)),
        }
    }
}
