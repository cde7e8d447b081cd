//! The simulated cameras: [`SimCamera`] with its mutable state, the six seeded
//! cameras and the cameras made at start-up (`media_dir`, `sim --cameras N`) or
//! at run time (`POST /_sim/cameras`).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::home::{CABIN_LOCATION_ID, HOME_LOCATION_ID};
use crate::sim::live::h265::VideoMode;

/// First numeric id given to cameras made from the user's own MP4 files.
pub const MEDIA_DIR_FIRST_ID: u64 = 10101;

/// First numeric id of the extra cameras of `sim --cameras N` ([`extra_camera`]).
pub const EXTRA_FIRST_ID: u64 = 10301;

/// Lowest numeric id of a camera added at run time (`POST /_sim/cameras`,
/// [`added_camera`]).
pub const ADDED_FIRST_ID: u64 = 10401;

/// The ring_devices array a device is listed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceArray {
    /// Owned doorbells.
    Doorbots,
    /// Doorbells shared with the demo user.
    AuthorizedDoorbots,
    /// Every other camera.
    StickupCams,
}

/// One camera of the simulated account, with its mutable state.
#[derive(Clone, Debug)]
pub struct SimCamera {
    /// Numeric id (`doorbot_id`).
    pub id: u64,
    /// Hex, MAC-like device id.
    pub device_id: String,
    /// `description`.
    pub name: String,
    /// Ring `kind`.
    pub kind: String,
    /// Location id.
    pub location_id: String,
    /// Which ring_devices array lists it.
    pub array: DeviceArray,
    /// `battery_life` exactly as served (`"87"`, `41` or `null`).
    pub battery_life: Value,
    /// Has a floodlight and siren (`led_status`, `siren_status`).
    pub has_light_siren: bool,
    /// `features.show_recordings` (Ring Protect).
    pub show_recordings: bool,
    /// Online as seeded (before any fault override).
    pub seeded_online: bool,
    /// `{"camera_id":..,"offline":..}` fault override.
    pub offline_override: Option<bool>,
    /// Firmware version string.
    pub firmware: String,
    /// Wi-Fi RSSI in dBm.
    pub rssi: i32,
    /// Floodlight on.
    pub light_on: bool,
    /// Siren sounds until this instant.
    pub siren_until: Option<tokio::time::Instant>,
    /// Doorbot `settings` object (source of truth for motion detection etc.).
    pub settings: Value,
    /// `devices/v1/devices/{id}/settings` object, without `motion_settings` truth.
    pub device_settings: Value,
    /// Push subscription flags.
    pub subscribed: bool,
    /// Motion push subscription flag.
    pub subscribed_motions: bool,
    /// Time of the last snapshot capture (ms since the epoch).
    pub snapshot_ms: i64,
    /// A capture requested through `snapshots/timestamps`, done at this time
    /// (ms since the epoch); see `SimState::settle_snapshot`.
    pub snapshot_due_ms: Option<i64>,
    /// The user's own MP4 file backing this camera (`SimOptions::media_dir`).
    pub media_file: Option<PathBuf>,
    /// `videotestsrc` pattern used for this camera's pictures.
    pub pattern: &'static str,
    /// How the camera picks its live video codec; `settings.video_settings.hevc_enabled`
    /// mirrors it (`docs/design/0009-h265.md`).
    pub video: VideoMode,
}

impl SimCamera {
    /// Finishes a requested capture whose time has come (`snapshot_due_ms` ≤
    /// `now_ms`): the capture time becomes the due time.
    pub fn settle_snapshot(&mut self, now_ms: i64) {
        if let Some(due) = self.snapshot_due_ms
            && due <= now_ms
        {
            self.snapshot_ms = self.snapshot_ms.max(due);
            self.snapshot_due_ms = None;
        }
    }

    /// Online now (override first, then as seeded).
    pub fn online(&self) -> bool {
        self.offline_override
            .map(|off| !off)
            .unwrap_or(self.seeded_online)
    }

    /// Is a doorbell (doorbot arrays).
    pub fn doorbell(&self) -> bool {
        matches!(
            self.array,
            DeviceArray::Doorbots | DeviceArray::AuthorizedDoorbots
        )
    }

