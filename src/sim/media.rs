//! Recordings (ring-api.md §4): the `share/play` and `recording` URL endpoints
//! and the S3-style signed media URLs the simulator itself serves under
//! `/_sim/media/`. Snapshots are in [`super::snapshots`].
//!
//! Media bytes come from [`super::media_gen`] (GStreamer, cached) or from the
//! user's own MP4 files. URLs are absolute, from [`super::origin`] (public URL,
//! forwarded headers or `Host`), so they work on any port and behind a proxy.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::clock;
use super::data::cameras::SimCamera;
use super::data::events::EventRec;
use super::error::{Pairs, SimError, SimResult, parse_id};
use super::media_gen;
use super::origin::origin;
use super::state::SimState;

fn signature(secret: &str, object: &str, date: &str, expires: u64) -> String {
    (0u8..4)
        .map(|round| {
            let mut h = DefaultHasher::new();
            (secret, object, date, expires, round).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

fn signed_url(st: &SimState, base: &str, object: &str, now_ms: i64) -> String {
    let date = clock::amz_date(now_ms);
    let expires = st.options().recording_url_ttl.as_secs();
    let sig = signature(st.secret(), object, &date, expires);
    format!(
        "{base}/_sim/media/{object}?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=SIMULATOR%2F{day}%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={sig}",
        day = &date[..8],
    )
}

/// The signed URL of an event's MP4 recording.
pub(crate) fn recording_url(st: &SimState, base: &str, ding_id: u64, now_ms: i64) -> String {
    signed_url(st, base, &format!("recordings/{ding_id}.mp4"), now_ms)
}

/// The signed URL of an event's thumbnail, when the event was recorded.
pub(crate) fn thumbnail_url(
    st: &SimState,
    base: &str,
    e: &EventRec,
    now_ms: i64,
) -> Option<String> {
    e.recording_status(now_ms)
        .map(|_| signed_url(st, base, &format!("thumbnails/{}.jpg", e.id), now_ms))
}

/// Finds a playable recording: 404 for unknown events, cameras without Ring
/// Protect and recordings that are missing or not ready.
fn playable_event(st: &SimState, ding_id: u64) -> SimResult<(EventRec, SimCamera)> {
    let now = clock::now_ms();
    let inner = st.lock();
    let e = inner
        .events
        .iter()
        .find(|e| e.id == ding_id)
        .ok_or_else(|| SimError::not_found(format!("ding {ding_id} not found")))?;
    let cam = inner.camera(e.camera_id)?;
    if !cam.show_recordings {
        return Err(SimError::not_found(format!(
            "ding {ding_id}: recordings need a Ring Protect plan"
        )));
    }
    match e.recording_status(now) {
        Some("ready") => Ok((e.clone(), cam.clone())),
        Some(s) => Err(SimError::not_found(format!(
            "ding {ding_id}: recording is {s}"
        ))),
        None => Err(SimError::not_found(format!(
            "ding {ding_id} has no recording"
        ))),
    }
}

/// `GET /clients_api/dings/{id}/recording`: `{url}` with
/// `disable_redirect=true`, else a 302 to the MP4.
pub(crate) async fn recording(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> SimResult<Response> {
    let url = playable_url(&st, &id, &headers).await?;
    let no_redirect = q
        .iter()
        .any(|(k, v)| k == "disable_redirect" && (v == "true" || v == "1"));
    if no_redirect {
        return Ok(axum::Json(json!({ "url": url })).into_response());
    }
    Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
}

/// `GET /clients_api/dings/{id}/share/play`: always a 200 `{url}`, with or
/// without `disable_redirect` (python-ring-doorbell calls it without).
pub(crate) async fn share_play(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> SimResult<Response> {
    let url = playable_url(&st, &id, &headers).await?;
    Ok(axum::Json(json!({ "url": url })).into_response())
}

/// The checks both recording endpoints share; the signed MP4 URL.
async fn playable_url(st: &SimState, id: &str, headers: &HeaderMap) -> SimResult<String> {
    st.gate("recording", headers).await?;
    st.authorize_client(headers)?;
    let id = parse_id("ding", id)?;
    playable_event(st, id)?;
    Ok(recording_url(st, &origin(st, headers), id, clock::now_ms()))
}

fn s3_error(status: StatusCode, code: &str, msg: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{msg}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// Checks an S3-style signed URL; `Err` is the S3 403 answer.
fn check_signature(st: &SimState, object: &str, q: &Pairs) -> Result<(), Box<Response>> {
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let denied = |msg| Box::new(s3_error(StatusCode::FORBIDDEN, "AccessDenied", msg));
    let (Some(date), Some(expires), Some(sig)) = (
        get("X-Amz-Date"),
        get("X-Amz-Expires"),
        get("X-Amz-Signature"),
    ) else {
        return Err(denied(
            "Query-string authentication requires X-Amz-Date, X-Amz-Expires and X-Amz-Signature",
        ));
    };
    let expires: u64 = expires
        .parse()
        .map_err(|_| denied("X-Amz-Expires must be a number"))?;
    let signed_ms = clock::parse_amz_date(date)
        .ok_or_else(|| denied("X-Amz-Date must be in the form YYYYMMDD'T'HHMMSS'Z'"))?;
    if signature(st.secret(), object, date, expires) != sig {
        return Err(denied(
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    if clock::now_ms() > signed_ms + (expires as i64) * 1000 {
        return Err(denied("Request has expired"));
    }
    Ok(())
}

/// `GET /_sim/media/{recordings|thumbnails}/{file}`: the signed media objects.
pub(crate) async fn media_object(
    State(st): State<Arc<SimState>>,
    Path((dir, file)): Path<(String, String)>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = st.gate("media", &headers).await {
        return e.into_response();
    }
    let (ext, ctype) = match dir.as_str() {
        "recordings" => (".mp4", "video/mp4"),
        "thumbnails" => (".jpg", "image/jpeg"),
        _ => {
            return s3_error(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
            );
        }
    };
    let object = format!("{dir}/{file}");
    if let Err(resp) = check_signature(&st, &object, &q) {
        return *resp;
    }
    let Some(id) = file.strip_suffix(ext).and_then(|s| s.parse::<u64>().ok()) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let found = {
        let inner = st.lock();
        inner
            .events
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| Some((e.clone(), inner.cameras.get(&e.camera_id)?.clone())))
    };
    let Some((ev, cam)) = found else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let bytes = if ext == ".mp4" {
        match &cam.media_file {
            Some(path) => tokio::fs::read(path)
                .await
                .map(Bytes::from)
                .map_err(anyhow::Error::from),
            None => media_gen::recording_mp4(ev.kind, ev.clip_s).await,
        }
    } else {
        media_gen::camera_jpeg(&cam.name, cam.pattern, cam.media_file.clone()).await
    };
    match bytes {
        Ok(b) => ranged(b, ctype, &headers),
        Err(e) => media_failed(&e),
    }
}

pub(crate) fn media_failed(e: &anyhow::Error) -> Response {
    tracing::warn!(err = %format!("{e:#}"), "simulator media generation failed");
    SimError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("media generation failed: {e:#}"),
    )
    .into_response()
}

/// Serves `bytes`, honouring a single `Range: bytes=a-b` request.
fn ranged(bytes: Bytes, ctype: &'static str, headers: &HeaderMap) -> Response {
    let len = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .filter(|r| !r.contains(','));
    let mut resp = match range.map(|r| parse_range(r, len)) {
        None => (StatusCode::OK, bytes).into_response(),
        Some(Some((a, b))) => {
            let mut r = (
                StatusCode::PARTIAL_CONTENT,
                bytes.slice(a as usize..=b as usize),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        Some(None) => {
            let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, Body::empty()).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    resp
}

/// Parses `a-b`, `a-` or `-n` against a length; `None` when unsatisfiable.
fn parse_range(r: &str, len: u64) -> Option<(u64, u64)> {
    let (a, b) = r.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.checked_sub(n.min(len))?, len.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && end < len).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("90-", 100), Some((90, 99)));
        assert_eq!(parse_range("-10", 100), Some((90, 99)));
        assert_eq!(parse_range("50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("100-", 100), None);
        assert_eq!(parse_range("x-1", 100), None);
    }
}
