//! Per-camera bridge state and the retained state messages derived from it.
//!
//! Pure data: no I/O, no clocks except the `now` passed in.

use bytes::Bytes;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::entities::keys;
use super::stream::{LiveStats, StreamEndpoints, StreamStatus};
use super::topics::{Leaf, Topics};
use crate::cameras::Entry;
use crate::events::{CameraEvent, EventSource};

/// Why a snapshot was taken (the `type` attribute of the snapshot entity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    Motion,
    Ding,
    Interval,
    OnDemand,
    Stream,
}

impl Trigger {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Trigger::Motion => "motion",
            Trigger::Ding => "ding",
            Trigger::Interval => "interval",
            Trigger::OnDemand => "on_demand",
            Trigger::Stream => "stream",
        }
    }
}

/// The last motion or ding of a camera.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LastEvent {
    pub ding_id: String,
    /// Seconds since the epoch.
    pub at: i64,
    /// RFC 3339.
    pub at_iso: String,
    pub person_detected: bool,
    pub source: EventSource,
}

impl LastEvent {
    pub(crate) fn from_event(ev: &CameraEvent) -> Self {
        let t = OffsetDateTime::parse(&ev.created_at, &Rfc3339)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        LastEvent {
            ding_id: ev.ding_id.clone(),
            at: t.unix_timestamp(),
            at_iso: rfc3339(t),
            person_detected: ev.person_detected,
            source: ev.source,
        }
    }
}

/// The last snapshot published for a camera.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotState {
    pub jpeg: Bytes,
    pub attributes: Bytes,
}

impl SnapshotState {
    pub(crate) fn new(jpeg: Bytes, trigger: Trigger) -> Self {
        let now = OffsetDateTime::now_utc();
        let attributes = json!({
            "timestamp": now.unix_timestamp(),
            "time": rfc3339(now),
            "type": trigger.as_str(),
        });
        SnapshotState {
            jpeg,
            attributes: Bytes::from(attributes.to_string()),
        }
    }
}

/// Everything the bridge tracks for one camera.
#[derive(Debug)]
pub(crate) struct CamState {
    pub motion_until: Option<Instant>,
    pub ding_until: Option<Instant>,
    pub last_motion: Option<LastEvent>,
    pub last_ding: Option<LastEvent>,
    /// Commanded states, shown until the directory reports fresh data.
    pub light_override: Option<bool>,
    pub siren_override: Option<bool>,
    pub motion_detection_override: Option<bool>,
    /// From [`super::StreamControl::status`].
    pub stream: StreamStatus,
    /// A local failure (no stream control, `start` failed), shown until the
    /// next status change.
    pub stream_override: Option<StreamStatus>,
    pub endpoints: StreamEndpoints,
    /// The last statistics taken while streaming (the `stats` attribute).
    pub stream_stats: Option<LiveStats>,
    /// When to take them next (while the stream is on).
    pub next_stats: Option<Instant>,
    pub snapshot: Option<SnapshotState>,
    pub snapshot_inflight: bool,
    pub snapshot_failures: u32,
    pub next_snapshot: Option<Instant>,
    pub last_on_demand: Option<Instant>,
    /// RFC 3339 time the camera's Ring data last changed (the `info` sensor).
    pub info_updated: String,
    /// The `event_select` entity: the selected option and its attributes.
    pub event_select: Option<EventSelectState>,
    /// When the recording URL in those attributes is refreshed (it expires).
    pub event_refresh_at: Option<Instant>,
    /// A selection or refresh is running for this camera.
    pub event_refresh_inflight: bool,
    /// Stops this camera's helper tasks (stream status forwarder).
    pub stop: CancellationToken,
}

/// A finished `event_select` selection or refresh: what to show and when to
/// refresh again.
pub(crate) struct EventSelectDone {
    pub(crate) state: EventSelectState,
    pub(crate) refresh_in: std::time::Duration,
}

/// What the `event_select` entity shows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EventSelectState {
    /// The option (`Latest`, `Motion 2`), empty for an event chosen by id (HA
    /// ignores an empty state).
    pub label: String,
    /// JSON: `eventId`, `recordingUrl` (fresh), `kind`, `createdAt`, ... or `error`.
    pub attributes: Bytes,
}