    /// `settings.motion_detection_enabled`.
    pub fn motion_detection_enabled(&self) -> bool {
        self.settings
            .get("motion_detection_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// Switches the video mode and `settings.video_settings.hevc_enabled` with it.
    pub fn set_video_mode(&mut self, mode: VideoMode) {
        self.video = mode;
        self.settings["video_settings"] = json!({"hevc_enabled": mode.hevc_enabled()});
    }

    /// `settings.live_view_disabled`.
    pub fn live_view_disabled(&self) -> bool {
        self.settings
            .get("live_view_disabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `settings.power_mode` is battery.
    pub fn on_battery(&self) -> bool {
        self.settings.get("power_mode").and_then(Value::as_str) == Some("battery")
    }

    /// Battery percent, when the camera has one.
    pub fn battery_percent(&self) -> Option<u64> {
        match &self.battery_life {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// Seconds the siren still sounds (0 when silent).
    pub fn siren_seconds_remaining(&self) -> u64 {
        self.siren_until
            .map(|t| {
                t.saturating_duration_since(tokio::time::Instant::now())
                    .as_secs_f64()
                    .ceil() as u64
            })
            .unwrap_or(0)
    }
}

struct Seed {
    id: u64,
    name: &'static str,
    kind: &'static str,
    location: &'static str,
    array: DeviceArray,
    battery: Value,
    light_siren: bool,
    show_recordings: bool,
    online: bool,
    firmware: &'static str,
    rssi: i32,
    pattern: &'static str,
    video: VideoMode,
}

/// The six seeded cameras (see `docs/SIMULATOR.md`), in id order.
pub fn seed_cameras(now_ms: i64) -> Vec<SimCamera> {
    let seeds = [
        Seed {
            id: 10001,
            name: "Front Door",
            kind: "lpd_v4",
            location: HOME_LOCATION_ID,
            array: DeviceArray::Doorbots,
            battery: Value::Null,
            light_siren: false,
            show_recordings: true,
            online: true,
            firmware: "cam-1.24.7",
            rssi: -52,
            pattern: "smpte",
            // The Video Doorbell Pro 2 is reported in HEVC mode (scrypted #2045).
            video: VideoMode::Hevc,
        },
        Seed {
            id: 10002,
            name: "Back Door",
            kind: "cocoa_doorbell_v2",
            location: HOME_LOCATION_ID,
            array: DeviceArray::Doorbots,
            battery: json!("87"),
            light_siren: false,
            show_recordings: true,
            online: true,
            firmware: "cam-1.31.2",
            rssi: -61,
            pattern: "ball",
            video: VideoMode::Legacy,
        },
        Seed {
            id: 10003,
            name: "Driveway",
            kind: "floodlight_v2",
            location: HOME_LOCATION_ID,
            array: DeviceArray::StickupCams,
            battery: Value::Null,
            light_siren: true,
            show_recordings: true,
            online: true,
            firmware: "cam-1.19.0",
            rssi: -48,
            pattern: "pinwheel",
            video: VideoMode::Legacy,
        },
        Seed {
            id: 10004,
            name: "Living Room",
            kind: "stickup_cam_mini_v2",
            location: HOME_LOCATION_ID,
            array: DeviceArray::StickupCams,
            battery: Value::Null,
            light_siren: false,
            show_recordings: false,
            online: true,
            firmware: "cam-1.40.1",
            rssi: -39,
            pattern: "spokes",
            video: VideoMode::Legacy,
        },
        Seed {
            id: 10005,
            name: "Garage",
            kind: "stickup_cam_v4",
            location: CABIN_LOCATION_ID,
            array: DeviceArray::StickupCams,
            battery: json!(41),
            light_siren: false,
            show_recordings: true,
            online: false,
            firmware: "cam-1.22.5",
            rssi: -74,
            pattern: "snow",
            video: VideoMode::Legacy,
        },
        Seed {
            id: 10006,
            name: "Cabin Porch",
            kind: "doorbell_scallop",
            location: CABIN_LOCATION_ID,
            array: DeviceArray::AuthorizedDoorbots,
            battery: Value::Null,
            light_siren: false,
            show_recordings: true,
            online: true,
            firmware: "cam-1.28.3",
            rssi: -57,
            pattern: "circular",
            video: VideoMode::Legacy,
        },
    ];
    seeds
        .into_iter()
        .map(|s| camera_from_seed(s, now_ms))
        .collect()
}

fn camera_from_seed(s: Seed, now_ms: i64) -> SimCamera {
    let battery = !s.battery.is_null();
    let mut settings = json!({
        "enable_vod": true,
        "motion_detection_enabled": true,
        "live_view_disabled": false,
        "power_mode": if battery { "battery" } else { "wired" },
        "doorbell_volume": 5,
        "live_view_preset_profile": "highest",
        "live_view_presets": ["low", "middle", "high", "highest"],
        "motion_announcement": false,
        "motion_snooze_preset_profile": "low",
        "motion_snooze_presets": ["none", "low", "medium", "high"],
        "chime_settings": {"type": if s.kind.starts_with("lpd") { 0 } else { 1 }, "enable": true, "duration": 3},
        "lite_24x7": {"enabled": false, "frequency_secs": 600},
        "sheila_settings": {"local_storage_enabled": false},
    });
    if s.light_siren {
        settings["floodlight_settings"] = json!({"duration": 30, "priority": 0, "brightness": 10});
    }
    let mut cam = SimCamera {
        id: s.id,
        device_id: format!("a4c1380f{:04x}", s.id - 10000),
        name: s.name.to_string(),
        kind: s.kind.to_string(),
        location_id: s.location.to_string(),
        array: s.array,
        battery_life: s.battery,
        has_light_siren: s.light_siren,
        show_recordings: s.show_recordings,
        seeded_online: s.online,
        offline_override: None,
        firmware: s.firmware.to_string(),
        rssi: s.rssi,
        light_on: false,
        siren_until: None,
        settings,
        device_settings: default_device_settings(),
        subscribed: false,
        subscribed_motions: false,
        snapshot_ms: now_ms - 30_000,
        snapshot_due_ms: None,
        media_file: None,
        pattern: s.pattern,
        video: VideoMode::Legacy,
    };
    cam.set_video_mode(s.video);
    cam
}

/// A camera made from one of the user's MP4 files (`index` from 0).
pub fn media_dir_camera(index: usize, name: &str, file: PathBuf, now_ms: i64) -> SimCamera {
    let mut cam = wired_camera(MEDIA_DIR_FIRST_ID + index as u64, name, "cam-1.0.0", now_ms);
    cam.media_file = Some(file);
    cam
}

/// Extra wired camera `index` (from 0) of `sim --cameras N` (benchmarks): a
/// `stickup_cam_v4` in Home named "Bench Cam NN", id [`EXTRA_FIRST_ID`] + `index`,
/// streaming the generated clip.
pub fn extra_camera(index: usize, now_ms: i64) -> SimCamera {
    let name = format!("Bench Cam {:02}", index + 1);
    wired_camera(EXTRA_FIRST_ID + index as u64, &name, "cam-1.2.0", now_ms)
}

/// A wired `stickup_cam_v4` in Home named `name` with numeric id `id`, added at
/// run time through the control API; it streams the generated clip.
pub fn added_camera(id: u64, name: &str, now_ms: i64) -> SimCamera {
    wired_camera(id, name, "cam-1.2.0", now_ms)
}

fn wired_camera(id: u64, name: &str, firmware: &'static str, now_ms: i64) -> SimCamera {
    let mut cam = camera_from_seed(
        Seed {
            id,
            name: "",
            kind: "stickup_cam_v4",
            location: HOME_LOCATION_ID,
            array: DeviceArray::StickupCams,
            battery: Value::Null,
            light_siren: false,
            show_recordings: true,
            online: true,
            firmware,
            rssi: -50,
            pattern: "smpte",
            video: VideoMode::Legacy,
        },
        now_ms,
    );
    cam.name = name.to_string();
    cam.device_id = format!("a4c1380f{:04x}", id - 10000);
    cam
}

fn default_device_settings() -> Value {
    json!({
        "general_settings": {"lite_24x7_enabled": false, "enable_audio_recording": true},
        "motion_settings": {"motion_detection_enabled": true, "advanced_motion_detection_enabled": true,
                            "advanced_motion_detection_human_only_mode": false},
        "video_settings": {"hdr_enable": false, "clip_length_max": 30},
        "chime_settings": {"type": 1, "enable": true},
        "volume_settings": {"doorbell_volume": 5, "mic_volume": 8, "voice_volume": 8},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_match_the_documented_data_set() {
        let cams = seed_cameras(0);
        let ids: Vec<_> = cams.iter().map(|c| (c.id, c.device_id.as_str())).collect();
        assert_eq!(ids[0], (10001, "a4c1380f0001"));
        assert_eq!(ids[5], (10006, "a4c1380f0006"));
        assert_eq!(cams[1].battery_percent(), Some(87));
        assert!(!cams[4].online());
    }
}
