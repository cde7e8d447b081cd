//! [`Keeper`]: holds a camera's stream open on request for a bounded time.
//!
//! Used by the REST `live/start` endpoint and the MQTT stream switch: each holds
//! one [`Lease`] per camera until its deadline passes or it is stopped, so a
//! forgotten switch never streams (and drains a battery) forever.
//!
//! Each hold's expiry timer is a task on the keeper's [`TaskTracker`] under a
//! child of the keeper's token; [`Keeper::shutdown`] releases every hold and
//! joins the timers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, info_span};

use super::{Hub, Lease, ViewerKind};

use crate::base::CameraId;

struct Held {
    _lease: Lease,
    until: Instant,
    cancel: CancellationToken,
}

/// Keeps streams open on request, each for a bounded duration. Cheap to clone.
#[derive(Clone)]
pub struct Keeper {
    hub: Hub,
    held: Arc<Mutex<HashMap<CameraId, Held>>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Keeper {
    /// A keeper over `hub`; `cancel` (a child of the daemon's token) ends every
    /// hold's timer. Call [`Keeper::shutdown`] to release the holds and join.
    pub fn new(hub: Hub, cancel: CancellationToken) -> Keeper {
        Keeper {
            hub,
            held: Arc::default(),
            cancel,
            tracker: TaskTracker::new(),
        }
    }

    /// Releases every hold and waits for the hold timers to end. Holds started
    /// afterwards are released at once.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.stop_all();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Keeps `camera` streaming for `duration` from now (extends an existing hold).
    /// Must be called inside a Tokio runtime.
    pub fn start(&self, camera: CameraId, duration: Duration) {
        if self.cancel.is_cancelled() {
            return;
        }
        let until = Instant::now() + duration;
        let cancel = self.cancel.child_token();
        let lease = self.hub.stream(camera).lease_as(ViewerKind::Hold);
        let old = self.lock().insert(
            camera,
            Held {
                _lease: lease,
                until,
                cancel: cancel.clone(),
            },
        );
        if let Some(old) = old {
            old.cancel.cancel();
        }
        let held = self.held.clone();
        let span = info_span!("stream_hold", camera = %camera);
        let timer = async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep_until(until) => {
                    let mut map = held.lock().unwrap_or_else(|p| p.into_inner());
                    if map.get(&camera).is_some_and(|h| h.until == until) {
                        map.remove(&camera);
                        tracing::info!("stream hold expired");
                    }
                }
            }
        };
        self.tracker.spawn(timer.instrument(span));
    }

    /// Releases the hold on `camera`; returns whether there was one. The stream
    /// itself stops after the hub's linger if nobody else watches.
    pub fn stop(&self, camera: CameraId) -> bool {
        match self.lock().remove(&camera) {
            Some(h) => {
                h.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Releases every hold; returns the cameras released.
    pub fn stop_all(&self) -> Vec<CameraId> {
        let drained: Vec<_> = self.lock().drain().collect();
        drained
            .into_iter()
            .map(|(cam, h)| {
                h.cancel.cancel();
                cam
            })
            .collect()
    }

    /// Time left on `camera`'s hold, if held.
    pub fn remaining(&self, camera: CameraId) -> Option<Duration> {
        self.lock()
            .get(&camera)
            .map(|h| h.until.saturating_duration_since(Instant::now()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CameraId, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAM1: CameraId = CameraId::new(1);
    const CAM2: CameraId = CameraId::new(2);
    use crate::media::testutil::{FakeOpener, FakeSpec};
    use crate::media::{HubOptions, StreamState};

    /// A hub over a fake source and a keeper of its holds.
    fn hub_and_keeper() -> (Arc<FakeOpener>, Hub, Keeper) {
        let opener = FakeOpener::new(FakeSpec::default());
        let hub = Hub::new(
            opener.clone(),
            HubOptions::default(),
            CancellationToken::new(),
        );
        let keeper = Keeper::new(hub.clone(), CancellationToken::new());
        (opener, hub, keeper)
    }

    #[tokio::test(start_paused = true)]
    async fn hold_expires_and_stream_stops_after_linger() {
        let (opener, hub, keeper) = hub_and_keeper();
        keeper.start(CAM1, Duration::from_secs(30));
        let mut st = hub.status(CAM1);
        st.wait_for(|s| s.state == StreamState::Active)
            .await
            .unwrap();
        assert!(keeper.remaining(CAM1).is_some());
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert!(keeper.remaining(CAM1).is_none());
        st.wait_for(|s| s.state == StreamState::Inactive)
            .await
            .unwrap();
        assert_eq!(opener.opens(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_releases_hold() {
        let (_, hub, keeper) = hub_and_keeper();
        keeper.start(CAM1, Duration::from_secs(600));
        keeper.start(CAM2, Duration::from_secs(600));
        assert!(keeper.stop(CAM1));
        assert!(!keeper.stop(CAM1));
        assert_eq!(keeper.stop_all(), vec![CAM2]);
        let mut st = hub.status(CAM2);
        st.wait_for(|s| s.state == StreamState::Inactive)
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_releases_holds_and_joins_their_timers() {
        let (_, hub, keeper) = hub_and_keeper();
        keeper.start(CAM1, Duration::from_secs(600));
        let mut st = hub.status(CAM1);
        st.wait_for(|s| s.state == StreamState::Active)
            .await
            .unwrap();
        // Paused time: without the join a 600 s timer would keep `wait` pending.
        tokio::time::timeout(Duration::from_secs(1), keeper.shutdown())
            .await
            .expect("hold timers joined");
        assert!(keeper.tracker.is_empty(), "a hold timer is still running");
        assert!(keeper.remaining(CAM1).is_none());
        assert_eq!(hub.stream(CAM1).viewers(), 0);
        keeper.start(CAM1, Duration::from_secs(600));
        assert!(keeper.remaining(CAM1).is_none(), "a hold after shutdown");
    }
}
