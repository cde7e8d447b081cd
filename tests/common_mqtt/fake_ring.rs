//! A scripted `RingApi` holding the simulator's six cameras (ids
//! 10001..10006, docs/SIMULATOR.md) that records every call, with injectable
//! history and failures.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ring_bridge::base::CameraId;
use ring_bridge::ring::{
    self, AuthState, Camera, HistoryEvent, HistoryPage, HistoryQuery, Location, RingApi, Snapshot,
};
use tokio::sync::watch;

use super::{CABIN, HOME, jpeg};

/// A recorded Ring call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    SetLight(CameraId, bool),
    SetSiren(CameraId, bool),
    SetMotionDetection(CameraId, bool),
    Snapshot(CameraId),
    History(CameraId),
}

/// The simulator's camera set as a scripted `RingApi`.
pub struct FakeRing {
    pub cameras: Mutex<Vec<Camera>>,
    pub calls: Mutex<Vec<Call>>,
    pub history: Mutex<HashMap<CameraId, Vec<HistoryEvent>>>,
    /// Cameras whose history call fails.
    pub failing_history: Mutex<HashSet<CameraId>>,
    /// Cameras whose history call hangs forever.
    pub hanging_history: Mutex<HashSet<CameraId>>,
    pub fail_commands: Mutex<bool>,
    pub snapshot_tag: Mutex<u8>,
    auth: watch::Sender<AuthState>,
    /// Bumped after every recorded call, so tests wait on calls, not on time.
    recorded: watch::Sender<u64>,
}

#[allow(clippy::too_many_arguments)]
fn cam(
    id: u64,
    name: &str,
    kind: &str,
    model: &str,
    location: &str,
    doorbell: bool,
    battery: Option<u8>,
    light_siren: bool,
    online: bool,
    shared: bool,
    firmware: &str,
    rssi: i32,
) -> Camera {
    Camera {
        id: CameraId::new(id),
        device_id: format!("a4c1380f{:04x}", id - 10000),
        name: name.into(),
        kind: kind.into(),
        model: model.into(),
        location_id: location.into(),
        online,
        doorbell,
        battery,
        on_battery: battery.is_some(),
        has_light: light_siren,
        has_siren: light_siren,
        light_on: light_siren.then_some(false),
        siren_on: light_siren.then_some(false),
        motion_detection_enabled: true,
        live_view_disabled: false,
        // As in the simulator: Living Room has no Ring Protect plan.
        recordings_enabled: id != 10004,
        shared,
        firmware: firmware.into(),
        wifi_rssi_dbm: Some(rssi),
        time_zone: None,
    }
}

/// The six cameras of the simulator (docs/SIMULATOR.md).
pub fn sim_cameras() -> Vec<Camera> {
    vec![
        cam(
            10001,
            "Front Door",
            "lpd_v4",
            "Doorbell Pro 2",
            HOME,
            true,
            None,
            false,
            true,
            false,
            "cam-1.24.7",
            -52,
        ),
        cam(
            10002,
            "Back Door",
            "cocoa_doorbell_v2",
            "Battery Doorbell Plus",
            HOME,
            true,
            Some(87),
            false,
            true,
            false,
            "cam-1.31.2",
            -61,
        ),
        cam(
            10003,
            "Driveway",
            "floodlight_v2",
            "Floodlight Cam",
            HOME,
            false,
            None,
            true,
            true,
            false,
            "cam-1.19.0",
            -48,
        ),
        cam(
            10004,
            "Living Room",
            "stickup_cam_mini_v2",
            "Indoor Cam (2nd Gen)",
            HOME,
            false,
            None,
            false,
            true,
            false,
            "cam-1.40.1",
            -39,
        ),
        cam(
            10005,
            "Garage",
            "stickup_cam_v4",
            "Spotlight Cam",
            CABIN,
            false,
            Some(41),
            false,
            false,
            false,
            "cam-1.22.5",
            -74,
        ),
        cam(
            10006,
            "Cabin Porch",
            "doorbell_scallop",
            "Doorbell 3 Plus",
            CABIN,
            true,
            None,
            false,
            true,
            true,
            "cam-1.28.3",
            -57,
        ),
    ]
}

