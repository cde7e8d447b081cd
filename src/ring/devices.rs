//! Parsing of `clients_api/ring_devices`, `doorbots/{id}/health` and
//! `devices/v1/locations` into the normalized model (ring-api.md §2).
//!
//! Ring's answers vary by device, firmware and account age, so parsing walks
//! `serde_json::Value`s: every field is optional, numbers may come as strings
//! (`battery_life`: `100`, `"71"`, `4081`), unknown fields are ignored, and a
//! malformed device is skipped (logged) rather than failing the whole list.

use serde::Serialize;
use serde_json::Value;

use super::model::{Camera, Location};

use crate::base::CameraId;

/// The arrays of `ring_devices` that hold cameras, in priority order (a
/// duplicate id keeps its first occurrence).
const CAMERA_ARRAYS: [&str; 4] = ["doorbots", "authorized_doorbots", "stickup_cams", "other"];

/// `kind` → model name (ring-api.md §2.4).
const MODELS: &[(&[&str], &str)] = &[
    (&["doorbot", "doorbell", "doorbell_v3"], "Doorbell"),
    (&["doorbell_v4", "doorbell_v5"], "Doorbell 2"),
    (&["doorbell_scallop_lite"], "Doorbell 3"),
    (&["doorbell_scallop"], "Doorbell 3 Plus"),
    (&["doorbell_oyster"], "Doorbell 4"),
    (&["doorbell_portal"], "Door View Cam"),
    (&["doorbell_graham_cracker"], "Doorbell Wired"),
    (&["lpd_v1", "lpd_v2", "lpd_v3"], "Doorbell Pro"),
    (&["lpd_v4"], "Doorbell Pro 2"),
    (&["jbox_v1"], "Doorbell Elite"),
    (&["cocoa_doorbell"], "Doorbell Gen 2"),
    (&["cocoa_doorbell_v2"], "Battery Doorbell Plus"),
    (&["cocoa_doorbell_v3"], "Battery Doorbell Pro"),
    (
        &[
            "stickup_cam",
            "stickup_cam_v3",
            "stickup_cam_elite",
            "stickup_cam_wired",
            "stickup_cam_lunar",
            "cocoa_camera",
        ],
        "Stick Up Cam",
    ),
    (
        &["spotlightw_v2", "hp_cam_v2", "stickup_cam_v4"],
        "Spotlight Cam",
    ),
    (&["cocoa_spotlight"], "Spotlight Cam Plus"),
    (&["stickup_cam_longfin"], "Spotlight Cam Pro"),
    (
        &["hp_cam_v1", "floodlight_v1", "floodlight_v2"],
        "Floodlight Cam",
    ),
    (&["floodlight_pro"], "Floodlight Cam Pro"),
    (&["cocoa_floodlight"], "Floodlight Cam Plus"),
    (&["stickup_cam_mini"], "Indoor Cam"),
    (&["stickup_cam_mini_v2"], "Indoor Cam (2nd Gen)"),
    (&["intercom_handset_video"], "Intercom Video"),
    (&["onvif_camera"], "Onvif Camera"),
];

/// Doorbell kinds that do not start with `doorbell` (ring-api.md §2.4).
const DOORBELL_KIND_PREFIXES: [&str; 4] = ["doorbell", "lpd_", "jbox_", "cocoa_doorbell"];

/// Human model name for a Ring `kind`; unknown kinds give a generic name.
pub fn model_name(kind: &str) -> String {
    if let Some((_, m)) = MODELS.iter().find(|(ks, _)| ks.contains(&kind)) {
        return (*m).to_owned();
    }
    if DOORBELL_KIND_PREFIXES.iter().any(|p| kind.starts_with(p)) {
        "Doorbell".to_owned()
    } else if kind.contains("floodlight") {
        "Floodlight Cam".to_owned()
    } else if kind.contains("spotlight") {
        "Spotlight Cam".to_owned()
    } else {
        format!("Ring camera ({kind})")
    }
}

/// Whether a device from the `other` array is a camera (an ONVIF or
/// third-party camera or a video intercom; not audio intercoms or garage doors).
fn other_is_camera(kind: &str) -> bool {
    kind == "intercom_handset_video"
        || kind == "onvif_camera"
        || kind.contains("cam")
        || DOORBELL_KIND_PREFIXES.iter().any(|p| kind.starts_with(p))
}

