//! Parsing of Ring's push payloads (ring-api.md §7.2) into [`PushEvent`]s.
//!
//! Two shapes arrive in an FCM `data` map whose values are JSON documents
//! carried as strings:
//!
//! - **v2** (`version: "2.0.0"`): `android_config{category}`, `data{device{id,
//!   kind, name}, event{ding{id, created_at, subtype, detection_type},
//!   eventito{type, timestamp}}, location{id}}`, `img{snapshot_uuid}`.
//! - **v1** (`gcmData`): `action` (`com.ring.push.HANDLE_NEW_DING` /
//!   `…HANDLE_NEW_motion`), `ding{id, created_at, doorbot_id, device_name,
//!   device_kind, detection_type}`, `subtype`.
//!
//! Parsing is tolerant: every field but the camera id and the ding id is
//! optional; ids may be numbers or strings and are kept exactly (never through
//! `f64`). Intercom, alarm and other non-camera pushes are [`Ignored`].
//! Samples in Ring's shapes (our own data) are in `testdata/`.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::transport::RawPush;
use crate::base::CameraId;
use crate::events::EventKind;

/// Which payload shape a push had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadVersion {
    /// `version: "2.0.0"` with `data`/`android_config`/`img`.
    V2,
    /// Legacy `gcmData`.
    V1,
}

/// A motion or ding push, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct PushEvent {
    /// Ring's numeric camera id (`device.id` / `ding.doorbot_id`).
    pub camera_id: CameraId,
    /// The ding id, digits only, exactly as Ring sent it.
    pub ding_id: String,
    /// Motion or ding.
    pub kind: EventKind,
    /// `detection_type` or `subtype` is `human`.
    pub person_detected: bool,
    /// RFC 3339 creation time (`ding.created_at`, else `eventito.timestamp`,
    /// else the time of parsing).
    pub created_at: String,
    /// `img.snapshot_uuid`, cut at the first `:` (ring-api.md §5).
    pub snapshot_uuid: Option<String>,
    /// `device.name` / `ding.device_name`.
    pub camera_name: Option<String>,
    /// `location.id` / `ding.location_id`.
    pub location_id: Option<String>,
    /// The payload shape.
    pub version: PayloadVersion,
}

/// Why a push produced no event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// Not a camera motion or ding (intercom, alarm, mode change, ...).
    #[error("not a motion or ding push ({0})")]
    NotCameraEvent(String),
    /// A motion/ding push missing what we need, or with a malformed value.
    #[error("malformed push: {0}")]
    Malformed(String),
}

/// Parses one push. See the module docs for the shapes.
pub fn parse(raw: &RawPush) -> Result<PushEvent, Ignored> {
    if let Some(gcm) = raw.data.get("gcmData") {
        return parse_v1(&json_field("gcmData", gcm)?);
    }
    if raw.data.contains_key("data") {
        return parse_v2(raw);
    }
    let keys: Vec<&str> = raw.data.keys().map(String::as_str).collect();
    Err(Ignored::NotCameraEvent(format!(
        "no `data` or `gcmData`; keys: {}",
        keys.join(",")
    )))
}

/// A JSON document from a `data` map value. Values that are not JSON at all
/// are malformed; a JSON string holding JSON (double encoding) is unwrapped.
fn json_field(name: &str, s: &str) -> Result<Value, Ignored> {
    let v: Value = serde_json::from_str(s)
        .map_err(|e| Ignored::Malformed(format!("`{name}` is not JSON: {e}")))?;
    match v {
        Value::String(inner) => serde_json::from_str(&inner)
            .map_err(|e| Ignored::Malformed(format!("`{name}` is not JSON: {e}"))),
        v => Ok(v),
    }
}

/// An optional JSON field: absent or unparsable gives `Null`.
fn optional_field(raw: &RawPush, name: &str) -> Value {
    raw.data
        .get(name)
        .and_then(|s| json_field(name, s).ok())
        .unwrap_or(Value::Null)
}

