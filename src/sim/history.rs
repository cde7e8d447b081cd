//! Event history in Ring's three forms (ring-api.md §3):
//! (A) legacy `clients_api/doorbots/{id}/history?limit=&older_than=` (bare array),
//! (B) `clients_api/locations/{loc}[/devices/{id}]/events` (`events[]`,
//! `meta.pagination_key`), (C) `evm/v2/history/devices[/{id}]` (`items[]`,
//! `pagination_key`, signed media URLs).
//!
//! Pagination is by ding id: ids grow with creation time, so "older than id X" is
//! a stable cursor. Keys of (B) and (C) are URL-safe base64 of
//! `{"older_than":"<id>"}`, accepted with or without the `=` padding.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use base64::Engine as _;
use serde_json::{Value, json};

use super::clock;
use super::data;
use super::data::cameras::SimCamera;
use super::data::events::{EventKind, EventRec};
use super::error::{Pairs, SimError, SimResult, parse_id};
use super::media;
use super::state::{Inner, SimState};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE;
const B64_NO_PAD: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Query pairs (repeated keys kept).
fn get<'a>(q: &'a Pairs, key: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The page size: default when absent, capped at 200 (like a server-side cap),
/// 400 for zero or non-numbers.
fn limit(q: &Pairs, default: usize) -> SimResult<usize> {
    match get(q, "limit") {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| n.min(200))
            .ok_or_else(|| {
                SimError::bad_request(format!("invalid limit {s:?}: expected a positive number"))
            }),
    }
}

/// Encodes a pagination key.
pub(crate) fn encode_key(older_than: u64) -> String {
    B64.encode(format!(r#"{{"older_than":"{older_than}"}}"#))
}

/// Decodes a pagination key (padding optional).
pub(crate) fn decode_key(key: &str) -> SimResult<u64> {
    let bad = || SimError::bad_request(format!("invalid pagination_key {key:?}"));
    let raw = B64_NO_PAD
        .decode(key.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    v.get("older_than")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)
}

/// One page: matching events with `id < older_than`, newest first, and the cursor
/// for the next page when more remain.
fn page(
    inner: &Inner,
    older_than: Option<u64>,
    limit: usize,
    keep: impl Fn(&EventRec) -> bool,
) -> (Vec<&EventRec>, Option<u64>) {
    let mut all: Vec<&EventRec> = inner
        .events
        .iter()
        .filter(|e| older_than.is_none_or(|o| e.id < o) && keep(e))
        .collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.id));
    let more = all.len() > limit;
    all.truncate(limit);
    let next = if more { all.last().map(|e| e.id) } else { None };
    (all, next)
}

fn detection_type(e: &EventRec) -> Value {
    match e.kind {
        EventKind::Motion if e.person_detected => json!("human"),
        EventKind::Motion => json!("motion"),
        _ => Value::Null,
    }
}

/// (A) `GET /clients_api/doorbots/{id}/history` (dispatched from `devices`).
pub(crate) async fn legacy(
    st: &SimState,
    id: &str,
    q: &Pairs,
    headers: &HeaderMap,
) -> SimResult<Json<Value>> {
    st.gate("history", headers).await?;
    st.authorize_client(headers)?;
    let id = parse_id("doorbot", id)?;
    let limit = limit(q, 30)?;
    let older_than = get(q, "older_than")
        .map(|s| parse_id("older_than ding", s))
        .transpose()?;
    let now = clock::now_ms();
    let inner = st.lock();
    let cam = inner.camera(id)?;
    let (events, _) = page(&inner, older_than, limit, |e| e.camera_id == id);
    let out: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "created_at": clock::iso_ms(e.created_ms),
                "answered": e.answered,
                "events": [],
                "kind": e.kind.as_str(),
                "favorite": e.favorite,
                "snapshot_url": "",
                "recording": {"status": e.recording_status(now)},
                "duration": e.duration_s,
                "doorbot": {"id": cam.id, "description": cam.name},
                "cv_properties": {"person_detected": e.person_detected,
                                  "detection_type": detection_type(e), "stream_broken": false},
            })
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

