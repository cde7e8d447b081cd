//! `POST /api/ring/cameras/{id}/announce`: plays a clip or speech on the
//! camera's speaker through [`crate::announce::Announcer`] and answers once it
//! has played (`docs/API.md`, *Announce*).
//!
//! The body is either an audio file (`Content-Type` `audio/wav`, `audio/mpeg`,
//! `audio/ogg` or `audio/opus`; query `volume` and `wait_s`), JSON
//! `{"url": ...}` or `{"text": ..., "lang": ...}` (plus `volume`, `wait_s`).
//! (`text/plain` cannot be used: `web::guard` refuses POSTs with a body type a
//! page can send cross-site.) Errors: 400 bad request, 413 file too large or too
//! long, 415 not an accepted audio type or not decodable, 409 the camera cannot
//! talk or someone else holds its talk floor (`holder` and `by` name them).

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::api::find;
use super::{ApiError, WebState};
use crate::announce::{AnnounceError, AnnounceRequest, AudioType, Clip, JsonRequest};
use crate::base::{ErrorKind, ResultExt};

pub(super) fn routes() -> Router<WebState> {
    Router::new().route("/api/ring/cameras/{id}/announce", post(announce))
}

/// Query of an audio upload.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    volume: Option<u8>,
    wait_s: Option<u64>,
}

/// An announcement error as HTTP: the usual `{error, message}`, with 413/415
/// for bad files and `holder`/`by` when the talk floor is taken.
fn announce_error(e: AnnounceError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error = match status.as_u16() {
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        _ => e.kind().as_str(),
    };
    let mut body = serde_json::json!({
        "error": error,
        "message": crate::base::error::chain(&e),
    });
    if let AnnounceError::FloorTaken { holder, by, .. } = &e {
        body["holder"] = holder.clone().into();
        body["by"] = serde_json::to_value(by).unwrap_or_default();
    }
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), err = %body["message"], "announcement failed");
    }
    (status, Json(body)).into_response()
}

async fn announce(
    State(st): State<WebState>,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let e = find(&st, &id)?;
    let caps = e.camera.capabilities();
    if !caps.talk {
        return Err(ApiError::new(
            ErrorKind::FailedPrecondition,
            format!(
                "camera {} cannot talk: {}",
                e.camera.name,
                caps.reason.unwrap_or_else(|| "no talkback".into())
            ),
        ));
    }
    let max = st.announce.options().max_bytes;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // JSON and text are small; only audio gets the file limit.
    let limit = if mime.starts_with("audio/") {
        max
    } else {
        64 * 1024
    };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return Ok(announce_error(AnnounceError::TooLarge { limit })),
    };
    let req = match mime.as_str() {
        "application/json" => {
            if q.volume.is_some() || q.wait_s.is_some() {
                return Err(ApiError::bad_request(
                    "with a JSON body, give volume and wait_s in the body",
                ));
            }
            JsonRequest::parse(&bytes).and_then(JsonRequest::into_request)
        }
        _ => AudioType::parse(&ct).map(|kind| AnnounceRequest {
            clip: Clip::Audio { data: bytes, kind },
            volume: q.volume,
            wait: std::time::Duration::from_secs(q.wait_s.unwrap_or(0)),
        }),
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => return Ok(announce_error(e)),
    };
    match st.announce.announce(e.camera.id, req).await {
        Ok(a) => {
            let mut v = serde_json::to_value(&a).unwrap_or_default();
            v["camera_id"] = serde_json::json!(e.camera.id);
            v["slug"] = e.slug.clone().into();
            Ok(Json(v).into_response())
        }
        Err(err) => Ok(announce_error(err)),
    }
}
