//! WHEP endpoints (draft-ietf-wish-whep) over [`crate::webrtc::WhepServer`], plus
//! the talk floor:
//!
//! - `OPTIONS /api/webrtc/{camera}/whep` → 204, `Accept-Post: application/sdp`
//! - `POST /api/webrtc/{camera}/whep` (`application/sdp` offer) → 201, answer SDP,
//!   `Location: …/whep/{session}`, `ETag`
//! - `PATCH /api/webrtc/{camera}/whep/{session}` (`application/trickle-ice-sdpfrag`)
//!   → 204
//! - `DELETE /api/webrtc/{camera}/whep/{session}` → 200
//! - `POST /api/webrtc/{camera}/whep/{session}/talk` `{"talking": bool}` →
//!   200 `{"talking": bool}`, or 409 when someone else talks
//! - `GET /api/webrtc/{camera}/talk` → `{"talking": bool, "session": id|null}`
//!
//! `{camera}` is the numeric id, device_id or slug. Errors are the usual
//! `{error, message}` bodies; a few WHEP-specific statuses (415, 412, 422) keep that
//! shape. Handlers only map HTTP to the server's calls.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::Deserialize;

use super::access::{Peer, peer_ip};
use super::api::find;
use super::{ApiError, WebState};
use crate::base::{ErrorKind, ResultExt};
use crate::cameras::Entry;
use crate::webrtc::WhepError;

const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/webrtc/{camera}/whep", post(create).options(options))
        .route(
            "/api/webrtc/{camera}/whep/{session}",
            patch(trickle).delete(delete).options(options),
        )
        .route("/api/webrtc/{camera}/whep/{session}/talk", post(talk))
        .route("/api/webrtc/{camera}/talk", get(talk_state))
}

/// An error with a status outside the kind mapping, in the `{error, message}` shape.
fn status_error(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": kind.as_str(), "message": message.into() });
    (status, Json(body)).into_response()
}

/// Maps a server error to a response; `entry` names the camera in messages.
fn whep_error(e: WhepError, entry: &Entry) -> Response {
    match &e {
        WhepError::FloorTaken { .. } => ApiError::new(
            ErrorKind::FailedPrecondition,
            format!("someone else is talking on {}", entry.slug),
        )
        .into_response(),
        WhepError::IceRestart { .. } => {
            status_error(StatusCode::UNPROCESSABLE_ENTITY, e.kind(), e.to_string())
        }
        WhepError::EtagMismatch { .. } => {
            status_error(StatusCode::PRECONDITION_FAILED, e.kind(), e.to_string())
        }
        WhepError::TooLarge { .. } => {
            status_error(StatusCode::PAYLOAD_TOO_LARGE, e.kind(), e.to_string())
        }
        _ => ApiError::new(e.kind(), crate::base::error::chain(&e)).into_response(),
    }
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

/// A path prefix a reverse proxy put in front of us (`X-Forwarded-Prefix`, or Home
/// Assistant's `X-Ingress-Path`), if it is a sane absolute path.
fn forwarded_prefix(headers: &HeaderMap) -> String {
    ["x-forwarded-prefix", "x-ingress-path"]
        .iter()
        .filter_map(|h| headers.get(*h)?.to_str().ok())
        .map(|p| p.trim().trim_end_matches('/'))
        .find(|p| {
            p.starts_with('/')
                && p.chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '"' | '\\'))
        })
        .unwrap_or_default()
        .to_owned()
}

/// Finds the camera and checks it can stream (409 otherwise).
fn streamable(st: &WebState, camera: &str) -> Result<Entry, ApiError> {
    let e = find(st, camera)?;
    let caps = e.camera.capabilities();
    if !e.camera.online || !caps.live_view {
        let why = caps.reason.unwrap_or_else(|| "it is offline".into());
        return Err(ApiError::new(
            ErrorKind::FailedPrecondition,
            format!("camera {} cannot stream: {why}", e.camera.name),
        ));
    }
    Ok(e)
}

