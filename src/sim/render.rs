//! Renders the simulator's state as raw Ring JSON, in the shapes of the real
//! answers (`/work/shared/ring-fixtures`, ring-api.md §2): cameras for
//! `ring_devices`, the profile, locations, device health, device settings and
//! active dings. Pure functions of the state; no I/O.

use serde_json::{Value, json};

use super::clock;
use super::data;
use super::data::cameras::{DeviceArray, SimCamera};
use super::data::events::EventRec;

/// The demo user's profile (the `profile` object of session and profile answers).
pub fn profile() -> Value {
    json!({
        "id": data::home::DEMO_USER_ID,
        "email": super::DEMO_EMAIL,
        "first_name": "Demo",
        "last_name": "User",
        "phone_number": "+15555550189",
        "tfa_enabled": true,
        "tfa_phone_number": "+1xxxxxx89",
        "user_flow": "ring",
        "explorer_program_terms": null,
        "features": {
            "chime_dnd_enabled": false,
            "chime_pro_enabled": true,
            "delete_all_enabled": true,
            "device_health_alerts_enabled": true,
            "floodlight_cam_enabled": true,
            "live_view_settings_enabled": true,
            "lpd_enabled": true,
            "multiple_calls_enabled": true,
            "multiple_delete_enabled": true,
            "nw_enabled": true,
            "ringplus_enabled": true,
            "starred_events_enabled": true,
            "stickupcam_setup_enabled": true,
            "subscriptions_enabled": true,
            "video_search_enabled": true,
            "vod_enabled": true,
        },
    })
}

/// One `user_locations[]` entry.
pub fn location(id: &str, name: &str, address: &str) -> Value {
    let (lat, lon) = coordinates(id);
    json!({
        "location_id": id,
        "owner_id": data::home::DEMO_USER_ID,
        "name": name,
        "location_type": "home",
        "geo_coordinates": {"latitude": lat, "longitude": lon},
        "geo_service_verified": "verified",
        "address": {
            "address1": address, "address2": "", "city": "Simtown", "state": "SM",
            "zip_code": "00000", "country": "US", "timezone": data::home::location_time_zone(id),
        },
        "is_owner": true,
        "created_at": "2023-04-01T10:00:00.000Z",
        "updated_at": "2024-06-01T10:00:00.000Z",
    })
}

/// Latitude and longitude of a location.
fn coordinates(location_id: &str) -> (f64, f64) {
    if location_id == data::home::CABIN_LOCATION_ID {
        (39.55, -105.78)
    } else {
        (52.52, 13.40)
    }
}

/// One camera as listed by `ring_devices`.
pub fn camera(c: &SimCamera) -> Value {
    let online = c.online();
    let battery = c.battery_percent();
    let shared = c.array == DeviceArray::AuthorizedDoorbots;
    let mut alerts =
        json!({"connection": if online { "online" } else { "offline" }, "ota_status": "no_ota"});
    if battery.is_some_and(|b| b < 20) {
        alerts["battery"] = json!("low");
    }
    let mut settings = c.settings.clone();
    settings["motion_detection_enabled"] = json!(c.motion_detection_enabled());
    let mut v = json!({
        "id": c.id,
        "device_id": c.device_id,
        "description": c.name,
        "kind": c.kind,
        "location_id": c.location_id,
        "time_zone": data::home::location_time_zone(&c.location_id),
        "firmware_version": c.firmware,
        "address": if c.location_id == data::home::CABIN_LOCATION_ID { "42 Lakeside Road" } else { "1 Simulator Way" },
        "latitude": coordinates(&c.location_id).0,
        "longitude": coordinates(&c.location_id).1,
        "owned": !shared,
        "owner": if shared { data::home::other_owner_json() } else { data::home::owner_json() },
        "alerts": alerts,
        "battery_life": c.battery_life,
        "battery_life_2": null,
        "external_connection": false,
        "features": {
            "motions_enabled": true,
            "show_recordings": c.show_recordings,
            "advanced_motion_enabled": true,
            "people_only_enabled": false,
            "shadow_correction_enabled": false,
            "motion_message_enabled": false,
            "night_vision_enabled": true,
            "show_vod_settings": true,
            "rich_notifications_eligible": c.show_recordings,
        },
        "settings": settings,
        "health": health(c),
        "motion_snooze": null,
        "stolen": false,
        "subscribed": c.subscribed,
        "subscribed_motions": c.subscribed_motions,
        "ring_net_id": null,
        "created_at": "2023-04-01T10:00:00.000Z",
        "deactivated_at": null,
    });
    if c.has_light_siren {
        v["led_status"] = json!(if c.light_on { "on" } else { "off" });
        v["siren_status"] = json!({"seconds_remaining": c.siren_seconds_remaining()});
        v["ring_cam_light_installed"] = json!("true");
        v["night_mode_status"] = json!("false");
    }
    v
}