impl CamState {
    pub(crate) fn new(stop: CancellationToken) -> Self {
        CamState {
            motion_until: None,
            ding_until: None,
            last_motion: None,
            last_ding: None,
            light_override: None,
            siren_override: None,
            motion_detection_override: None,
            stream: StreamStatus::default(),
            stream_override: None,
            endpoints: StreamEndpoints::default(),
            stream_stats: None,
            next_stats: None,
            snapshot: None,
            snapshot_inflight: false,
            snapshot_failures: 0,
            next_snapshot: None,
            last_on_demand: None,
            info_updated: rfc3339(OffsetDateTime::now_utc()),
            event_select: None,
            event_refresh_at: None,
            event_refresh_inflight: false,
            stop,
        }
    }

    /// The earliest timer of this camera.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.motion_until,
            self.ding_until,
            self.next_snapshot,
            self.event_refresh_at,
            self.next_stats,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn effective_stream(&self) -> &StreamStatus {
        self.stream_override.as_ref().unwrap_or(&self.stream)
    }
}

/// RFC 3339 with second precision, e.g. `2025-01-01T12:00:00Z`.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn on_off(on: bool) -> Bytes {
    Bytes::from_static(if on { b"ON" } else { b"OFF" })
}

fn json_bytes(v: serde_json::Value) -> Bytes {
    Bytes::from(v.to_string())
}

fn last_event_attrs(prefix: &str, e: Option<&LastEvent>, extra: serde_json::Value) -> Bytes {
    let mut m = serde_json::Map::new();
    m.insert(format!("last_{prefix}"), json!(e.map(|e| e.at)));
    m.insert(format!("last_{prefix}_time"), json!(e.map(|e| &e.at_iso)));
    m.insert("ding_id".into(), json!(e.map(|e| &e.ding_id)));
    m.insert("source".into(), json!(e.map(|e| e.source)));
    if let serde_json::Value::Object(x) = extra {
        m.extend(x);
    }
    json_bytes(serde_json::Value::Object(m))
}

