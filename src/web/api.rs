//! REST handlers under `/api/ring/...`, `/healthz` and `/metrics`.
//! The contract is documented in `docs/API.md`.

use std::collections::HashMap;

use axum::Json;
use axum::Router;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::{ApiError, WebState};
use crate::base::ErrorKind;
use crate::cameras::Entry;
use crate::ring::{AuthState, Camera, HistoryQuery};

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/ring/cameras", get(cameras))
        .route("/api/ring/cameras/{id}", get(camera))
        .route("/api/ring/cameras/{id}/capabilities", get(capabilities))
        .route("/api/ring/cameras/{id}/history", get(history))
        .route(
            "/api/ring/cameras/{id}/recordings/{event_id}",
            get(recording),
        )
        .route("/api/ring/cameras/{id}/snapshot", get(snapshot))
        .route("/api/ring/auth", get(auth))
        .fallback(|| async { ApiError::not_found("no such endpoint; see docs/API.md") })
}

/// A camera as the REST API shows it.
#[derive(Serialize)]
struct CameraView<'a> {
    #[serde(flatten)]
    camera: &'a Camera,
    slug: &'a str,
    rtsp_url: Option<String>,
    whep_url: String,
    stream_status: crate::media::StreamState,
    /// Codec of the current or last live stream (`h264`/`h265`), null before one.
    video_codec: Option<crate::media::VideoCodec>,
}

/// The request's `Host` header, for URLs in answers.
pub(super) fn request_host(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

fn view<'a>(st: &WebState, e: &'a Entry, host: Option<&str>) -> CameraView<'a> {
    let rtsp_url = st.urls.get().for_request(host).rtsp(&e.slug);
    let status = st.hub.status(e.camera.id).borrow().clone();
    CameraView {
        camera: &e.camera,
        slug: &e.slug,
        rtsp_url,
        whep_url: format!("/api/webrtc/{}/whep", e.slug),
        stream_status: status.state,
        video_codec: status.video_codec,
    }
}

/// Fails with the right status when the camera list is not usable yet.
fn loaded(st: &WebState) -> Result<crate::cameras::Snapshot, ApiError> {
    let snap = st.directory.snapshot();
    if snap.loaded {
        return Ok(snap);
    }
    if let AuthState::ReauthRequired { reason } = &*st.ring.auth_state().borrow() {
        return Err(ApiError::new(
            ErrorKind::Unauthenticated,
            format!("Ring re-authentication needed: {reason}; run `ring-bridge auth`"),
        ));
    }
    match snap.last_error {
        Some(e) => Err(ApiError::new(
            ErrorKind::Unavailable,
            format!("Ring is unreachable: {e}"),
        )),
        None => Err(ApiError::new(
            ErrorKind::Cancelled,
            "camera list is still loading; retry in a moment",
        )),
    }
}

pub(super) fn find(st: &WebState, id: &str) -> Result<Entry, ApiError> {
    let snap = loaded(st)?;
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::bad_request(format!(
            "camera id {id:?} is malformed; use the numeric id, device_id or slug from /api/ring/cameras"
        )));
    }
    snap.find(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no camera {id:?}; see /api/ring/cameras")))
}

/// Liveness and Ring state. Anyone may ask (container health checks), but only
/// a trusted request (see [`super::access::Access::trusts`]) sees the details
/// (why re-authentication is needed, the last Ring error), which can name files
/// and addresses.
async fn healthz(
    State(st): State<WebState>,
    peer: super::access::Peer,
    headers: axum::http::HeaderMap,
) -> Response {
    let snap = st.directory.snapshot();
    let auth = st.ring.auth_state().borrow().clone();
    let push = st.push.borrow().clone();
    let trusted = st.access.trusts(super::access::peer_ip(&peer), &headers);
    let ring = if trusted {
        serde_json::json!({ "auth": auth, "cameras_loaded": snap.loaded, "last_error": snap.last_error })
    } else {
        let state = match auth {
            AuthState::Unknown => "unknown",
            AuthState::Authenticated => "authenticated",
            AuthState::ReauthRequired { .. } => "reauth_required",
        };
        serde_json::json!({
            "auth": { "state": state },
            "cameras_loaded": snap.loaded,
            "reachable": snap.last_error.is_none(),
        })
    };
    let mut push_view = serde_json::json!({
        "state": push.health(),
        "degraded": push.degraded,
        "missed_events": push.missed_events,
        "reregistrations": push.reregistrations,
        "events": push.events,
    });
    if trusted {
        push_view["last_error"] = serde_json::json!(push.last_error);
    }
    (
        StatusCode::OK,
        Json(serde_json::json!({
            "status": "ok",
            "ring": ring,
            "push": push_view,
            // Which parts lack GStreamer elements: state, not secrets.
            "degraded": *st.degraded,
        })),
    )
        .into_response()
}