async fn options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::HeaderName::from_static("accept-post"), SDP),
            (header::HeaderName::from_static("accept-patch"), SDPFRAG),
            (header::ALLOW, "OPTIONS, POST, PATCH, DELETE"),
        ],
    )
        .into_response()
}

/// Logs a limit refusal (size, session cap) once per client.
fn note_limit(st: &WebState, peer: &Peer, err: &WhepError, path: &str) {
    let reason = match err {
        WhepError::TooLarge { .. } => "SDP too large",
        WhepError::TooManySessions { .. } => "WebRTC session cap",
        _ => return,
    };
    st.guard.note_refusal(peer_ip(peer), reason, path);
}

async fn create(
    State(st): State<WebState>,
    Path(camera): Path<String>,
    peer: Peer,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let e = streamable(&st, &camera)?;
    if !content_type_is(&headers, SDP) {
        return Ok(status_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::InvalidArgument,
            format!("send the SDP offer as Content-Type: {SDP}"),
        ));
    }
    let offer = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the SDP offer is not UTF-8"))?;
    let answer = match st.whep.create_session(e.camera.id, offer).await {
        Ok(a) => a,
        Err(err) => {
            note_limit(&st, &peer, &err, uri.path());
            return Ok(whep_error(err, &e));
        }
    };
    let location = format!(
        "{}{}/{}",
        forwarded_prefix(&headers),
        uri.path().trim_end_matches('/'),
        answer.session_id
    );
    let mut resp = (StatusCode::CREATED, answer.sdp).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    for (name, value) in [(header::LOCATION, location), (header::ETAG, answer.etag)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag"),
    );
    Ok(resp)
}

async fn trickle(
    State(st): State<WebState>,
    Path((camera, session)): Path<(String, String)>,
    peer: Peer,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let e = find(&st, &camera)?;
    if !content_type_is(&headers, SDPFRAG) {
        return Ok(status_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::InvalidArgument,
            format!("send ICE candidates as Content-Type: {SDPFRAG}"),
        ));
    }
    let frag = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the ICE fragment is not UTF-8"))?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    match st
        .whep
        .add_candidates(e.camera.id, &session, frag, if_match)
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(err) => {
            note_limit(&st, &peer, &err, uri.path());
            Ok(whep_error(err, &e))
        }
    }
}

async fn delete(
    State(st): State<WebState>,
    Path((camera, session)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let e = find(&st, &camera)?;
    match st.whep.delete_session(e.camera.id, &session).await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(err) => Ok(whep_error(err, &e)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TalkBody {
    talking: bool,
}

async fn talk(
    State(st): State<WebState>,
    Path((camera, session)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let e = find(&st, &camera)?;
    let b: TalkBody = serde_json::from_slice(&body).map_err(|err| {
        ApiError::bad_request(format!("expected {{\"talking\": true|false}}: {err}"))
    })?;
    match st.whep.set_talking(e.camera.id, &session, b.talking) {
        Ok(talking) => Ok(Json(serde_json::json!({ "talking": talking })).into_response()),
        Err(err) => Ok(whep_error(err, &e)),
    }
}

async fn talk_state(
    State(st): State<WebState>,
    Path(camera): Path<String>,
) -> Result<Response, ApiError> {
    let e = find(&st, &camera)?;
    Ok(Json(st.whep.talk_state(e.camera.id)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(forwarded_prefix(&h), "");
        h.insert(
            "x-ingress-path",
            HeaderValue::from_static("/api/hassio_ingress/abc/"),
        );
        assert_eq!(forwarded_prefix(&h), "/api/hassio_ingress/abc");
        h.insert("x-forwarded-prefix", HeaderValue::from_static("/ring"));
        assert_eq!(forwarded_prefix(&h), "/ring");
        h.insert(
            "x-forwarded-prefix",
            HeaderValue::from_static("http://evil/"),
        );
        assert_eq!(forwarded_prefix(&h), "/api/hassio_ingress/abc");
    }

    #[test]
    fn content_types_ignore_parameters_and_case() {
        let mut h = HeaderMap::new();
        assert!(!content_type_is(&h, SDP));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/SDP; charset=utf-8"),
        );
        assert!(content_type_is(&h, SDP));
    }
}