/// A string from a string or a number (`location_id`, `device_id`).
fn string_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number from a number or a numeric string (`"71"`, `"71.0"`).
fn number_of(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// A camera id from a number or a numeric string, exactly (never via f64).
pub(crate) fn id_of(v: Option<&Value>) -> Option<CameraId> {
    let n = match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.map(CameraId::new)
}

/// A bool from a bool or `"true"`/`"false"`.
fn bool_of(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn present(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null())
}

/// Battery percent (ring-api.md §2.1, §2.3): the minimum of `battery_life` and
/// `battery_life_2` that parse as numbers, clamped to 0..=100; `None` when
/// neither parses, or when `health` is present but says nothing about a
/// battery (`battery_percentage`, `battery_present`, `second_battery_percentage`
/// all missing or falsy).
fn battery(d: &Value) -> Option<u8> {
    let level = [d.get("battery_life"), d.get("battery_life_2")]
        .into_iter()
        .filter_map(number_of)
        .reduce(f64::min)?;
    if let Some(h) = d.get("health").filter(|h| h.is_object()) {
        let truthy = |k: &str| match h.get(k) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if ![
            "battery_percentage",
            "battery_present",
            "second_battery_percentage",
        ]
        .into_iter()
        .any(truthy)
        {
            return None;
        }
    }
    Some(level.round().clamp(0.0, 100.0) as u8)
}

/// Parses one device object from array `array`. `None` (logged) without an id.
pub fn parse_camera(d: &Value, array: &str) -> Option<Camera> {
    let Some(id) = id_of(d.get("id")) else {
        tracing::warn!(array, "skipping a Ring device without a usable id");
        return None;
    };
    let kind = d
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let settings = d.get("settings");
    let setting = |k: &str| settings.and_then(|s| s.get(k));
    let health = d.get("health");
    let alerts_online = d
        .get("alerts")
        .and_then(|a| a.get("connection"))
        .and_then(Value::as_str)
        .map(|c| c != "offline");
    let health_online = bool_of(health.and_then(|h| h.get("connected")));
    let online = alerts_online.unwrap_or(true) && health_online.unwrap_or(true);
    let battery = battery(d);
    let wired = setting("power_mode").and_then(Value::as_str) == Some("wired");
    let led = d.get("led_status");
    let light_on = match led {
        Some(Value::String(s)) => Some(s == "on"),
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::Object(o)) => Some(number_of(o.get("seconds_remaining")).unwrap_or(0.0) > 0.0),
        _ => None,
    };
    let siren = d.get("siren_status").filter(|s| !s.is_null());
    let siren_on = siren.map(|s| number_of(s.get("seconds_remaining")).unwrap_or(0.0) > 0.0);
    let doorbell = matches!(array, "doorbots" | "authorized_doorbots")
        || DOORBELL_KIND_PREFIXES.iter().any(|p| kind.starts_with(p));
    let shared = array == "authorized_doorbots" || bool_of(d.get("owned")) == Some(false);
    let firmware = d
        .get("firmware_version")
        .and_then(Value::as_str)
        .or_else(|| {
            health
                .and_then(|h| h.get("firmware_version"))
                .and_then(Value::as_str)
        })
        .unwrap_or("")
        .to_owned();
    let wifi_rssi_dbm = number_of(health.and_then(|h| h.get("rssi")))
        .filter(|r| (-150.0..=0.0).contains(r))
        .map(|r| r.round() as i32);
    Some(Camera {
        id,
        device_id: string_of(d.get("device_id")).unwrap_or_default(),
        name: d
            .get("description")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map_or_else(|| format!("Camera {id}"), str::to_owned),
        model: model_name(&kind),
        kind,
        location_id: string_of(d.get("location_id")).unwrap_or_default(),
        online,
        doorbell,
        battery,
        on_battery: battery.is_some() && !wired,
        has_light: present(led),
        has_siren: siren.is_some(),
        light_on,
        siren_on,
        motion_detection_enabled: bool_of(setting("motion_detection_enabled")).unwrap_or(true),
        live_view_disabled: bool_of(setting("live_view_disabled")).unwrap_or(false),
        recordings_enabled: bool_of(d.get("features").and_then(|f| f.get("show_recordings")))
            .unwrap_or(false),
        shared,
        firmware,
        wifi_rssi_dbm,
        time_zone: d
            .get("time_zone")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// All cameras of a `ring_devices` answer: every camera array, plus camera
/// kinds from `other`. Chimes, base stations, bridges and audio intercoms are
/// not cameras. A repeated id keeps its first occurrence.
pub fn parse_ring_devices(v: &Value) -> Vec<Camera> {
    let mut out: Vec<Camera> = Vec::new();
    for array in CAMERA_ARRAYS {
        let Some(items) = v.get(array).and_then(Value::as_array) else {
            continue;
        };
        for d in items {
            if array == "other" {
                let kind = d.get("kind").and_then(Value::as_str).unwrap_or("");
                if !other_is_camera(kind) {
                    continue;
                }
            }
            let Some(c) = parse_camera(d, array) else {
                continue;
            };
            if out.iter().any(|o| o.id == c.id) {
                tracing::debug!(
                    camera = %c.id,
                    array,
                    "duplicate Ring device id; keeping the first"
                );
                continue;
            }
            out.push(c);
        }
    }
    out
}

/// Locations of a `devices/v1/locations` answer (`user_locations[]`).
pub fn parse_locations(v: &Value) -> Vec<Location> {
    let items = v
        .get("user_locations")
        .or_else(|| v.get("locations"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|l| {
            let id = string_of(l.get("location_id").or_else(|| l.get("id")))?;
            let name = l
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&id)
                .to_owned();
            Some(Location { id, name })
        })
        .collect()
}

/// A camera's health (`clients_api/doorbots/{id}/health` → `device_health`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeviceHealth {
    /// Latest Wi-Fi signal in dBm (`latest_signal_strength`).
    pub wifi_rssi_dbm: Option<i32>,
    /// Wi-Fi network name.
    pub wifi_name: Option<String>,
    /// Battery percent, when the camera has one.
    pub battery_percent: Option<u8>,
    /// Firmware version.
    pub firmware: Option<String>,
}

/// Parses a `doorbots/{id}/health` answer.
pub fn parse_health(v: &Value) -> DeviceHealth {
    let h = v.get("device_health").unwrap_or(v);
    DeviceHealth {
        wifi_rssi_dbm: number_of(h.get("latest_signal_strength"))
            .filter(|r| (-150.0..=0.0).contains(r))
            .map(|r| r.round() as i32),
        wifi_name: h
            .get("wifi_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        battery_percent: number_of(h.get("battery_percentage"))
            .map(|b| b.round().clamp(0.0, 100.0) as u8),
        firmware: h.get("firmware").and_then(Value::as_str).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests;
