//! The `event_select` entity of cameras with recordings: HA picks which recorded
//! event the RTSP event stream plays (`Latest`, `Motion 1..5`, `Ding 1..5`,
//! `Person 1..5`, `On-demand 1..5`); the attributes name the event and carry a
//! recording URL that is refreshed before it expires, after each new event of the
//! camera and whenever the selection changes elsewhere (REST, console).
//!
//! Selection and resolution live in [`crate::events::replay`]; the calls to Ring
//! run in the bridge's `JoinSet` and come back as [`Done::EventSelect`].

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tracing::{info, warn};

use super::bridge::{Bridge, Done, RING_CALL_TIMEOUT};
use super::state::{EventSelectDone, EventSelectState};
use crate::base::CameraId;
use crate::base::error::chain;
use crate::events::replay::{Replay, Resolved, Selection, url_lifetime};

/// Refresh cadence when the URL does not say how long it lives.
const DEFAULT_REFRESH: Duration = Duration::from_secs(600);
/// Retry after a failed refresh (Ring down, recording still processing).
const RETRY_REFRESH: Duration = Duration::from_secs(30);
/// Bounds of the refresh cadence.
const MIN_REFRESH: Duration = Duration::from_secs(30);
const MAX_REFRESH: Duration = Duration::from_secs(3600);

/// Resolves (and, with `select`, first changes) the camera's selection and gets a
/// fresh recording URL for the attributes. Failures become attributes with
/// `error`; the selection shown stays the one in force.
async fn resolve(
    replay: Replay,
    camera_id: CameraId,
    select: Option<Selection>,
) -> Result<EventSelectDone, String> {
    if let Some(sel) = select {
        tokio::time::timeout(RING_CALL_TIMEOUT, replay.select(camera_id, true, sel))
            .await
            .map_err(|_| "Ring did not answer in time".to_string())?
            .map_err(|e| chain(&e))?;
    }
    let label = replay.selection(camera_id).label().unwrap_or_default();
    let fresh = tokio::time::timeout(RING_CALL_TIMEOUT, replay.fresh_url(camera_id, true)).await;
    let done = match fresh {
        Ok(Ok((r, url))) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let refresh_in = url_lifetime(&url, now)
                .map(|d| d.mul_f64(0.8))
                .unwrap_or(DEFAULT_REFRESH)
                .clamp(MIN_REFRESH, MAX_REFRESH);
            EventSelectDone {
                state: EventSelectState {
                    label,
                    attributes: attributes(&r, Some(url.as_str()), None),
                },
                refresh_in,
            }
        }
        Ok(Err(e)) => {
            // Still say which event is selected when only its URL failed.
            let resolved = replay.resolve(camera_id, true).await.ok();
            EventSelectDone {
                state: EventSelectState {
                    label,
                    attributes: match &resolved {
                        Some(r) => attributes(r, None, Some(&chain(&e))),
                        None => bytes::Bytes::from(json!({ "error": chain(&e) }).to_string()),
                    },
                },
                refresh_in: RETRY_REFRESH,
            }
        }
        Err(_) => EventSelectDone {
            state: EventSelectState {
                label,
                attributes: bytes::Bytes::from(
                    json!({ "error": "Ring did not answer in time" }).to_string(),
                ),
            },
            refresh_in: RETRY_REFRESH,
        },
    };
    Ok(done)
}

fn attributes(r: &Resolved, url: Option<&str>, error: Option<&str>) -> bytes::Bytes {
    let e = &r.event;
    let mut v = json!({
        "eventId": e.id,
        "recordingUrl": url,
        "kind": e.kind,
        "createdAt": e.created_at,
        "personDetected": e.person_detected,
        "recordingStatus": e.recording_status,
        "durationS": e.duration_s,
    });
    if let Some(err) = error {
        v["error"] = json!(err);
    }
    bytes::Bytes::from(v.to_string())
}

impl Bridge {
    /// Runs a refresh (or, with `select`, a change) of the camera's
    /// `event_select` unless one is running or the camera has no recordings.
    pub(super) fn refresh_event_select(&mut self, camera_id: CameraId, select: Option<Selection>) {
        let Some(replay) = self.deps.replay.clone() else {
            return;
        };
        let recordings = self
            .cameras
            .iter()
            .any(|e| e.camera.id == camera_id && e.camera.recordings_enabled);
        let Some(st) = self.cams.get_mut(&camera_id) else {
            return;
        };
        if !recordings || (st.event_refresh_inflight && select.is_none()) {
            return;
        }
        st.event_refresh_inflight = true;
        st.event_refresh_at = None;
        let selecting = select.is_some();
        self.tasks.spawn(async move {
            Done::EventSelect {
                camera_id,
                selecting,
                result: resolve(replay, camera_id, select).await,
            }
        });
    }

    /// An `event_select` command: the option HA chose.
    pub(super) fn event_select_command(&mut self, camera_id: CameraId, text: &str) {
        if self.deps.replay.is_none() {
            warn!(
                camera = %camera_id,
                "event selection is not available in this ring-bridge; ignored"
            );
            return;
        }
        match Selection::parse_label(text) {
            Ok(sel) => {
                info!(camera = %camera_id, select = %text, "event stream selection from MQTT");
                self.refresh_event_select(camera_id, Some(sel));
            }
            Err(e) => {
                let msg = chain(&e);
                self.intake
                    .warn(&format!("bad select {camera_id}"), |suppressed| {
                        warn!(camera = %camera_id, err = %msg, suppressed, "event_select command ignored");
                    });
            }
        }
    }

    /// A selection or refresh finished: publish it and schedule the next refresh.
    pub(super) fn event_select_done(
        &mut self,
        camera_id: CameraId,
        selecting: bool,
        result: Result<EventSelectDone, String>,
    ) {
        let Some(st) = self.cams.get_mut(&camera_id) else {
            return;
        };
        st.event_refresh_inflight = false;
        match result {
            Ok(done) => {
                st.event_select = Some(done.state);
                st.event_refresh_at = Some(Instant::now() + done.refresh_in);
            }
            Err(e) => {
                // The selection was refused; the old one stays (republished so HA
                // reverts its optimistic display).
                if selecting {
                    warn!(camera = %camera_id, err = %e, "event_select command failed");
                }
                st.event_refresh_at = Some(Instant::now() + RETRY_REFRESH);
            }
        }
        // Force the state out again even when unchanged (HA shows the option it
        // sent until the state topic says otherwise).
        let cam = self.cameras.iter().find(|e| e.camera.id == camera_id);
        if let Some(cam) = cam.map(|e| e.camera.clone()) {
            let topic = self.topics.entity(
                &cam.location_id,
                &cam.device_id,
                super::entities::keys::EVENT_SELECT,
                super::topics::Leaf::State,
            );
            self.published.remove(&topic);
        }
        self.publish_state(camera_id);
    }

    /// Cameras whose URL refresh is due (called from the bridge's timers).
    pub(super) fn due_event_refreshes(&mut self, now: Instant) {
        let due: Vec<CameraId> = self
            .cams
            .iter_mut()
            .filter(|(_, st)| st.event_refresh_at.is_some_and(|t| t <= now))
            .map(|(id, st)| {
                st.event_refresh_at = None;
                *id
            })
            .collect();
        for id in due {
            self.refresh_event_select(id, None);
        }
    }
}
