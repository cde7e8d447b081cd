//! Snapshots: triggered by motion/ding, a per-camera interval (battery-aware),
//! the HA button or a live-stream frame. At most one fetch per camera runs at a
//! time; live frames from [`super::SnapshotSource`] are preferred while a stream
//! is active.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::bridge::{Bridge, Done, RING_CALL_TIMEOUT};
use super::state::{SnapshotState, Trigger};
use super::stream::{SnapshotSource, StreamState};
use crate::base::CameraId;
use crate::base::error::chain;
use crate::snapshot::LiveSnapshots;

/// Live snapshots come from the hub's cached key frame (decoded by
/// `snapshot`); `None` makes the bridge fall back to a Ring snapshot.
#[async_trait::async_trait]
impl SnapshotSource for LiveSnapshots {
    async fn latest_jpeg(&self, camera_id: CameraId) -> Option<Bytes> {
        match self.jpeg(camera_id).await {
            Ok(j) => j,
            Err(e) => {
                // The bridge falls back to a Ring snapshot and logs its own failures.
                debug!(camera = %camera_id, err = %chain(&e), "live snapshot failed");
                None
            }
        }
    }
}

impl Bridge {
    pub(super) fn snapshot_interval(&self, cam: &crate::ring::Camera) -> Option<Duration> {
        let i = if cam.on_battery {
            self.opts.snapshot_interval_battery
        } else {
            self.opts.snapshot_interval_wired
        };
        (!i.is_zero()).then_some(i)
    }

    pub(super) fn trigger_snapshot(&mut self, camera_id: CameraId, trigger: Trigger) {
        let Some(entry) = self.cameras.iter().find(|e| e.camera.id == camera_id) else {
            return;
        };
        let caps = entry.camera.capabilities();
        let Some(st) = self.cams.get_mut(&camera_id) else {
            return;
        };
        if !caps.snapshot {
            debug!(
                camera = %camera_id,
                trigger = trigger.as_str(),
                "snapshot skipped: camera offline or motion detection off"
            );
            return;
        }
        if st.snapshot_inflight {
            debug!(
                camera = %camera_id,
                trigger = trigger.as_str(),
                "snapshot already in flight"
            );
            return;
        }
        let now = Instant::now();
        if trigger == Trigger::OnDemand {
            if st
                .last_on_demand
                .is_some_and(|t| now.duration_since(t) < self.opts.snapshot_min_gap)
            {
                debug!(camera = %camera_id, "on-demand snapshot rate-limited");
                return;
            }
            st.last_on_demand = Some(now);
        }
        st.snapshot_inflight = true;
        let streaming = st.stream.state == StreamState::Active;
        let ring = self.deps.ring.clone();
        let source = self.deps.snapshots.clone();
        self.tasks.spawn(async move {
            let result = fetch_snapshot(ring, source, camera_id, streaming).await;
            Done::Snapshot {
                camera_id,
                trigger,
                result,
            }
        });
    }
    pub(super) fn snapshot_done(
        &mut self,
        camera_id: CameraId,
        trigger: Trigger,
        result: Result<Bytes, String>,
    ) {
        let Some(st) = self.cams.get_mut(&camera_id) else {
            return;
        };
        st.snapshot_inflight = false;
        match result {
            Ok(jpeg) => {
                st.snapshot_failures = 0;
                st.snapshot = Some(SnapshotState::new(jpeg, trigger));
                self.publish_state(camera_id);
            }
            Err(e) => {
                st.snapshot_failures += 1;
                let n = st.snapshot_failures;
                if n == 1 || n.is_multiple_of(10) || trigger == Trigger::OnDemand {
                    warn!(camera = %camera_id, trigger = trigger.as_str(), failures = n, err = %e, "snapshot failed");
                }
            }
        }
    }
}

async fn fetch_snapshot(
    ring: Arc<dyn crate::ring::RingApi>,
    source: Option<Arc<dyn super::SnapshotSource>>,
    camera_id: CameraId,
    streaming: bool,
) -> Result<Bytes, String> {
    if streaming
        && let Some(src) = source
        && let Some(jpeg) = src.latest_jpeg(camera_id).await
    {
        return Ok(jpeg);
    }
    match tokio::time::timeout(RING_CALL_TIMEOUT, ring.snapshot(camera_id)).await {
        Ok(Ok(s)) if !s.jpeg.is_empty() => Ok(s.jpeg),
        Ok(Ok(_)) => Err("Ring returned an empty snapshot".into()),
        Ok(Err(e)) => Err(chain(&e)),
        Err(_) => Err("Ring did not answer in time".into()),
    }
}
