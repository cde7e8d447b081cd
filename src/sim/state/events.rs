//! Motions and dings created at run time through the control API
//! (`POST /_sim/trigger`): added to the camera's history and broadcast as a
//! [`SimEvent`] to the push channel and to tests. The seeded history is in
//! `crate::sim::data::events`.

use std::time::Duration;

use axum::http::StatusCode;
use serde::Serialize;
use tokio::sync::broadcast;

use super::SimState;
use crate::sim::clock;
use crate::sim::data::events::{EventKind, EventRec, RecState, ding_id, snapshot_uuid};
use crate::sim::error::{SimError, SimResult};

/// Kind of a [`SimEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimEventKind {
    /// Motion detected.
    Motion,
    /// Doorbell pressed.
    Ding,
}

/// A motion or ding created through the control API, broadcast to subscribers of
/// [`SimState::events`] (the push channel emulation, tests).
#[derive(Clone, Debug, Serialize)]
pub struct SimEvent {
    /// `motion` or `ding`.
    pub kind: SimEventKind,
    /// Numeric camera id.
    pub camera_id: u64,
    /// Ding id (64-bit, 19 digits; Ring sends it as a string in v2 pushes).
    pub ding_id: u64,
    /// Hex device id of the camera.
    pub device_id: String,
    /// Camera name (`description`).
    pub camera_name: String,
    /// Ring `kind` of the camera.
    pub device_kind: String,
    /// Location id of the camera.
    pub location_id: String,
    /// Computer vision saw a person.
    pub person_detected: bool,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Creation time, ISO 8601 with ms (`2024-08-29T15:33:41.123Z`).
    pub created_at: String,
    /// Snapshot uuid, as pushes carry it in `img.snapshot_uuid` (without `:...`).
    pub snapshot_uuid: String,
}

impl SimState {
    /// Subscribes to motion/ding events created through the control API.
    pub fn events(&self) -> broadcast::Receiver<SimEvent> {
        self.events_tx.subscribe()
    }

    /// Adds an event for `camera_id` (control API), broadcasts it and returns it.
    pub(crate) fn add_event(
        &self,
        camera_id: u64,
        kind: SimEventKind,
        person_detected: bool,
        ready_after: Duration,
        clip_s: Option<u32>,
    ) -> SimResult<SimEvent> {
        let now = clock::now_ms();
        let ev = {
            let mut inner = self.lock();
            let cam = inner
                .cameras
                .get(&camera_id)
                .ok_or_else(|| SimError::not_found(format!("camera {camera_id} not found")))?
                .clone();
            if kind == SimEventKind::Ding && !cam.doorbell() {
                return Err(SimError::bad_request(format!(
                    "camera {camera_id} is not a doorbell"
                )));
            }
            if !cam.online() {
                return Err(SimError::new(
                    StatusCode::CONFLICT,
                    format!("camera {camera_id} is offline"),
                ));
            }
            inner.seq += 1;
            let seq = inner.seq;
            // Keep ids strictly increasing even within one millisecond.
            let newest = inner.events.iter().map(|e| e.id).max().unwrap_or(0);
            let id = ding_id(now, seq).max(newest + 1);
            let rec = if cam.show_recordings {
                RecState::ReadyAt(now + ready_after.as_millis() as i64)
            } else {
                RecState::None
            };
            let uuid = snapshot_uuid(camera_id, now);
            inner.events.push(EventRec {
                id,
                camera_id,
                created_ms: now,
                kind: match kind {
                    SimEventKind::Motion => EventKind::Motion,
                    SimEventKind::Ding => EventKind::Ding,
                },
                person_detected,
                rec,
                answered: false,
                favorite: false,
                duration_s: clip_s.unwrap_or(20),
                clip_s,
                snapshot_uuid: uuid.clone(),
            });
            if let Some(c) = inner.cameras.get_mut(&camera_id) {
                c.snapshot_ms = now;
            }
            SimEvent {
                kind,
                camera_id,
                ding_id: id,
                device_id: cam.device_id.clone(),
                camera_name: cam.name.clone(),
                device_kind: cam.kind.clone(),
                location_id: cam.location_id.clone(),
                person_detected,
                created_at_ms: now,
                created_at: clock::iso_ms(now),
                snapshot_uuid: uuid,
            }
        };
        // No receivers is fine.
        let _ = self.events_tx.send(ev.clone());
        Ok(ev)
    }
}