async fn metrics(State(st): State<WebState>) -> Response {
    let snap = st.directory.snapshot();
    let online = snap.cameras.iter().filter(|e| e.camera.online).count();
    let authed = matches!(*st.ring.auth_state().borrow(), AuthState::Authenticated);
    let mut text = st.metrics.render(&[
        (
            "ringbridge_cameras",
            "Cameras known",
            snap.cameras.len() as f64,
        ),
        ("ringbridge_cameras_online", "Cameras online", online as f64),
        (
            "ringbridge_ring_authenticated",
            "1 when Ring auth is healthy",
            f64::from(u8::from(authed)),
        ),
        (
            "ringbridge_ring_reachable",
            "1 when the last device refresh succeeded",
            f64::from(u8::from(snap.loaded && snap.last_error.is_none())),
        ),
    ]);
    let live: Vec<_> = st
        .hub
        .cameras()
        .into_iter()
        .map(|id| {
            let stats = st.hub.stream(id).stats();
            (id, stats)
        })
        .collect();
    super::metrics::render_live(&mut text, &live);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn cameras(
    State(st): State<WebState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let snap = loaded(&st)?;
    let views: Vec<_> = snap
        .cameras
        .iter()
        .map(|e| view(&st, e, request_host(&headers)))
        .collect();
    Ok(Json(views).into_response())
}

async fn camera(
    State(st): State<WebState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let e = find(&st, &id)?;
    Ok(Json(view(&st, &e, request_host(&headers))).into_response())
}

async fn capabilities(
    State(st): State<WebState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let e = find(&st, &id)?;
    Ok(Json(e.camera.capabilities()).into_response())
}

async fn history(
    State(st): State<WebState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let e = find(&st, &id)?;
    let limit = match q.get("limit") {
        None => 25,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit={v:?} is invalid; allowed: an integer 1..=200"
                )));
            }
        },
    };
    let older_than = q.get("older_than").filter(|s| !s.is_empty()).cloned();
    if let Some(c) = &older_than
        && (c.len() > 512 || c.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request("older_than is malformed"));
    }
    let page = st
        .ring
        .history(e.camera.id, HistoryQuery { limit, older_than })
        .await?;
    let events: Vec<_> = page
        .events
        .iter()
        .map(|ev| {
            let mut v = serde_json::to_value(ev).unwrap_or_default();
            v["playable"] = ev.playable().into();
            v["recording_path"] = if ev.playable() {
                format!("/api/ring/cameras/{}/recordings/{}", e.camera.id, ev.id).into()
            } else {
                serde_json::Value::Null
            };
            v
        })
        .collect();
    Ok(Json(serde_json::json!({ "events": events, "next": page.next })).into_response())
}

async fn recording(
    State(st): State<WebState>,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let _cam = find(&st, &id)?;
    if event_id.is_empty() || event_id.len() > 32 || !event_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "event id {event_id:?} is malformed; expected the numeric ding id"
        )));
    }
    let url = st.ring.recording_url(&event_id).await?;
    Ok((StatusCode::FOUND, [(header::LOCATION, url.as_str())]).into_response())
}

async fn snapshot(
    State(st): State<WebState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let e = find(&st, &id)?;
    if !e.camera.online {
        return Err(ApiError::new(
            ErrorKind::FailedPrecondition,
            format!("camera {} is offline", e.camera.name),
        ));
    }
    let snap = st.ring.snapshot(e.camera.id).await?;
    let mut resp = (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        snap.jpeg,
    )
        .into_response();
    if let Some(ms) = snap.captured_at_ms
        && let Ok(v) = ms.to_string().parse()
    {
        resp.headers_mut().insert("x-time-millis", v);
    }
    Ok(resp)
}

async fn auth(State(st): State<WebState>) -> Response {
    Json(st.ring.auth_state().borrow().clone()).into_response()
}