/// The `health` object embedded in a camera.
fn health(c: &SimCamera) -> Value {
    let battery = c.battery_percent();
    json!({
        "connected": c.online(),
        "rssi": c.rssi,
        "rssi_category": signal_category(c.rssi),
        "battery_percentage": battery,
        "battery_present": battery.is_some(),
        "second_battery_percentage": null,
        "ac_power": if battery.is_some() { 0 } else { 1 },
        "firmware_version": c.firmware,
        "firmware_version_status": "Up to Date",
        "run_mode": "full",
        "packet_loss": 0.0,
        "tx_rate": 65.0,
        "channel": 6,
        "supported_rpc_commands": if c.has_light_siren {
            json!(["floodlight_light_on", "siren_on", "snapshot"])
        } else {
            json!(["snapshot"])
        },
        "last_update_time": clock::now_ms() / 1000 - 60,
    })
}

fn signal_category(rssi: i32) -> &'static str {
    match rssi {
        r if r >= -60 => "good",
        r if r >= -70 => "fair",
        _ => "poor",
    }
}

/// `device_health` of `clients_api/doorbots/{id}/health`.
pub fn device_health(c: &SimCamera) -> Value {
    json!({
        "id": c.id,
        "wifi_name": "ring-sim-wifi",
        "wifi_is_ring_network": false,
        "latest_signal_strength": c.rssi,
        "latest_signal_category": signal_category(c.rssi),
        "average_signal_strength": c.rssi + 2,
        "average_signal_category": signal_category(c.rssi + 2),
        "battery_percentage": c.battery_percent(),
        "battery_percentage_category": null,
        "battery_voltage": null,
        "battery_voltage_category": null,
        "firmware": c.firmware,
        "firmware_out_of_date": false,
        "transformer_voltage": if c.battery_percent().is_some() { Value::Null } else { json!(21) },
        "transformer_voltage_category": null,
        "connected": c.online(),
        "updated_at": clock::iso_s(clock::now_ms() - 60_000),
    })
}

/// `devices/v1/devices/{id}/settings`.
pub fn device_settings(c: &SimCamera) -> Value {
    let mut v = c.device_settings.clone();
    v["motion_settings"]["motion_detection_enabled"] = json!(c.motion_detection_enabled());
    v["general_settings"]["live_view_disabled"] = json!(c.live_view_disabled());
    v
}

/// One `clients_api/dings/active` entry.
pub fn active_ding(e: &EventRec, c: &SimCamera, now_ms: i64) -> Value {
    let expires_in = (super::state::ACTIVE_DING_SECS - (now_ms - e.created_ms) / 1000).max(0);
    json!({
        "id": e.id,
        "id_str": e.id.to_string(),
        "state": "ringing",
        "protocol": "sip",
        "doorbot_id": c.id,
        "doorbot_description": c.name,
        "device_kind": c.kind,
        "motion": e.kind == data::events::EventKind::Motion,
        "kind": e.kind.as_str(),
        "snapshot_url": "",
        "expires_in": expires_in,
        "now": now_ms as f64 / 1000.0,
        "optimization_level": 1,
        "ding_encrypted": false,
        "requested_at": e.created_ms,
        "person_detected": e.person_detected,
    })
}
