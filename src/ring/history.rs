//! Event history (ring-api.md §3).
//!
//! [`RingApi::history`](super::RingApi::history) uses the **legacy per-camera
//! form** (§3A) `clients_api/doorbots/{id}/history?limit=&older_than=`:
//! - it needs only the camera id (the location form §3B also needs the location
//!   id, i.e. another lookup, and shared cameras may sit in locations we do not
//!   list);
//! - its cursor *is* an event id (`older_than` = the oldest id of the previous
//!   page), matching [`HistoryQuery::older_than`]; the cursor is stable, needs
//!   no server-side pagination state and can be built from any event id;
//! - python-ring-doorbell (Home Assistant's library) still uses it.
//!
//! The **timeline** (§3C, `evm/v2/history/devices/{id}`, what the current app
//! uses) is parsed too, via [`RingClient::timeline`]; the polling event fallback
//! uses it because it carries person detection and media URLs.
//!
//! Ids are 64-bit: they are read as exact `u64` or taken from the string field
//! (`id_str`, `ding_id_str`, `event_id`), never through `f64`.

use serde_json::Value;

use super::client::RingClient;
use super::devices::id_of;
use super::model::{HistoryEvent, HistoryPage};
use super::request::Call;
use super::{Error, ErrorInner, HistoryQuery};

use crate::base::CameraId;

/// Page size when the caller asks for 0.
const DEFAULT_LIMIT: u32 = 20;
/// Largest page size we ask for.
const MAX_LIMIT: u32 = 200;