impl FakeRing {
    pub fn new() -> Arc<FakeRing> {
        Arc::new(FakeRing {
            cameras: Mutex::new(sim_cameras()),
            calls: Mutex::new(Vec::new()),
            history: Mutex::new(HashMap::new()),
            failing_history: Mutex::new(HashSet::new()),
            hanging_history: Mutex::new(HashSet::new()),
            fail_commands: Mutex::new(false),
            snapshot_tag: Mutex::new(1),
            auth: watch::channel(AuthState::Authenticated).0,
            recorded: watch::channel(0).0,
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
        self.recorded.send_modify(|n| *n += 1);
    }

    /// Waits until `done` holds for the calls made so far, woken by each new
    /// call; panics naming `what` after `timeout`.
    pub async fn wait_calls(
        &self,
        what: &str,
        timeout: std::time::Duration,
        done: impl Fn(&[Call]) -> bool,
    ) {
        let mut rx = self.recorded.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                if done(&self.calls.lock().unwrap()) {
                    return;
                }
                rx.changed()
                    .await
                    .expect("the fake lives as long as the test");
            }
        })
        .await;
        assert!(waited.is_ok(), "{what}: calls so far {:?}", self.calls());
    }

    /// Adds an event at the top of a camera's history.
    pub fn add_history(&self, camera_id: u64, ding_id: &str, kind: &str, created_at: &str) {
        let camera_id = CameraId::new(camera_id);
        let ev = HistoryEvent {
            id: ding_id.into(),
            camera_id,
            created_at: created_at.into(),
            kind: kind.into(),
            person_detected: false,
            recorded: true,
            recording_status: Some("ready".into()),
            duration_s: Some(30.0),
            answered: false,
            thumbnail_url: None,
        };
        self.history
            .lock()
            .unwrap()
            .entry(camera_id)
            .or_default()
            .insert(0, ev);
    }

    fn update(&self, camera_id: CameraId, f: impl FnOnce(&mut Camera)) -> Result<(), ring::Error> {
        if *self.fail_commands.lock().unwrap() {
            return Err(ring::ErrorInner::Status {
                path: format!("clients_api/doorbots/{camera_id}"),
                status: 503,
                body: "unavailable".into(),
            }
            .into());
        }
        let mut cams = self.cameras.lock().unwrap();
        let c = cams.iter_mut().find(|c| c.id == camera_id).ok_or_else(|| {
            ring::Error::from(ring::ErrorInner::NotFound(format!("camera {camera_id}")))
        })?;
        f(c);
        Ok(())
    }
}

#[async_trait::async_trait]
impl RingApi for FakeRing {
    async fn cameras(&self) -> Result<Vec<Camera>, ring::Error> {
        Ok(self.cameras.lock().unwrap().clone())
    }
    async fn locations(&self) -> Result<Vec<Location>, ring::Error> {
        Ok(vec![
            Location {
                id: HOME.into(),
                name: "Home".into(),
            },
            Location {
                id: CABIN.into(),
                name: "Cabin".into(),
            },
        ])
    }
    async fn history(
        &self,
        camera_id: CameraId,
        q: HistoryQuery,
    ) -> Result<HistoryPage, ring::Error> {
        self.record(Call::History(camera_id));
        if self.hanging_history.lock().unwrap().contains(&camera_id) {
            std::future::pending::<()>().await;
        }
        if self.failing_history.lock().unwrap().contains(&camera_id) {
            return Err(ring::ErrorInner::Status {
                path: format!("evm/v2/history/devices/{camera_id}"),
                status: 500,
                body: "boom".into(),
            }
            .into());
        }
        let events: Vec<HistoryEvent> = self
            .history
            .lock()
            .unwrap()
            .get(&camera_id)
            .map(|v| v.iter().take(q.limit as usize).cloned().collect())
            .unwrap_or_default();
        Ok(HistoryPage { events, next: None })
    }
    async fn recording_url(&self, ding_id: &str) -> Result<url::Url, ring::Error> {
        Err(ring::ErrorInner::NotFound(format!("recording {ding_id}")).into())
    }
    async fn snapshot(&self, camera_id: CameraId) -> Result<Snapshot, ring::Error> {
        self.record(Call::Snapshot(camera_id));
        Ok(Snapshot {
            jpeg: jpeg(*self.snapshot_tag.lock().unwrap()),
            captured_at_ms: None,
        })
    }
    async fn set_light(&self, camera_id: CameraId, on: bool) -> Result<(), ring::Error> {
        self.record(Call::SetLight(camera_id, on));
        self.update(camera_id, |c| c.light_on = Some(on))
    }
    async fn set_siren(&self, camera_id: CameraId, on: bool) -> Result<(), ring::Error> {
        self.record(Call::SetSiren(camera_id, on));
        self.update(camera_id, |c| c.siren_on = Some(on))
    }
    async fn set_motion_detection(&self, camera_id: CameraId, on: bool) -> Result<(), ring::Error> {
        self.record(Call::SetMotionDetection(camera_id, on));
        self.update(camera_id, |c| c.motion_detection_enabled = on)
    }
    async fn live_ticket(&self) -> Result<String, ring::Error> {
        Ok("ticket".into())
    }
    fn auth_state(&self) -> watch::Receiver<AuthState> {
        self.auth.subscribe()
    }
}
