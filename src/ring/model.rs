//! The normalized view of Ring data that the rest of ring-bridge consumes.
//!
//! Raw Ring JSON (see `../shared/ring-api.md` §2–§5) is parsed in `ring::devices`
//! and `ring::history`; nothing outside `ring` sees raw Ring shapes.

use serde::Serialize;

use crate::base::CameraId;

/// One Ring camera or doorbell, normalized from `clients_api/ring_devices`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Camera {
    /// Ring's numeric id (`doorbot_id` everywhere in the API; used in URL paths).
    pub id: CameraId,
    /// Ring's hex, MAC-like `device_id`.
    pub device_id: String,
    /// The user-given name (`description`).
    pub name: String,
    /// Ring's `kind`, e.g. `doorbell_v4`, `cocoa_camera`, `hp_cam_v2`.
    pub kind: String,
    /// Human model name derived from `kind` (ring-api.md §2.4), e.g. "Doorbell 2".
    pub model: String,
    /// Location the camera belongs to.
    pub location_id: String,
    /// `alerts.connection != "offline"` (and `health.connected` when present).
    pub online: bool,
    /// From a doorbot array or `kind` starting with `doorbell`.
    pub doorbell: bool,
    /// Battery percent 0..=100, `None` for cameras without a battery.
    pub battery: Option<u8>,
    /// Has a battery and `settings.power_mode != "wired"`.
    pub on_battery: bool,
    /// `led_status` present.
    pub has_light: bool,
    /// `siren_status` present.
    pub has_siren: bool,
    /// Light currently on (`led_status == "on"`), `None` without a light.
    pub light_on: Option<bool>,
    /// Siren sounding (`siren_status.seconds_remaining > 0`), `None` without a siren.
    pub siren_on: Option<bool>,
    /// `settings.motion_detection_enabled` (false blocks snapshots).
    pub motion_detection_enabled: bool,
    /// `settings.live_view_disabled` (set by Modes: do not stream).
    pub live_view_disabled: bool,
    /// Ring Protect: recordings available (`features.show_recordings`).
    pub recordings_enabled: bool,
    /// Shared with this user (from `authorized_doorbots`) rather than owned.
    pub shared: bool,
    /// `firmware_version`.
    pub firmware: String,
    /// Wi-Fi signal in dBm (`health.rssi`), when known.
    pub wifi_rssi_dbm: Option<i32>,
    /// IANA time zone of the camera.
    pub time_zone: Option<String>,
}

/// What a camera can do, derived from [`Camera`] (served at
/// `GET /api/ring/cameras/:id/capabilities`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Capabilities {
    /// Live view possible (online and not blocked by Modes).
    pub live_view: bool,
    /// Two-way talk (every streaming camera offers it, ring-api.md §2.5).
    pub talk: bool,
    /// Has a controllable light.
    pub light: bool,
    /// Has a siren.
    pub siren: bool,
    /// Snapshots possible now (online and motion detection on).
    pub snapshot: bool,
    /// Recorded events can be played (Ring Protect).
    pub recordings: bool,
    /// Runs on battery (snapshots limited, no snapshot while streaming).
    pub battery: bool,
    /// Doorbell: has dings.
    pub doorbell: bool,
    /// Why live view or talk is unavailable, for the UI, when one is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Camera {
    /// Derives the capabilities of this camera.
    pub fn capabilities(&self) -> Capabilities {
        let reason = if !self.online {
            Some("camera is offline".to_string())
        } else if self.live_view_disabled {
            Some("live view is disabled by Ring Modes".to_string())
        } else {
            None
        };
        let live = reason.is_none();
        Capabilities {
            live_view: live,
            talk: live,
            light: self.has_light,
            siren: self.has_siren,
            snapshot: self.online && self.motion_detection_enabled,
            recordings: self.recordings_enabled,
            battery: self.battery.is_some(),
            doorbell: self.doorbell,
            reason,
        }
    }
}

/// A Ring location (`devices/v1/locations`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Location {
    /// `location_id`.
    pub id: String,
    /// User-given name.
    pub name: String,
}

/// One event from a camera's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryEvent {
    /// The ding id as a string (64-bit; never go through f64).
    pub id: String,
    /// Numeric camera id.
    pub camera_id: CameraId,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// `motion`, `ding`, `on_demand`, ...
    pub kind: String,
    /// Computer vision saw a person.
    pub person_detected: bool,
    /// A recording exists for this event.
    pub recorded: bool,
    /// `ready`, `audio_ready`, `pending`, ...; `None` when not recorded.
    pub recording_status: Option<String>,
    /// Length of the recording in seconds, when known.
    pub duration_s: Option<f64>,
    /// The ding was answered.
    pub answered: bool,
    /// Thumbnail URL, when the timeline gives one.
    pub thumbnail_url: Option<String>,
}

impl HistoryEvent {
    /// Whether the recording can be played now.
    pub fn playable(&self) -> bool {
        self.recorded && self.recording_status.as_deref() == Some("ready")
    }
}

/// One page of history, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryPage {
    /// Events, newest first.
    pub events: Vec<HistoryEvent>,
    /// Cursor for the next (older) page; `None` at the end.
    pub next: Option<String>,
}

/// A JPEG snapshot.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// JPEG bytes.
    pub jpeg: bytes::Bytes,
    /// Capture time in ms since the epoch (`x-time-millis`), when Ring said.
    pub captured_at_ms: Option<u64>,
}

/// The signed-in Ring user (`profile` of `clients_api/profile`, ring-api.md §1.5).
/// Shown in the console so a person can see which account is linked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The account's e-mail address.
    pub email: String,
    /// "First Last", when Ring has a name; `None` otherwise.
    pub name: Option<String>,
}