/// Normalizes a time that is RFC 3339 text, or seconds/milliseconds since the
/// epoch, to RFC 3339. Unparseable text is kept as is.
fn rfc3339(v: Option<&Value>) -> String {
    use time::format_description::well_known::Rfc3339;
    match v {
        Some(Value::String(s)) => time::OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| s.clone()),
        Some(Value::Number(n)) => {
            let Some(x) = n.as_f64() else {
                return String::new();
            };
            // Milliseconds when the value is too large for seconds (after year 5138).
            let ms = if x > 1e11 { x } else { x * 1000.0 };
            time::OffsetDateTime::from_unix_timestamp_nanos((ms as i128) * 1_000_000)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// An event id: the string form when present, else the exact integer.
fn event_id(e: &Value, string_keys: &[&str], int_key: &str) -> Option<String> {
    for k in string_keys {
        if let Some(s) = e.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()) {
            return Some(s.to_owned());
        }
    }
    match e.get(int_key)? {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn person(e: &Value) -> bool {
    ["cv", "cv_properties"].iter().any(|k| {
        e.get(*k)
            .and_then(|cv| cv.get("person_detected"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    })
}

fn recorded_status(s: Option<&str>) -> Option<String> {
    s.filter(|s| !matches!(*s, "" | "none" | "no_recording"))
        .map(str::to_owned)
}

/// Parses a legacy `doorbots/{id}/history` answer (a JSON array).
pub fn parse_legacy_history(camera_id: CameraId, v: &Value) -> Vec<HistoryEvent> {
    let Some(items) = v.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|e| {
            let id = event_id(e, &["id_str", "ding_id_str"], "id")?;
            let status = recorded_status(
                e.get("recording")
                    .and_then(|r| r.get("status"))
                    .and_then(Value::as_str),
            );
            Some(HistoryEvent {
                id,
                camera_id: id_of(e.get("doorbot").and_then(|d| d.get("id"))).unwrap_or(camera_id),
                created_at: rfc3339(e.get("created_at")),
                kind: e
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                person_detected: person(e),
                recorded: status.is_some(),
                recording_status: status,
                duration_s: e.get("duration").and_then(Value::as_f64),
                answered: e.get("answered").and_then(Value::as_bool).unwrap_or(false),
                thumbnail_url: e
                    .get("snapshot_url")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            })
        })
        .collect()
}

/// The URL of the first media item of `file_type` in a timeline item.
fn media_url(e: &Value, file_type: &str) -> Option<String> {
    e.get("visualizations")?
        .get("cloud_media_visualization")?
        .get("media")?
        .as_array()?
        .iter()
        .find(|m| m.get("file_type").and_then(Value::as_str) == Some(file_type))
        .and_then(|m| m.get("url").and_then(Value::as_str))
        .map(str::to_owned)
}

/// Parses an `evm/v2/history/devices/{id}` answer: `items[]` and
/// `pagination_key` (trailing `=` stripped, as ring-mqtt does before reuse).
pub fn parse_timeline(camera_id: CameraId, v: &Value) -> HistoryPage {
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let events: Vec<HistoryEvent> = items
        .iter()
        .filter_map(|e| {
            let id = event_id(e, &["event_id", "ding_id_str"], "ding_id")?;
            let status = recorded_status(e.get("recording_status").and_then(Value::as_str));
            let duration_s = e
                .get("duration_ms")
                .and_then(Value::as_f64)
                .map(|ms| ms / 1000.0);
            Some(HistoryEvent {
                id,
                camera_id: id_of(e.get("source_id")).unwrap_or(camera_id),
                created_at: rfc3339(e.get("start_time")),
                kind: e
                    .get("event_type")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                person_detected: person(e),
                recorded: status.is_some() || media_url(e, "VIDEO").is_some(),
                recording_status: status,
                duration_s,
                answered: e.get("state").and_then(Value::as_str) == Some("completed"),
                thumbnail_url: media_url(e, "THUMBNAIL"),
            })
        })
        .collect();
    let next = v
        .get("pagination_key")
        .and_then(Value::as_str)
        .map(|k| k.trim_end_matches('='))
        .filter(|k| !k.is_empty() && !events.is_empty())
        .map(str::to_owned);
    HistoryPage { events, next }
}

impl RingClient {
    /// One page of the legacy per-camera history, newest first. `next` is the
    /// oldest id of this page when the page was full, else `None`.
    pub(crate) async fn legacy_history(
        &self,
        camera_id: CameraId,
        query: HistoryQuery,
    ) -> Result<HistoryPage, Error> {
        let limit = match query.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let mut url = self.clients_url(&format!("doorbots/{camera_id}/history"))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string());
            if let Some(c) = query.older_than.as_deref() {
                if c.is_empty() || !c.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ErrorInner::InvalidId {
                        what: "history cursor",
                        value: c.to_owned(),
                    }
                    .into());
                }
                q.append_pair("older_than", c);
            }
        }
        let v: Value = self.engine.json(&Call::get(url).camera(camera_id)).await?;
        let events = parse_legacy_history(camera_id, &v);
        let next = if events.len() >= limit as usize {
            events.last().map(|e| e.id.clone())
        } else {
            None
        };
        Ok(HistoryPage { events, next })
    }

    /// One page of a camera's event timeline (`evm/v2`, ring-api.md §3C),
    /// newest first. Pass the previous page's `next` as `pagination_key` for
    /// the following (older) page; `next` is `None` at the end. `limit` is
    /// clamped to 1..=200. Used by the polling event fallback.
    pub async fn timeline(
        &self,
        camera_id: CameraId,
        limit: u32,
        pagination_key: Option<&str>,
    ) -> Result<HistoryPage, Error> {
        let mut url = self
            .hosts()
            .evm
            .join(&format!("history/devices/{camera_id}"))
            .map_err(|e| self.bad_url(e))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("capabilities", "offline_event");
            q.append_pair("limit", &limit.clamp(1, MAX_LIMIT).to_string());
            if let Some(k) = pagination_key.filter(|k| !k.is_empty()) {
                q.append_pair("pagination_key", k);
            }
        }
        let v: Value = self.engine.json(&Call::get(url).camera(camera_id)).await?;
        Ok(parse_timeline(camera_id, &v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_page() {
        let v: Value =
            serde_json::from_str(include_str!("testdata/doorbell_history_page1.json")).unwrap();
        let ev = parse_legacy_history(CameraId::new(10001), &v);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].id, "7311234567890123457", "64-bit id exact");
        assert_eq!(ev[0].kind, "ding");
        assert!(ev[0].answered && ev[0].playable());
        assert_eq!(ev[0].created_at, "2026-03-01T10:00:00Z");
        assert_eq!(ev[1].id, "7311234567890123400", "id_str preferred");
        assert!(ev[1].person_detected);
        assert!(!ev[2].recorded && ev[2].recording_status.is_none());
        assert!(ev.iter().all(|e| e.camera_id == CameraId::new(10001)));
    }

    #[test]
    fn timeline_page() {
        let v: Value =
            serde_json::from_str(include_str!("testdata/doorbell_timeline_page1.json")).unwrap();
        let p = parse_timeline(CameraId::new(10001), &v);
        assert_eq!(
            p.next.as_deref(),
            Some("eyJwYWdlIjoyfQ"),
            "trailing = stripped"
        );
        assert_eq!(p.events.len(), 2);
        let e = &p.events[0];
        assert_eq!(e.id, "7311234567890123999");
        assert_eq!(e.kind, "motion");
        assert!(e.person_detected && e.playable());
        assert_eq!(e.duration_s, Some(21.5));
        assert_eq!(
            e.thumbnail_url.as_deref(),
            Some("https://media.example/thumb.jpg")
        );
        assert_eq!(e.created_at, "2026-03-01T10:05:00Z");
        assert_eq!(
            p.events[1].created_at, "2026-03-01T10:04:00Z",
            "ms number start_time"
        );
        let v: Value =
            serde_json::from_str(include_str!("testdata/doorbell_timeline_page2.json")).unwrap();
        assert_eq!(parse_timeline(CameraId::new(10001), &v).next, None);
    }

    #[test]
    fn shared_reference_history_if_present() {
        let p = std::path::Path::new("/work/shared/ring-fixtures/ring_doorbot_history.json");
        let Ok(raw) = std::fs::read_to_string(p) else {
            return;
        };
        let ev = parse_legacy_history(CameraId::new(1), &serde_json::from_str(&raw).unwrap());
        assert!(ev.iter().any(|e| e.id == "1234567890123456"));
    }
}
