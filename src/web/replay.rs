//! Recorded-event stream selection: `GET /api/ring/cameras/:id/event-stream`
//! (what the camera's RTSP event stream plays now, and its URLs) and `PUT` with
//! `{"select": "Motion 2"}` or `{"event_id": "..."}` to choose another recording.
//! The selection itself lives in [`crate::events::replay`]; docs in `docs/API.md`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::api::{find, request_host};
use super::live::parse_body;
use super::{ApiError, WebState};
use crate::base::ResultExt;
use crate::base::error::chain;
use crate::cameras::Entry;
use crate::events::replay::{ReplayError, Resolved, Selection, options};

pub(super) fn routes() -> Router<WebState> {
    Router::new().route(
        "/api/ring/cameras/{id}/event-stream",
        get(status).put(select),
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SelectBody {
    /// An option label (`Latest`, `Motion 2`, ...).
    select: Option<String>,
    /// A ding id from the history.
    event_id: Option<String>,
}

impl From<ReplayError> for ApiError {
    fn from(e: ReplayError) -> Self {
        ApiError::new(e.kind(), chain(&e))
    }
}

/// The answer of both methods: the selection, the event it resolves to (or why
/// none), and the stream's URLs.
fn view(
    st: &WebState,
    e: &Entry,
    host: Option<&str>,
    resolved: Result<Resolved, ReplayError>,
) -> serde_json::Value {
    let cam = &e.camera;
    let sel = st.replay.selection(cam.id);
    let urls = st.urls.get().for_request(host);
    let rtsp = |path: String| urls.rtsp(&path);
    let (event, error) = match resolved {
        Ok(r) => (serde_json::to_value(r.event).ok(), None),
        Err(err) => (None, Some(chain(&err))),
    };
    serde_json::json!({
        "camera_id": cam.id,
        "select": sel.label(),
        "event_id": event.as_ref().and_then(|v| v.get("id")).cloned(),
        "event": event,
        "error": error,
        "loop": st.replay.options().loop_default,
        "options": options(cam.doorbell),
        "rtsp_url": rtsp(format!("{}/event", e.slug)),
        "rtsp_alias_url": rtsp(format!("{}_event", cam.device_id)),
    })
}

fn require_recordings(e: &Entry) -> Result<(), ApiError> {
    if e.camera.recordings_enabled {
        Ok(())
    } else {
        Err(ReplayError::NoRecordings(e.camera.id).into())
    }
}

async fn status(
    State(st): State<WebState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let e = find(&st, &id)?;
    require_recordings(&e)?;
    let resolved = st.replay.resolve(e.camera.id, true).await;
    // Ring failures are errors; "nothing matches" is an answer.
    if let Err(err @ ReplayError::Ring(_)) = &resolved {
        return Err(err.clone().into());
    }
    Ok(Json(view(&st, &e, request_host(&headers), resolved)).into_response())
}

async fn select(
    State(st): State<WebState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let e = find(&st, &id)?;
    require_recordings(&e)?;
    let b: SelectBody = parse_body(&body)?;
    let selection = match (b.select, b.event_id) {
        (Some(label), None) => Selection::parse_label(&label)?,
        (None, Some(id)) => Selection::event(&id)?,
        _ => {
            return Err(ApiError::bad_request(
                "send exactly one of {\"select\": \"Motion 2\"} or {\"event_id\": \"<ding id>\"}",
            ));
        }
    };
    if matches!(selection, Selection::Slot(c, _) if c == crate::events::replay::Category::Ding)
        && !e.camera.doorbell
    {
        return Err(ApiError::bad_request(format!(
            "{} is not a doorbell: it has no Ding events",
            e.camera.name
        )));
    }
    let resolved = st.replay.select(e.camera.id, true, selection).await?;
    tracing::info!(camera = %e.camera.id, event = %resolved.event.id, select = ?resolved.select, "event stream selection changed");
    Ok(Json(view(&st, &e, request_host(&headers), Ok(resolved))).into_response())
}
