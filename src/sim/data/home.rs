//! The simulated account: its two locations, the chime (not a camera) and the
//! owners of its devices.

use serde_json::{Value, json};

/// Location id of "Home".
pub const HOME_LOCATION_ID: &str = "5d1a2f3e-0001-4c6b-9a51-000000000001";
/// Location id of "Cabin".
pub const CABIN_LOCATION_ID: &str = "5d1a2f3e-0002-4c6b-9a51-000000000002";

/// Numeric id of the chime (not a camera).
pub const CHIME_ID: u64 = 10007;

/// The two locations: `(location_id, name, address)`.
pub fn locations() -> [(&'static str, &'static str, &'static str); 2] {
    [
        (HOME_LOCATION_ID, "Home", "1 Simulator Way"),
        (CABIN_LOCATION_ID, "Cabin", "42 Lakeside Road"),
    ]
}

/// Time zone of a location.
pub fn location_time_zone(location_id: &str) -> &'static str {
    if location_id == CABIN_LOCATION_ID {
        "America/Denver"
    } else {
        "Europe/Berlin"
    }
}

/// The chime (`chimes[]`), as served.
pub fn chime_json() -> Value {
    json!({
        "id": CHIME_ID,
        "device_id": "a4c1380f0007",
        "description": "Hallway Chime",
        "kind": "chime_pro_v2",
        "location_id": HOME_LOCATION_ID,
        "time_zone": location_time_zone(HOME_LOCATION_ID),
        "firmware_version": "chime-2.3.4",
        "address": "1 Simulator Way",
        "alerts": {"connection": "online"},
        "do_not_disturb": {"seconds_left": 0},
        "features": {"ringtones_enabled": true},
        "owned": true,
        "owner": owner_json(),
        "settings": {"volume": 6, "ding_audio_id": null, "ding_audio_user_id": null,
                     "motion_audio_id": null, "motion_audio_user_id": null},
    })
}

/// The demo user's numeric id.
pub const DEMO_USER_ID: u64 = 4_200_042;

/// The `owner` object of owned devices.
pub fn owner_json() -> Value {
    json!({"id": DEMO_USER_ID, "email": crate::sim::DEMO_EMAIL, "first_name": "Demo", "last_name": "User"})
}

/// The `owner` object of the shared doorbell (someone else).
pub fn other_owner_json() -> Value {
    json!({"id": 4_200_777, "email": "neighbour@ring-bridge.local", "first_name": "Nina", "last_name": "Neighbour"})
}