/// Every retained state message of one camera (topic, payload), including its
/// availability and last snapshot.
pub(crate) fn camera_states(
    topics: &Topics,
    entry: &Entry,
    st: &CamState,
    now: Instant,
) -> Vec<(String, Bytes)> {
    let cam = &entry.camera;
    let t = |key: &str, leaf: Leaf| topics.entity(&cam.location_id, &cam.device_id, key, leaf);
    let mut out = Vec::with_capacity(20);
    out.push((
        topics.camera_status(&cam.location_id, &cam.device_id),
        Bytes::from_static(if cam.online { b"online" } else { b"offline" }),
    ));

    // Attributes always go out before the state they describe: Home Assistant
    // applies each message as it arrives, so an automation triggered by the
    // state change must already see this event's attributes.
    let motion_on = st.motion_until.is_some_and(|u| u > now);
    out.push((
        t(keys::MOTION, Leaf::Attributes),
        last_event_attrs(
            "motion",
            st.last_motion.as_ref(),
            json!({
                "person_detected": st.last_motion.as_ref().is_some_and(|e| e.person_detected),
                "motion_detection_enabled": st
                    .motion_detection_override
                    .unwrap_or(cam.motion_detection_enabled),
            }),
        ),
    ));
    out.push((t(keys::MOTION, Leaf::State), on_off(motion_on)));

    if cam.doorbell {
        let ding_on = st.ding_until.is_some_and(|u| u > now);
        out.push((
            t(keys::DING, Leaf::Attributes),
            last_event_attrs("ding", st.last_ding.as_ref(), json!({})),
        ));
        out.push((t(keys::DING, Leaf::State), on_off(ding_on)));
    }

    if let Some(s) = &st.snapshot {
        out.push((t(keys::SNAPSHOT, Leaf::Attributes), s.attributes.clone()));
        out.push((t(keys::SNAPSHOT, Leaf::Image), s.jpeg.clone()));
    }

    let stream = st.effective_stream();
    let mut attrs = json!({
        "status": stream.state.as_str(),
        "reason": stream.last_error,
        "video_codec": stream.video_codec,
        "rtsp_url": st.endpoints.rtsp_url,
        "whep_url": st.endpoints.whep_url,
    });
    if let (Some(s), Some(map)) = (&st.stream_stats, attrs.as_object_mut()) {
        map.insert("stats".into(), json!(s));
    }
    out.push((t(keys::STREAM, Leaf::Attributes), json_bytes(attrs)));
    out.push((t(keys::STREAM, Leaf::State), on_off(stream.state.is_on())));

    if cam.recordings_enabled {
        let (label, attrs) = match &st.event_select {
            Some(e) => (Bytes::from(e.label.clone()), e.attributes.clone()),
            None => (Bytes::from_static(b"Latest"), json_bytes(json!({}))),
        };
        out.push((t(keys::EVENT_SELECT, Leaf::Attributes), attrs));
        out.push((t(keys::EVENT_SELECT, Leaf::State), label));
    }

    if cam.has_light {
        let on = st.light_override.or(cam.light_on).unwrap_or(false);
        out.push((t(keys::LIGHT, Leaf::State), on_off(on)));
    }
    if cam.has_siren {
        let on = st.siren_override.or(cam.siren_on).unwrap_or(false);
        out.push((t(keys::SIREN, Leaf::State), on_off(on)));
    }
    let md = st
        .motion_detection_override
        .unwrap_or(cam.motion_detection_enabled);
    if !cam.shared {
        out.push((t(keys::MOTION_DETECTION, Leaf::State), on_off(md)));
    }

    if let Some(b) = cam.battery {
        out.push((t(keys::BATTERY, Leaf::State), Bytes::from(b.to_string())));
    }
    if let Some(r) = cam.wifi_rssi_dbm {
        out.push((t(keys::WIRELESS, Leaf::State), Bytes::from(r.to_string())));
    }
    out.push((
        t(keys::INFO, Leaf::State),
        json_bytes(json!({
            "last_update": st.info_updated,
            "camera_id": cam.id,
            "device_id": cam.device_id,
            "slug": entry.slug,
            "kind": cam.kind,
            "model": cam.model,
            "firmware": cam.firmware,
            "location_id": cam.location_id,
            "online": cam.online,
            "shared": cam.shared,
            "on_battery": cam.on_battery,
            "battery_level": cam.battery,
            "wifi_rssi_dbm": cam.wifi_rssi_dbm,
            "live_view_disabled": cam.live_view_disabled,
            "recordings_enabled": cam.recordings_enabled,
        })),
    ));
    out
}

/// The `push` diagnostic sensor of one camera: the push health word and the
/// watchdog counters as attributes (`unknown` without a push status).
pub(crate) fn push_states(
    topics: &Topics,
    entry: &Entry,
    push: Option<&crate::events::push::PushStatus>,
) -> [(String, Bytes); 2] {
    let cam = &entry.camera;
    let t = |leaf| topics.entity(&cam.location_id, &cam.device_id, keys::PUSH, leaf);
    let state = push.map_or("unknown", crate::events::push::PushStatus::health);
    let attrs = push.map_or_else(
        || json!({}),
        |p| {
            json!({
                "degraded": p.degraded,
                "missed_events": p.missed_events,
                "reregistrations": p.reregistrations,
                "events": p.events,
                "connections": p.connections,
                "last_error": p.last_error,
            })
        },
    );
    [
        (t(Leaf::State), Bytes::from(state)),
        (t(Leaf::Attributes), json_bytes(attrs)),
    ]
}

/// The `event` entity message for a ding (never retained). It carries the
/// whole event, the same fields as the `ding` attributes, so an automation
/// triggered by the event needs nothing else.
pub(crate) fn doorbell_event(ev: &CameraEvent) -> Bytes {
    let last = LastEvent::from_event(ev);
    json_bytes(json!({
        "event_type": "ding",
        "ding_id": ev.ding_id,
        "created_at": ev.created_at,
        "last_ding": last.at,
        "last_ding_time": last.at_iso,
        "person_detected": ev.person_detected,
        "source": ev.source,
    }))
}
