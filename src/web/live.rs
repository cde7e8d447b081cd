//! Live-stream endpoints (seed-compatible):
//! `POST /api/ring/cameras/:id/live/start`, `GET /api/ring/cameras/:id/live`,
//! `POST /api/ingest/stop`.
//!
//! The status carries the stream's [`crate::media::LiveStats`] (`stats`), which the
//! console's Stats overlay polls once a second.
//!
//! `live/start` holds the stream open through [`crate::media::Keeper`] for a
//! bounded time (default 10 min, `{"duration_s": N}` up to 1 h) so a forgotten
//! start never streams forever; viewers (RTSP, WebRTC) hold their own leases.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::api::{find, request_host};
use super::{ApiError, WebState};
use crate::base::{CameraId, ErrorKind};

/// Default and longest hold of `live/start`.
const DEFAULT_HOLD: Duration = Duration::from_secs(600);
const MAX_HOLD_S: u64 = 3600;

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/ring/cameras/{id}/live/start", post(start))
        .route("/api/ring/cameras/{id}/live", get(status))
        .route("/api/ingest/stop", post(stop))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StartBody {
    duration_s: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StopBody {
    camera_id: Option<serde_json::Value>,
}

pub(super) fn parse_body<T: for<'de> Deserialize<'de> + Default>(
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

fn live_json(st: &WebState, id: CameraId, slug: &str, host: Option<&str>) -> serde_json::Value {
    let stream = st.hub.stream(id);
    let status = stream.status().borrow().clone();
    let viewers = stream.viewers();
    serde_json::json!({
        "camera_id": id,
        "status": status.state,
        "video_codec": stream.video_params().map(|p| p.codec),
        "last_error": status.last_error,
        "learned_session_cap_s": status.learned_cap_ms.map(|ms| ms as f64 / 1000.0),
        "viewers": viewers,
        "held_for_s": st.keeper.remaining(id).map(|d| d.as_secs()),
        "rtsp_url": st.urls.get().for_request(host).rtsp(slug),
        "stats": stream.stats(),
    })
}

async fn start(
    State(st): State<WebState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let e = find(&st, &id)?;
    let b: StartBody = parse_body(&body)?;
    let hold = match b.duration_s {
        None => DEFAULT_HOLD,
        Some(s) if (1..=MAX_HOLD_S).contains(&s) => Duration::from_secs(s),
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "duration_s={s} is invalid; allowed 1..={MAX_HOLD_S}"
            )));
        }
    };
    let caps = e.camera.capabilities();
    if !caps.live_view {
        return Err(ApiError::new(
            ErrorKind::FailedPrecondition,
            format!(
                "camera {} cannot stream: {}",
                e.camera.name,
                caps.reason.unwrap_or_default()
            ),
        ));
    }
    st.keeper.start(e.camera.id, hold);
    Ok(Json(live_json(&st, e.camera.id, &e.slug, request_host(&headers))).into_response())
}

async fn status(
    State(st): State<WebState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let e = find(&st, &id)?;
    Ok(Json(live_json(&st, e.camera.id, &e.slug, request_host(&headers))).into_response())
}

async fn stop(State(st): State<WebState>, body: Bytes) -> Result<Response, ApiError> {
    let b: StopBody = parse_body(&body)?;
    let stopped = match b.camera_id {
        None | Some(serde_json::Value::Null) => st.keeper.stop_all(),
        Some(v) => {
            let key = match &v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return Err(ApiError::bad_request("cameraId must be a string or number")),
            };
            let e = find(&st, &key)?;
            if st.keeper.stop(e.camera.id) {
                vec![e.camera.id]
            } else {
                vec![]
            }
        }
    };
    // The hub keys, as strings (the answer's shape since the endpoint exists).
    let stopped: Vec<String> = stopped.iter().map(ToString::to_string).collect();
    Ok(Json(serde_json::json!({ "stopped": stopped })).into_response())
}