fn location_event(e: &EventRec, cam: &SimCamera, now: i64) -> Value {
    json!({
        "ding_id": e.id,
        "ding_id_str": e.id.to_string(),
        "doorbot_id": cam.id,
        "device_id": cam.device_id,
        "location_id": cam.location_id,
        "created_at": clock::iso_ms(e.created_ms),
        "kind": e.kind.as_str(),
        "favorite": e.favorite,
        "recorded": e.recording_status(now).is_some(),
        "recording_status": e.recording_status(now),
        "state": e.state(),
        "duration": e.duration_s,
        "cv_properties": {"person_detected": e.person_detected,
                          "detection_type": detection_type(e), "stream_broken": false},
    })
}

fn state_filter(q: &Pairs) -> SimResult<Option<&str>> {
    match get(q, "state") {
        None => Ok(None),
        Some(s @ ("missed" | "accepted" | "person_detected")) => Ok(Some(s)),
        Some(s) => Err(SimError::bad_request(format!(
            "invalid state {s:?}: expected missed, accepted or person_detected"
        ))),
    }
}

/// Parses kind filters (comma- or `|`-separated, possibly repeated). `None` when
/// no filter was given; kinds the simulator never produces (`alarm`, ...) are
/// valid and match nothing.
fn kinds_filter(values: Vec<&str>) -> SimResult<Option<Vec<EventKind>>> {
    let mut given = false;
    let mut kinds = Vec::new();
    for v in values.into_iter().flat_map(|v| v.split([',', '|'])) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SimError::bad_request(format!("invalid event kind {v:?}")));
        }
        given = true;
        kinds.extend(EventKind::parse(v));
    }
    Ok(given.then_some(kinds))
}

/// (B) `GET /clients_api/locations/{loc}/events`.
pub(crate) async fn location_events(
    State(st): State<Arc<SimState>>,
    Path(loc): Path<String>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    events_b(&st, &loc, None, &q, &headers).await
}

/// (B) `GET /clients_api/locations/{loc}/devices/{id}/events`.
pub(crate) async fn device_events(
    State(st): State<Arc<SimState>>,
    Path((loc, id)): Path<(String, String)>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    events_b(&st, &loc, Some(&id), &q, &headers).await
}

async fn events_b(
    st: &SimState,
    loc: &str,
    id: Option<&str>,
    q: &Pairs,
    headers: &HeaderMap,
) -> SimResult<Json<Value>> {
    st.gate("history", headers).await?;
    st.authorize_client(headers)?;
    if !data::home::locations().iter().any(|(l, _, _)| *l == loc) {
        return Err(SimError::not_found(format!("location {loc} not found")));
    }
    let id = id.map(|s| parse_id("device", s)).transpose()?;
    let limit = limit(q, 50)?;
    let older_than = get(q, "pagination_key").map(decode_key).transpose()?;
    let kinds = kinds_filter(get(q, "kind").into_iter().collect())?;
    let state = state_filter(q)?;
    let favorites = get(q, "favorites") == Some("true");
    let now = clock::now_ms();
    let inner = st.lock();
    if let Some(id) = id
        && inner.camera(id)?.location_id != loc
    {
        return Err(SimError::not_found(format!(
            "device {id} not found in location {loc}"
        )));
    }
    let (events, next) = page(&inner, older_than, limit, |e| {
        let in_loc = inner
            .cameras
            .get(&e.camera_id)
            .is_some_and(|c| c.location_id == loc);
        in_loc
            && id.is_none_or(|id| e.camera_id == id)
            && kinds.as_ref().is_none_or(|k| k.contains(&e.kind))
            && (!favorites || e.favorite)
            && match state {
                Some("missed") => e.kind == EventKind::Ding && e.state() == "timed_out",
                Some("accepted") => e.state() == "completed",
                Some(_) => e.person_detected,
                None => true,
            }
    });
    let out: Vec<Value> = events
        .into_iter()
        .filter_map(|e| Some(location_event(e, inner.cameras.get(&e.camera_id)?, now)))
        .collect();
    Ok(Json(
        json!({"events": out, "meta": {"pagination_key": next.map(encode_key)}}),
    ))
}

