//! [`HubStreams`]: the MQTT `stream` switch's view of the media hub. Starting
//! holds the stream through [`Keeper`] for a bounded time; status mirrors the
//! hub's per-camera status.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::base::ErrorKind;
use crate::cameras::{Directory, Urls};
use crate::media::{self, Hub, Keeper};
use crate::mqtt::{StreamControl, StreamEndpoints, StreamError, StreamStatus};

/// Streams for MQTT, backed by the hub.
pub struct HubStreams {
    hub: Hub,
    keeper: Keeper,
    directory: Directory,
    urls: Urls,
    watches: Mutex<HashMap<u64, watch::Receiver<StreamStatus>>>,
}

impl HubStreams {
    /// A stream control over `hub`, holding streams with `keeper`.
    pub fn new(hub: Hub, keeper: Keeper, directory: Directory, urls: Urls) -> Self {
        HubStreams {
            hub,
            keeper,
            directory,
            urls,
            watches: Mutex::default(),
        }
    }
}

fn convert(s: &media::StreamStatus) -> StreamStatus {
    StreamStatus {
        state: s.state,
        reason: s.last_error.clone(),
    }
}

#[async_trait::async_trait]
impl StreamControl for HubStreams {
    async fn start(&self, camera_id: u64, max_duration: Duration) -> Result<(), StreamError> {
        let snap = self.directory.snapshot();
        let cam = snap
            .cameras
            .iter()
            .find(|e| e.camera.id == camera_id)
            .ok_or_else(|| {
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
        self.keeper.start(&camera_id.to_string(), max_duration);
        Ok(())
    }

    async fn stop(&self, camera_id: u64) -> Result<(), StreamError> {
        self.keeper.stop(&camera_id.to_string());
        Ok(())
    }

    fn status(&self, camera_id: u64) -> watch::Receiver<StreamStatus> {
        let mut map = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = map.get(&camera_id) {
            return rx.clone();
        }
        let mut src = self.hub.status(&camera_id.to_string());
        let (tx, rx) = watch::channel(convert(&src.borrow()));
        tokio::spawn(async move {
            while src.changed().await.is_ok() {
                let next = convert(&src.borrow_and_update());
                if tx.send(next).is_err() {
                    break;
                }
            }
        });
        map.insert(camera_id, rx.clone());
        rx
    }

    fn endpoints(&self, camera_id: u64) -> StreamEndpoints {
        let snap = self.directory.snapshot();
        let Some(e) = snap.cameras.iter().find(|e| e.camera.id == camera_id) else {
            return StreamEndpoints::default();
        };
        let urls = self.urls.get();
        StreamEndpoints {
            rtsp_url: urls.rtsp(&e.slug),
            whep_url: Some(urls.whep(&e.slug)),
        }
    }
}
