//! `GET /_sim/state`: what the simulator has seen and holds (requests per
//! endpoint, tokens, tickets, sessions, faults, per-camera state), merged with
//! the live part's statistics.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{ACTIVE_DING_SECS, SimState};
use crate::sim::clock;

impl SimState {
    /// `GET /_sim/state`.
    pub(crate) fn state_json(&self) -> Value {
        let mut out = self.live_stats();
        let now_ms = clock::now_ms();
        let now = Instant::now();
        let inner = self.lock();
        let cameras: serde_json::Map<String, Value> = inner
            .cameras
            .values()
            .map(|c| {
                let events = inner.events.iter().filter(|e| e.camera_id == c.id).count();
                let active = inner
                    .events
                    .iter()
                    .filter(|e| e.camera_id == c.id && now_ms - e.created_ms < ACTIVE_DING_SECS * 1000)
                    .count();
                let v = json!({
                    "name": c.name,
                    "online": c.online(),
                    "light_on": c.has_light_siren.then_some(c.light_on),
                    "siren_on": c.has_light_siren.then_some(c.siren_seconds_remaining() > 0),
                    "siren_seconds_remaining": c.has_light_siren.then_some(c.siren_seconds_remaining()),
                    "motion_detection_enabled": c.motion_detection_enabled(),
                    "live_view_disabled": c.live_view_disabled(),
                    "video": c.video,
                    "subscribed": c.subscribed,
                    "subscribed_motions": c.subscribed_motions,
                    "events": events,
                    "active_dings": active,
                });
                (c.id.to_string(), v)
            })
            .collect();
        let requests: serde_json::Map<String, Value> = inner
            .requests
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        out.insert("requests".into(), Value::Object(requests));
        out.insert("token_generation".into(), json!(inner.token_generation));
        out.insert(
            "refresh_tokens_valid".into(),
            json!(inner.refresh_tokens.len()),
        );
        out.insert(
            "access_tokens_valid".into(),
            json!(inner.access_tokens.values().filter(|e| **e > now).count()),
        );
        out.insert("tickets_issued".into(), json!(inner.tickets_issued));
        out.insert(
            "tickets_outstanding".into(),
            json!(inner.tickets.values().filter(|e| **e > now).count()),
        );
        out.insert("sessions_created".into(), json!(inner.sessions_created));
        out.insert("sessions_required".into(), json!(inner.require_session));
        out.insert("sessions".into(), json!(inner.sessions.len()));
        out.insert(
            "snapshot_delay_ms".into(),
            json!(inner.snapshot_delay.as_millis() as u64),
        );
        out.insert("hardware_ids".into(), json!(inner.hardware_ids));
        out.insert("push_tokens".into(), json!(inner.push_tokens.len()));
        out.insert("faults".into(), json!(inner.faults));
        out.insert("cameras".into(), Value::Object(cameras));
        Value::Object(out)
    }
}