/// (C) `GET /evm/v2/history/devices/{id}`.
pub(crate) async fn evm_device(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    st.gate("history", &headers).await?;
    st.authorize(&headers)?;
    let id = parse_id("device", &id)?;
    st.lock().camera(id)?;
    evm(&st, vec![id], &q, &headers)
}

/// (C) `GET /evm/v2/history/devices?source_ids=<id1>,<id2>`.
pub(crate) async fn evm_devices(
    State(st): State<Arc<SimState>>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    st.gate("history", &headers).await?;
    st.authorize(&headers)?;
    let ids = get(&q, "source_ids")
        .ok_or_else(|| SimError::bad_request("source_ids is required"))?
        .split(',')
        .map(|s| parse_id("source", s.trim()))
        .collect::<SimResult<Vec<u64>>>()?;
    evm(&st, ids, &q, &headers)
}

fn evm(st: &SimState, ids: Vec<u64>, q: &Pairs, headers: &HeaderMap) -> SimResult<Json<Value>> {
    let limit = limit(q, 50)?;
    let older_than = get(q, "pagination_key").map(decode_key).transpose()?;
    let types: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "event_types" || k == "event_types[]")
        .map(|(_, v)| v.as_str())
        .collect();
    let kinds = kinds_filter(types)?;
    let now = clock::now_ms();
    let base = super::origin::origin(st, headers);
    let inner = st.lock();
    let (events, next) = page(&inner, older_than, limit, |e| {
        ids.contains(&e.camera_id) && kinds.as_ref().is_none_or(|k| k.contains(&e.kind))
    });
    let items: Vec<Value> = events
        .into_iter()
        .filter_map(|e| {
            let cam = inner.cameras.get(&e.camera_id)?;
            Some(evm_item(st, &base, e, cam, now))
        })
        .collect();
    Ok(Json(
        json!({"items": items, "pagination_key": next.map(encode_key)}),
    ))
}

fn evm_item(st: &SimState, base: &str, e: &EventRec, cam: &SimCamera, now: i64) -> Value {
    let mut media_list = Vec::new();
    if e.playable(now) {
        media_list
            .push(json!({"file_type": "VIDEO", "url": media::recording_url(st, base, e.id, now)}));
    }
    if let Some(thumb) = media::thumbnail_url(st, base, e, now) {
        media_list.push(json!({"file_type": "THUMBNAIL", "url": thumb}));
    }
    json!({
        "event_id": e.id.to_string(),
        "source_id": cam.id.to_string(),
        "source_type": "video",
        "event_type": e.kind.as_str(),
        "start_time": clock::iso_ms(e.created_ms),
        "end_time": clock::iso_ms(e.created_ms + i64::from(e.duration_s) * 1000),
        "duration_ms": u64::from(e.duration_s) * 1000,
        "recording_status": e.recording_status(now),
        "is_favorite": e.favorite,
        "cv": {"person_detected": e.person_detected, "detection_type": detection_type(e)},
        "device": {"id": cam.id, "device_id": cam.device_id, "kind": cam.kind, "description": cam.name},
        "location_id": cam.location_id,
        "visualizations": {"cloud_media_visualization": {"media": media_list}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_with_and_without_padding() {
        let id = 7_101_760_000_000_000_123;
        let k = encode_key(id);
        assert_eq!(decode_key(&k).ok(), Some(id));
        assert_eq!(decode_key(k.trim_end_matches('=')).ok(), Some(id));
        assert!(decode_key("!!!").is_err());
    }
}
