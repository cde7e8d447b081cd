//! The simulator's own control API under `/_sim/` (not part of Ring's protocol):
//! trigger motion and dings, add and remove cameras, inject faults, revoke
//! tokens, switch the session rule, set the snapshot delay, switch a camera's
//! video codec mode and read the state.
//! No authentication; bind the simulator to loopback.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::data;
use super::error::{SimError, SimResult, parse_id, parse_json, parse_object};
use super::faults::ENDPOINTS;
use super::state::Fault;
use super::state::{SimEventKind, SimState};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerRequest {
    #[serde(default)]
    person_detected: bool,
    /// Overrides `SimOptions::recording_ready_delay` for this event.
    ready_after_ms: Option<u64>,
    /// Length of the event's recording in seconds (1..=30; default 4).
    clip_seconds: Option<u32>,
}

/// `POST /_sim/cameras/{id}/{motion|ding}`: adds an event (history, active dings,
/// events channel) and answers its ding id.
pub(crate) async fn trigger(
    State(st): State<Arc<SimState>>,
    Path((id, what)): Path<(String, String)>,
    body: Bytes,
) -> SimResult<Json<Value>> {
    let kind = match what.as_str() {
        "motion" => SimEventKind::Motion,
        "ding" => SimEventKind::Ding,
        _ => {
            return Err(SimError::not_found(format!(
                "unknown trigger {what:?}: use motion or ding"
            )));
        }
    };
    let id = parse_id("camera", &id)?;
    let req = parse_json::<Option<TriggerRequest>>(&body)?.unwrap_or_default();
    let delay = req
        .ready_after_ms
        .map(Duration::from_millis)
        .unwrap_or(st.options().recording_ready_delay);
    if let Some(s) = req.clip_seconds
        && !(1..=super::media_gen::MAX_SECONDS).contains(&s)
    {
        return Err(SimError::bad_request(format!(
            "clip_seconds {s} is out of range: allowed 1..={}",
            super::media_gen::MAX_SECONDS
        )));
    }
    let ev = st.add_event(id, kind, req.person_detected, delay, req.clip_seconds)?;
    Ok(Json(json!({
        "ding_id": ev.ding_id,
        "ding_id_str": ev.ding_id.to_string(),
        "camera_id": ev.camera_id,
        "kind": ev.kind,
        "person_detected": ev.person_detected,
        "created_at": ev.created_at,
        "snapshot_uuid": ev.snapshot_uuid,
    })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCameraRequest {
    name: String,
}

/// Longest camera name `POST /_sim/cameras` accepts (characters).
const MAX_CAMERA_NAME: usize = 64;

/// `POST /_sim/cameras` `{"name": "Shed"}`: adds a wired, online camera that
/// `ring_devices` lists from now on and that streams the generated clip;
/// answers its `{id, device_id}` (ids from [`data::cameras::ADDED_FIRST_ID`] up).
pub(crate) async fn add_camera(
    State(st): State<Arc<SimState>>,
    body: Bytes,
) -> SimResult<Json<Value>> {
    let req: AddCameraRequest = parse_json(&body)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > MAX_CAMERA_NAME {
        return Err(SimError::bad_request(format!(
            "name must have 1 to {MAX_CAMERA_NAME} characters"
        )));
    }
    let mut inner = st.lock();
    let id = inner
        .cameras
        .keys()
        .next_back()
        .map_or(data::cameras::ADDED_FIRST_ID, |last| {
            (last + 1).max(data::cameras::ADDED_FIRST_ID)
        });
    let cam = data::cameras::added_camera(id, name, super::clock::now_ms());
    let device_id = cam.device_id.clone();
    inner.cameras.insert(id, cam);
    Ok(Json(json!({"id": id, "device_id": device_id})))
}

/// `DELETE /_sim/cameras/{id}`: removes a camera and its events; `ring_devices`
/// no longer lists it. Answers `{"removed": id}`.
pub(crate) async fn remove_camera(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
) -> SimResult<Json<Value>> {
    let id = parse_id("camera", &id)?;
    let mut inner = st.lock();
    inner.camera(id)?;
    inner.cameras.remove(&id);
    inner.events.retain(|e| e.camera_id != id);
    Ok(Json(json!({"removed": id})))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoRequest {
    mode: super::live::h265::VideoMode,
}

/// `POST /_sim/cameras/{id}/video` `{"mode": "legacy"|"hevc"|"hevc_only"}`: how the
/// camera picks its live video codec from the next `live_view` on
/// (`docs/design/0009-h265.md`). Answers `{"camera_id", "mode", "hevc_enabled"}`.
pub(crate) async fn set_video(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> SimResult<Json<Value>> {
    let id = parse_id("camera", &id)?;
    let req: VideoRequest = parse_json(&body)?;
    let mut inner = st.lock();
    let cam = inner.camera_mut(id)?;
    cam.set_video_mode(req.mode);
    Ok(Json(json!({
        "camera_id": id,
        "mode": req.mode,
        "hevc_enabled": req.mode.hevc_enabled(),
    })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    endpoint: Option<String>,
    status: Option<u16>,
    count: Option<u32>,
    retry_after_s: Option<u64>,
    latency_ms: Option<u64>,
    body: Option<Value>,
    camera_id: Option<u64>,
    offline: Option<bool>,
}

/// `POST /_sim/faults`: one fault object or an array of them.
pub(crate) async fn add_faults(
    State(st): State<Arc<SimState>>,
    body: Bytes,
) -> SimResult<Json<Value>> {
    let reqs: Vec<FaultRequest> = match parse_json::<Value>(&body)? {
        Value::Array(a) => a
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .map_err(|e| SimError::bad_request(format!("invalid fault: {e}")))?,
        v @ Value::Object(_) => {
            vec![
                serde_json::from_value(v)
                    .map_err(|e| SimError::bad_request(format!("invalid fault: {e}")))?,
            ]
        }
        _ => {
            return Err(SimError::bad_request(
                "body must be a fault object or an array of them",
            ));
        }
    };
    // Validate everything before applying anything.
    let mut faults = Vec::new();
    let mut offline = Vec::new();
    for r in reqs {
        match (&r.endpoint, r.camera_id) {
            (Some(ep), None) => faults.push(validate(ep, &r)?),
            (None, Some(cam)) => {
                let off = r.offline.ok_or_else(|| {
                    SimError::bad_request("a camera fault needs \"offline\": true|false")
                })?;
                st.lock().camera(cam)?;
                offline.push((cam, off));
            }
            _ => {
                return Err(SimError::bad_request(
                    "a fault needs either \"endpoint\" (with status and/or latency_ms) or \"camera_id\" + \"offline\"",
                ));
            }
        }
    }
    let mut inner = st.lock();
    inner.faults.extend(faults);
    for (id, off) in offline {
        if let Ok(c) = inner.camera_mut(id) {
            c.offline_override = Some(off);
        }
    }
    Ok(Json(json!({"ok": true, "faults": inner.faults})))
}

fn validate(endpoint: &str, r: &FaultRequest) -> SimResult<Fault> {
    if endpoint != "*" && !ENDPOINTS.contains(&endpoint) {
        return Err(SimError::bad_request(format!(
            "unknown endpoint {endpoint:?}; known: * {}",
            ENDPOINTS.join(" ")
        )));
    }
    if let Some(s) = r.status
        && !(400..=599).contains(&s)
    {
        return Err(SimError::bad_request("status must be 400..=599"));
    }
    if r.status.is_none() && r.latency_ms.is_none() {
        return Err(SimError::bad_request(
            "an endpoint fault needs status and/or latency_ms",
        ));
    }
    if r.count == Some(0) {
        return Err(SimError::bad_request(
            "count must be at least 1 (omit it for until-cleared)",
        ));
    }
    if r.latency_ms.is_some_and(|ms| ms > 120_000) {
        return Err(SimError::bad_request("latency_ms must be at most 120000"));
    }
    Ok(Fault {
        endpoint: endpoint.to_string(),
        status: r.status,
        count: r.count,
        retry_after_s: r.retry_after_s,
        latency_ms: r.latency_ms,
        body: r.body.clone(),
    })
}

/// `DELETE /_sim/faults`: clears endpoint faults and camera offline overrides.
pub(crate) async fn clear_faults(State(st): State<Arc<SimState>>) -> Json<Value> {
    let mut inner = st.lock();
    inner.faults.clear();
    for c in inner.cameras.values_mut() {
        c.offline_override = None;
    }
    Json(json!({"ok": true}))
}

/// `POST /_sim/tokens/revoke`: revokes every refresh token and, unless the body
/// says `{"access_tokens": false}`, every access token (like removing the client
/// in Ring's Control Center).
pub(crate) async fn revoke_tokens(
    State(st): State<Arc<SimState>>,
    body: Bytes,
) -> SimResult<Json<Value>> {
    let obj = parse_object(&body)?;
    let access = match obj.get("access_tokens") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(SimError::bad_request("access_tokens must be a boolean")),
    };
    let mut inner = st.lock();
    let refresh = inner.refresh_tokens.len();
    inner.refresh_tokens.clear();
    let access_n = if access {
        let n = inner.access_tokens.len();
        inner.access_tokens.clear();
        n
    } else {
        0
    };
    Ok(Json(
        json!({"ok": true, "refresh_tokens_revoked": refresh, "access_tokens_revoked": access_n}),
    ))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionsRequest {
    /// Whether clients API calls need a session from now on.
    required: Option<bool>,
}

/// `POST /_sim/sessions` `{"required": bool}`: switches Ring's session rule on or
/// off. Answers `{"required", "sessions"}`.
pub(crate) async fn set_sessions(
    State(st): State<Arc<SimState>>,
    body: Bytes,
) -> SimResult<Json<Value>> {
    let req = parse_json::<Option<SessionsRequest>>(&body)?.unwrap_or_default();
    let mut inner = st.lock();
    if let Some(r) = req.required {
        inner.require_session = r;
    }
    Ok(Json(
        json!({"required": inner.require_session, "sessions": inner.sessions.len()}),
    ))
}

/// `DELETE /_sim/sessions`: ends every clients API session, as Ring does when it
/// purges session data. Answers `{"ended": N}`.
pub(crate) async fn end_sessions(State(st): State<Arc<SimState>>) -> Json<Value> {
    let mut inner = st.lock();
    let n = inner.sessions.len();
    inner.sessions.clear();
    Json(json!({ "ended": n }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotsRequest {
    /// How long a requested capture takes (ms, at most 60000).
    delay_ms: u64,
}

/// `POST /_sim/snapshots` `{"delay_ms": N}`: how long a capture requested with
/// `snapshots/timestamps` takes. Answers `{"delay_ms"}`.
pub(crate) async fn set_snapshots(
    State(st): State<Arc<SimState>>,
    body: Bytes,
) -> SimResult<Json<Value>> {
    let req: SnapshotsRequest = parse_json(&body)?;
    if req.delay_ms > 60_000 {
        return Err(SimError::bad_request("delay_ms must be at most 60000"));
    }
    st.lock().snapshot_delay = Duration::from_millis(req.delay_ms);
    Ok(Json(json!({ "delay_ms": req.delay_ms })))
}

/// `GET /_sim/state`.
pub(crate) async fn state(State(st): State<Arc<SimState>>) -> Json<Value> {
    Json(st.state_json())
}

/// Fallback for unknown paths: JSON 404.
pub(crate) async fn not_found(uri: axum::http::Uri) -> SimError {
    SimError::with_body(
        StatusCode::NOT_FOUND,
        json!({"error": "not found", "path": uri.path()}),
    )
}

/// Known path, wrong method: JSON 405.
pub(crate) async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> SimError {
    SimError::with_body(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({"error": format!("method {method} not allowed"), "path": uri.path()}),
    )
}