/// An id as exact digits, from a non-negative integer or a numeric string.
fn id_digits(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::Number(n) if n.is_u64() => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

fn camera_id(v: Option<&Value>) -> Option<CameraId> {
    id_digits(v)?.parse::<u64>().ok().map(CameraId::new)
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// RFC 3339 from a ms-since-epoch number.
fn rfc3339_from_ms(ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

fn is_human(s: Option<&str>) -> bool {
    s.is_some_and(|s| s.eq_ignore_ascii_case("human"))
}

/// Kind from a `subtype`/`eventito.type`: `ding` is a ding; the motion family
/// (`motion`, `human`, `other_motion`, `vehicle`, `package_*`, ...) is motion;
/// intercom and anything unknown are not ours.
fn kind_from_subtype(s: &str) -> Option<EventKind> {
    match s {
        "ding" => Some(EventKind::Ding),
        "motion" | "human" | "other_motion" | "vehicle" | "animal" | "loitering" => {
            Some(EventKind::Motion)
        }
        s if s.starts_with("package") || s.ends_with("motion") => Some(EventKind::Motion),
        _ => None,
    }
}

fn parse_v2(raw: &RawPush) -> Result<PushEvent, Ignored> {
    let data = json_field("data", raw.data.get("data").map_or("", String::as_str))?;
    let config = optional_field(raw, "android_config");
    let img = optional_field(raw, "img");
    let ding = data.pointer("/event/ding");
    let subtype = text(ding.and_then(|d| d.get("subtype")));
    let eventito_type = text(data.pointer("/event/eventito/type"));
    let category = text(config.get("category"));
    let kind = match category.as_deref() {
        Some(c) if c.ends_with(".ding") => Some(EventKind::Ding),
        Some(c) if c.ends_with(".motion") => Some(EventKind::Motion),
        Some(c) => return Err(Ignored::NotCameraEvent(c.to_owned())),
        None => subtype
            .as_deref()
            .or(eventito_type.as_deref())
            .and_then(kind_from_subtype),
    };
    let Some(kind) = kind else {
        let what = subtype
            .or(eventito_type)
            .unwrap_or_else(|| "no category".into());
        return Err(Ignored::NotCameraEvent(what));
    };
    let camera_id = camera_id(data.pointer("/device/id"))
        .ok_or_else(|| Ignored::Malformed("v2 push without a numeric `data.device.id`".into()))?;
    let ding_id = id_digits(ding.and_then(|d| d.get("id")))
        .ok_or_else(|| Ignored::Malformed("v2 push without a `data.event.ding.id`".into()))?;
    let detection = text(ding.and_then(|d| d.get("detection_type")));
    let created_at = text(ding.and_then(|d| d.get("created_at")))
        .or_else(|| {
            data.pointer("/event/eventito/timestamp")
                .and_then(Value::as_i64)
                .and_then(rfc3339_from_ms)
        })
        .unwrap_or_else(now_rfc3339);
    Ok(PushEvent {
        camera_id,
        ding_id,
        kind,
        person_detected: is_human(detection.as_deref()) || is_human(subtype.as_deref()),
        created_at,
        snapshot_uuid: snapshot_uuid(img.get("snapshot_uuid")),
        camera_name: text(data.pointer("/device/name")),
        location_id: text(data.pointer("/location/id")),
        version: PayloadVersion::V2,
    })
}

fn snapshot_uuid(v: Option<&Value>) -> Option<String> {
    let s = text(v)?;
    let head = s.split(':').next().unwrap_or_default().trim();
    (!head.is_empty()).then(|| head.to_owned())
}

fn parse_v1(gcm: &Value) -> Result<PushEvent, Ignored> {
    let action = text(gcm.get("action")).unwrap_or_default();
    let subtype = text(gcm.get("subtype"));
    let kind = match action.as_str() {
        "com.ring.push.HANDLE_NEW_DING" => EventKind::Ding,
        "com.ring.push.HANDLE_NEW_motion" => EventKind::Motion,
        "" => subtype
            .as_deref()
            .and_then(kind_from_subtype)
            .ok_or_else(|| Ignored::NotCameraEvent("gcmData without an action".into()))?,
        other => return Err(Ignored::NotCameraEvent(other.to_owned())),
    };
    let ding = gcm
        .get("ding")
        .ok_or_else(|| Ignored::Malformed("gcmData without `ding`".into()))?;
    let camera_id = camera_id(ding.get("doorbot_id"))
        .ok_or_else(|| Ignored::Malformed("gcmData without a numeric `ding.doorbot_id`".into()))?;
    let ding_id = id_digits(ding.get("id"))
        .ok_or_else(|| Ignored::Malformed("gcmData without a `ding.id`".into()))?;
    let detection = text(ding.get("detection_type"));
    Ok(PushEvent {
        camera_id,
        ding_id,
        kind,
        person_detected: is_human(detection.as_deref()) || is_human(subtype.as_deref()),
        created_at: text(ding.get("created_at")).unwrap_or_else(now_rfc3339),
        snapshot_uuid: snapshot_uuid(ding.get("snapshot_uuid")),
        camera_name: text(ding.get("device_name")),
        location_id: text(ding.get("location_id")),
        version: PayloadVersion::V1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: &str) -> RawPush {
        let v: Value = serde_json::from_str(body).expect("sample is JSON");
        RawPush::from_fcm_body(&v).expect("sample has data")
    }

    #[test]
    fn v2_doorbell_ding() {
        let ev = parse(&sample(include_str!("testdata/doorbell_ding_v2.json"))).expect("event");
        assert_eq!(ev.camera_id, CameraId::new(50001));
        assert_eq!(ev.ding_id, "7412345678901234567");
        assert_eq!(ev.kind, EventKind::Ding);
        assert!(!ev.person_detected);
        assert_eq!(ev.created_at, "2025-03-14T09:26:53.589Z");
        assert_eq!(
            ev.snapshot_uuid.as_deref(),
            Some("a1b2c3d4-0000-4000-8000-00000000beef")
        );
        assert_eq!(ev.camera_name.as_deref(), Some("Porch Bell"));
        assert_eq!(ev.location_id.as_deref(), Some("loc-porch-7"));
        assert_eq!(ev.version, PayloadVersion::V2);
    }

    #[test]
    fn v2_motion_with_person_and_big_numeric_id() {
        let raw = sample(include_str!("testdata/floodlight_motion_human_v2.json"));
        let ev = parse(&raw).expect("event");
        assert_eq!(
            ev.camera_id,
            CameraId::new(50002),
            "device id given as a string"
        );
        assert_eq!(ev.ding_id, "9123456789012345678", "exact, not via f64");
        assert_eq!(ev.kind, EventKind::Motion);
        assert!(ev.person_detected);
    }

    #[test]
    fn v2_sparse_motion_is_tolerated() {
        let raw = sample(include_str!("testdata/camera_motion_sparse_v2.json"));
        let ev = parse(&raw).expect("event");
        assert_eq!(ev.camera_id, CameraId::new(50003));
        assert_eq!(ev.kind, EventKind::Motion);
        assert!(!ev.person_detected);
        assert_eq!(ev.created_at, "2025-03-14T22:06:40.123Z");
        assert_eq!(ev.snapshot_uuid, None);
    }

    #[test]
    fn v2_intercom_is_ignored() {
        let raw = sample(include_str!("testdata/intercom_ding_v2.json"));
        assert!(matches!(parse(&raw), Err(Ignored::NotCameraEvent(c)) if c.ends_with("intercom")));
    }

    #[test]
    fn v1_gcmdata_ding() {
        let raw = sample(include_str!("testdata/doorbell_ding_v1_gcmdata.json"));
        let ev = parse(&raw).expect("event");
        assert_eq!(ev.camera_id, CameraId::new(50005));
        assert_eq!(ev.ding_id, "8223372036854775807");
        assert_eq!(ev.kind, EventKind::Ding);
        assert_eq!(ev.created_at, "2025-03-15T10:11:12.131Z");
        assert_eq!(ev.camera_name.as_deref(), Some("Side Gate Bell"));
        assert_eq!(ev.version, PayloadVersion::V1);
    }

    #[test]
    fn v1_alarm_is_ignored() {
        let raw = sample(include_str!("testdata/alarm_mode_v1_gcmdata.json"));
        assert!(
            matches!(parse(&raw), Err(Ignored::NotCameraEvent(a)) if a.contains("SECURITY_PANEL"))
        );
    }

    #[test]
    fn malformed_pushes_are_ignored_not_panics() {
        let mut raw = RawPush::default();
        assert!(matches!(parse(&raw), Err(Ignored::NotCameraEvent(_))));
        raw.data.insert("data".into(), "not json".into());
        assert!(matches!(parse(&raw), Err(Ignored::Malformed(_))));
        raw.data.insert(
            "data".into(),
            r#"{"device":{"id":-4},"event":{"ding":{"id":"1","subtype":"motion"}}}"#.into(),
        );
        assert!(matches!(parse(&raw), Err(Ignored::Malformed(_))));
        raw.data.insert(
            "data".into(),
            r#"{"device":{"id":4},"event":{"ding":{"id":1.5,"subtype":"ding"}}}"#.into(),
        );
        assert!(matches!(parse(&raw), Err(Ignored::Malformed(_))));
        raw.data = [(
            "gcmData".to_owned(),
            r#"{"action":"com.ring.push.HANDLE_NEW_motion"}"#.to_owned(),
        )]
        .into();
        assert!(matches!(parse(&raw), Err(Ignored::Malformed(_))));
    }

    #[test]
    fn double_encoded_values_are_unwrapped() {
        let inner = r#"{"device":{"id":7},"event":{"ding":{"id":"42","subtype":"ding"}}}"#;
        let raw = RawPush {
            data: [("data".to_owned(), Value::String(inner.into()).to_string())].into(),
            ..RawPush::default()
        };
        let ev = parse(&raw).expect("event");
        assert_eq!(
            (ev.camera_id, ev.ding_id.as_str()),
            (CameraId::new(7), "42")
        );
        assert_eq!(ev.kind, EventKind::Ding);
    }
}
