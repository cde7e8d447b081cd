//! Snapshots (ring-api.md §5): the current `GET /snapshots/next/{id}` and the
//! legacy cycle python-ring-doorbell uses — `POST clients_api/snapshots/timestamps`
//! *requests* a capture, which is done [`SimOptions::snapshot_delay`] later (Ring
//! takes a fresh picture; wired cameras within a second or two); the client polls
//! the same endpoint until the timestamp is newer than its request, then
//! `GET clients_api/snapshots/image/{id}`. Pictures are the camera's generated
//! JPEG ([`super::media_gen`]).
//!
//! [`SimOptions::snapshot_delay`]: super::SimOptions::snapshot_delay

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::clock;
use super::data::cameras::SimCamera;
use super::error::{Pairs, SimError, SimResult, parse_id, parse_json};
use super::media::media_failed;
use super::media_gen;
use super::state::SimState;

/// Checks a camera can take a snapshot now and returns it.
fn snapshot_camera(st: &SimState, id: u64) -> SimResult<SimCamera> {
    let inner = st.lock();
    let cam = inner.camera(id)?;
    if !cam.online() {
        return Err(SimError::camera_offline(id));
    }
    if !cam.motion_detection_enabled() {
        return Err(SimError::not_found(format!(
            "device {id}: snapshots are unavailable while motion detection is disabled"
        )));
    }
    Ok(cam.clone())
}

async fn jpeg_response(cam: &SimCamera, time_ms: i64) -> Response {
    match media_gen::camera_jpeg(&cam.name, cam.pattern, cam.media_file.clone()).await {
        Ok(b) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/jpeg".to_string()),
                (header::CACHE_CONTROL, "no-cache".to_string()),
                (
                    header::HeaderName::from_static("x-time-millis"),
                    time_ms.to_string(),
                ),
            ],
            b,
        )
            .into_response(),
        Err(e) => media_failed(&e),
    }
}

/// Finds the event of a push `snapshot_uuid` (anything after `:` is ignored).
fn event_by_uuid(st: &SimState, uuid: &str) -> SimResult<(u64, i64)> {
    let uuid = uuid.split(':').next().unwrap_or("");
    let inner = st.lock();
    inner
        .events
        .iter()
        .find(|e| !uuid.is_empty() && e.snapshot_uuid == uuid)
        .map(|e| (e.camera_id, e.created_ms))
        .ok_or_else(|| SimError::not_found(format!("snapshot {uuid:?} not found")))
}

/// `GET /snapshots/next/{id}` (query `extras=force`, `after-ms`, `max-wait-ms`, `uuid`).
pub(crate) async fn next(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> SimResult<Response> {
    st.gate("snapshot", &headers).await?;
    st.authorize(&headers)?;
    let id = parse_id("device", &id)?;
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let cam = snapshot_camera(&st, id)?;
    if let Some(uuid) = get("uuid").filter(|u| !u.is_empty()) {
        let (cam_id, ms) = event_by_uuid(&st, uuid)?;
        if cam_id != id {
            return Err(SimError::not_found(format!(
                "snapshot {uuid:?} is not from device {id}"
            )));
        }
        return Ok(jpeg_response(&cam, ms).await);
    }
    let after_ms = match get("after-ms") {
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| SimError::bad_request("after-ms must be a number"))?,
        ),
        None => None,
    };
    let force = get("extras") == Some("force");
    let now = clock::now_ms();
    let time_ms = {
        let mut inner = st.lock();
        let c = inner.camera_mut(id)?;
        // Wired cameras refresh every 30 s; battery ones only when forced.
        let stale = !c.on_battery() && now - c.snapshot_ms > 30_000;
        if force || stale || after_ms.is_some_and(|a| c.snapshot_ms <= a) {
            c.snapshot_ms = now;
        }
        c.snapshot_ms
    };
    Ok(jpeg_response(&cam, time_ms).await)
}

/// `GET /clients_api/snapshots/image/{id}`.
pub(crate) async fn image(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> SimResult<Response> {
    st.gate("snapshot", &headers).await?;
    st.authorize_client(&headers)?;
    let id = parse_id("device", &id)?;
    st.lock().camera_mut(id)?.settle_snapshot(clock::now_ms());
    let cam = snapshot_camera(&st, id)?;
    Ok(jpeg_response(&cam, cam.snapshot_ms).await)
}

/// `GET /clients_api/snapshots/uuid?uuid=`.
pub(crate) async fn by_uuid(
    State(st): State<Arc<SimState>>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> SimResult<Response> {
    st.gate("snapshot", &headers).await?;
    st.authorize_client(&headers)?;
    let uuid = q
        .iter()
        .find(|(k, _)| k == "uuid")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| SimError::bad_request("uuid is required"))?;
    let (cam_id, ms) = event_by_uuid(&st, uuid)?;
    let cam = st.lock().camera(cam_id)?.clone();
    Ok(jpeg_response(&cam, ms).await)
}

#[derive(serde::Deserialize)]
struct DoorbotIds {
    doorbot_ids: Vec<u64>,
}

/// `POST /clients_api/snapshots/timestamps` with `{doorbot_ids:[..]}`: requests
/// a capture on each online camera with motion detection on (unless one is
/// already under way) and answers the last finished capture times.
pub(crate) async fn timestamps(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> SimResult<axum::Json<Value>> {
    st.gate("snapshot", &headers).await?;
    st.authorize_client(&headers)?;
    let req: DoorbotIds = parse_json(&body)?;
    let now = clock::now_ms();
    let mut inner = st.lock();
    let delay = i64::try_from(inner.snapshot_delay.as_millis()).unwrap_or(i64::MAX);
    let ts: Vec<Value> = req
        .doorbot_ids
        .iter()
        .filter_map(|id| {
            let c = inner.cameras.get_mut(id)?;
            c.settle_snapshot(now);
            if c.snapshot_due_ms.is_none() && c.online() && c.motion_detection_enabled() {
                c.snapshot_due_ms = Some(now.saturating_add(delay));
                c.settle_snapshot(now);
            }
            Some(json!({"doorbot_id": c.id, "timestamp": c.snapshot_ms}))
        })
        .collect();
    Ok(axum::Json(json!({ "timestamps": ts })))
}

/// `PUT /clients_api/snapshots/update_all` with `{doorbot_ids:[..], refresh:true}`: 204.
pub(crate) async fn update_all(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> SimResult<Response> {
    st.gate("snapshot", &headers).await?;
    st.authorize_client(&headers)?;
    let req: DoorbotIds = parse_json(&body)?;
    let now = clock::now_ms();
    let mut inner = st.lock();
    for id in req.doorbot_ids {
        if let Some(c) = inner.cameras.get_mut(&id)
            && c.online()
            && c.motion_detection_enabled()
        {
            c.snapshot_ms = now;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
