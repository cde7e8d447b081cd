//! [`SimState`]: the simulator's shared in-memory state (devices, events, tokens,
//! tickets, request counters, faults) and the public hooks the live part and the
//! push channel use. Fault injection itself is in `super::faults`; the fault
//! records ([`Fault`]) live here with the rest of the state.
//!
//! One `std::sync::Mutex` guards everything; it is never held across an `.await`.
//! Handlers call [`SimState::gate`] first, which counts the request and applies
//! injected faults (latency, error status).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SimOptions;
use super::clock;
use super::data::{self, EventKind, EventRec, RecState, SimCamera};
use super::error::{SimError, SimResult};

/// How long an issued signalling ticket stays valid.
const TICKET_TTL: Duration = Duration::from_secs(300);

/// How long a new event is listed in `clients_api/dings/active` (seconds).
pub(crate) const ACTIVE_DING_SECS: i64 = 180;

/// Kind of a [`SimEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimEventKind {
    /// Motion detected.
    Motion,
    /// Doorbell pressed.
    Ding,
}

/// A motion or ding created through the control API, broadcast to subscribers of
/// [`SimState::events`] (the push channel emulation, tests).
#[derive(Clone, Debug, Serialize)]
pub struct SimEvent {
    /// `motion` or `ding`.
    pub kind: SimEventKind,
    /// Numeric camera id.
    pub camera_id: u64,
    /// Ding id (64-bit, 19 digits; Ring sends it as a string in v2 pushes).
    pub ding_id: u64,
    /// Hex device id of the camera.
    pub device_id: String,
    /// Camera name (`description`).
    pub camera_name: String,
    /// Ring `kind` of the camera.
    pub device_kind: String,
    /// Location id of the camera.
    pub location_id: String,
    /// Computer vision saw a person.
    pub person_detected: bool,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Creation time, ISO 8601 with ms (`2024-08-29T15:33:41.123Z`).
    pub created_at: String,
    /// Snapshot uuid, as pushes carry it in `img.snapshot_uuid` (without `:...`).
    pub snapshot_uuid: String,
}

/// What the live part may want to know about a camera.
#[derive(Clone, Debug, Serialize)]
pub struct CameraInfo {
    /// Numeric id.
    pub id: u64,
    /// Hex device id.
    pub device_id: String,
    /// Name.
    pub name: String,
    /// Ring kind.
    pub kind: String,
    /// Location id.
    pub location_id: String,
    /// Is a doorbell.
    pub doorbell: bool,
    /// Online now.
    pub online: bool,
    /// Live view blocked by Modes (`settings.live_view_disabled`).
    pub live_view_disabled: bool,
    /// The user's MP4 file backing this camera, if any.
    pub media_file: Option<PathBuf>,
    /// How the camera picks its live video codec.
    pub video: super::live::h265::VideoMode,
}

/// An injected fault (`POST /_sim/faults`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Fault {
    pub endpoint: String,
    pub status: Option<u16>,
    /// Remaining matches; `None` = until cleared.
    pub count: Option<u32>,
    pub retry_after_s: Option<u64>,
    pub latency_ms: Option<u64>,
    /// Replaces the default error body.
    pub body: Option<Value>,
}

/// The mutable state behind [`SimState`]'s lock.
pub(crate) struct Inner {
    pub cameras: BTreeMap<u64, SimCamera>,
    /// All events, in no particular order (queries sort).
    pub events: Vec<EventRec>,
    pub access_tokens: HashMap<String, Instant>,
    pub refresh_tokens: HashSet<String>,
    pub token_generation: u64,
    pub tickets: HashMap<String, Instant>,
    pub tickets_issued: u64,
    pub requests: BTreeMap<String, u64>,
    pub faults: Vec<Fault>,
    pub sessions_created: u64,
    pub hardware_ids: BTreeSet<String>,
    /// Hardware ids with a clients API session (`POST /clients_api/session`).
    pub sessions: BTreeSet<String>,
    /// Whether clients API calls need a session ([`SimOptions::require_session`]).
    pub require_session: bool,
    /// Time a requested snapshot takes ([`SimOptions::snapshot_delay`]).
    pub snapshot_delay: Duration,
    /// hardware id (or "-") → push token.
    pub push_tokens: BTreeMap<String, String>,
    pub seq: u64,
}

type StatsProvider = Arc<dyn Fn() -> Value + Send + Sync>;

/// The simulator's shared state. Cheap to share as `Arc<SimState>`.
pub struct SimState {
    opts: SimOptions,
    inner: Mutex<Inner>,
    events_tx: broadcast::Sender<SimEvent>,
    live_stats: RwLock<Option<StatsProvider>>,
    pub(super) cancel: CancellationToken,
    /// Key of the fake S3 signatures.
    secret: String,
}

impl SimState {
    /// Builds the seeded state. `media_cams` are `(name, file)` pairs from
    /// `SimOptions::media_dir`.
    pub(crate) fn new(
        opts: SimOptions,
        media_cams: Vec<(String, PathBuf)>,
        cancel: CancellationToken,
    ) -> SimState {
        let now = clock::now_ms();
        let mut cameras: BTreeMap<u64, SimCamera> = data::seed_cameras(now)
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        for (i, (name, file)) in media_cams.into_iter().enumerate() {
            let cam = data::media_dir_camera(i, &name, file, now);
            cameras.insert(cam.id, cam);
        }
        for i in 0..opts.extra_cameras {
            let cam = data::extra_camera(i, now);
            cameras.insert(cam.id, cam);
        }
        let mut seq = 0;
        let events = cameras
            .values()
            .flat_map(|c| data::seed_events(c, opts.seed_events_per_camera, now, &mut seq))
            .collect();
        let (events_tx, _) = broadcast::channel(256);
        let (require_session, snapshot_delay) = (opts.require_session, opts.snapshot_delay);
        SimState {
            opts,
            inner: Mutex::new(Inner {
                cameras,
                events,
                access_tokens: HashMap::new(),
                refresh_tokens: HashSet::new(),
                token_generation: 0,
                tickets: HashMap::new(),
                tickets_issued: 0,
                requests: BTreeMap::new(),
                faults: Vec::new(),
                sessions_created: 0,
                hardware_ids: BTreeSet::new(),
                sessions: BTreeSet::new(),
                require_session,
                snapshot_delay,
                push_tokens: BTreeMap::new(),
                seq,
            }),
            events_tx,
            live_stats: RwLock::new(None),
            cancel,
            secret: random_token(16),
        }
    }

    /// Locks the state. Never hold the guard across an `.await`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The options the simulator was started with (`session_cap` for the live part).
    pub fn options(&self) -> &SimOptions {
        &self.opts
    }

    /// Cancelled when the simulator shuts down; long-lived connections (the live
    /// websocket) should end when it fires.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Key for the fake S3 URL signatures.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// Mints a valid refresh token (single use, like every refresh token), so a
    /// daemon pointed at the simulator without a stored token can log in.
    /// Increments `token_generation`.
    pub fn bootstrap_refresh_token(&self) -> String {
        self.lock().issue_refresh_token()
    }

    /// Consumes a signalling ticket issued by `POST /api/v1/clap/ticket/request/signalsocket`.
    /// Returns `true` once per valid, unexpired ticket.
    pub fn take_ticket(&self, ticket: &str) -> bool {
        let mut inner = self.lock();
        match inner.tickets.remove(ticket) {
            Some(expires) => Instant::now() < expires,
            None => false,
        }
    }

    /// Whether camera `id` exists and is online now (fault overrides included).
    pub fn camera_online(&self, id: u64) -> bool {
        self.lock().cameras.get(&id).is_some_and(SimCamera::online)
    }

    /// One camera's live-relevant facts, `None` for unknown ids (and the chime).
    pub fn camera(&self, id: u64) -> Option<CameraInfo> {
        self.lock().cameras.get(&id).map(camera_info)
    }

    /// All cameras, in id order.
    pub fn cameras(&self) -> Vec<CameraInfo> {
        self.lock().cameras.values().map(camera_info).collect()
    }

    /// Subscribes to motion/ding events created through the control API.
    pub fn events(&self) -> broadcast::Receiver<SimEvent> {
        self.events_tx.subscribe()
    }

    /// Installs the live part's statistics: the returned object's keys
    /// (`live_sessions_active`, `live_sessions_total`, `talkback`, ...) are merged
    /// into `GET /_sim/state`. Called on every state request; must not block and
    /// must not call back into [`SimState::set_live_stats_provider`].
    pub fn set_live_stats_provider(&self, f: Box<dyn Fn() -> Value + Send + Sync>) {
        let mut slot = self
            .live_stats
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(Arc::from(f));
    }

    /// The live statistics (defaults when no provider is installed).
    pub(crate) fn live_stats(&self) -> serde_json::Map<String, Value> {
        let provider = self
            .live_stats
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut out = serde_json::Map::new();
        out.insert("live_sessions_active".into(), json!(0));
        out.insert("live_sessions_total".into(), json!(0));
        out.insert("talkback".into(), json!({}));
        if let Some(Value::Object(m)) = provider.map(|f| f()) {
            out.extend(m);
        }
        out
    }

    /// Checks the `Authorization: Bearer` access token.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> SimResult<()> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(SimError::unauthorized)?;
        let mut inner = self.lock();
        match inner.access_tokens.get(token) {
            Some(exp) if Instant::now() < *exp => {}
            Some(_) => {
                inner.access_tokens.remove(token);
                return Err(SimError::unauthorized());
            }
            None => return Err(SimError::unauthorized()),
        }
        if let Some(hid) = headers.get("hardware_id").and_then(|v| v.to_str().ok())
            && !hid.is_empty()
            && !inner.hardware_ids.contains(hid)
        {
            inner.hardware_ids.insert(hid.to_string());
        }
        Ok(())
    }

    /// [`SimState::authorize`] plus Ring's session rule for clients API paths:
    /// without a session for the request's `hardware_id` (while sessions are
    /// required) the answer is 404 `{"error":"Session not found for hardware_id
    /// <id>"}` (ring-api.md §1.5).
    pub(crate) fn authorize_client(&self, headers: &HeaderMap) -> SimResult<()> {
        self.authorize(headers)?;
        let hid = headers
            .get("hardware_id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let inner = self.lock();
        if inner.require_session && !inner.sessions.contains(hid) {
            return Err(SimError::with_body(
                StatusCode::NOT_FOUND,
                session_not_found_body(hid),
            ));
        }
        Ok(())
    }

    /// Issues an access + refresh token pair (the refresh grant's answer).
    pub(crate) fn issue_tokens(&self) -> (String, String) {
        let ttl = self.opts.access_token_ttl;
        let mut inner = self.lock();
        let access = random_token(32);
        inner
            .access_tokens
            .insert(access.clone(), Instant::now() + ttl);
        let refresh = inner.issue_refresh_token();
        (access, refresh)
    }

    /// Consumes a refresh token; `true` when it was valid (rotation: single use).
    pub(crate) fn consume_refresh_token(&self, token: &str) -> bool {
        self.lock().refresh_tokens.remove(token)
    }

    /// Issues a signalling ticket.
    pub(crate) fn issue_ticket(&self) -> String {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.tickets.retain(|_, exp| *exp > now);
        let t = random_token(24);
        inner.tickets.insert(t.clone(), now + TICKET_TTL);
        inner.tickets_issued += 1;
        t
    }

    /// Adds an event for `camera_id` (control API), broadcasts it and returns it.
    pub(crate) fn add_event(
        &self,
        camera_id: u64,
        kind: SimEventKind,
        person_detected: bool,
        ready_after: Duration,
    ) -> SimResult<SimEvent> {
        let now = clock::now_ms();
        let ev = {
            let mut inner = self.lock();
            let cam = inner
                .cameras
                .get(&camera_id)
                .ok_or_else(|| SimError::not_found(format!("camera {camera_id} not found")))?
                .clone();
            if kind == SimEventKind::Ding && !cam.doorbell() {
                return Err(SimError::bad_request(format!(
                    "camera {camera_id} is not a doorbell"
                )));
            }
            if !cam.online() {
                return Err(SimError::new(
                    StatusCode::CONFLICT,
                    format!("camera {camera_id} is offline"),
                ));
            }
            inner.seq += 1;
            let seq = inner.seq;
            // Keep ids strictly increasing even within one millisecond.
            let newest = inner.events.iter().map(|e| e.id).max().unwrap_or(0);
            let id = data::ding_id(now, seq).max(newest + 1);
            let rec = if cam.show_recordings {
                RecState::ReadyAt(now + ready_after.as_millis() as i64)
            } else {
                RecState::None
            };
            let uuid = data::snapshot_uuid(camera_id, now);
            inner.events.push(EventRec {
                id,
                camera_id,
                created_ms: now,
                kind: match kind {
                    SimEventKind::Motion => EventKind::Motion,
                    SimEventKind::Ding => EventKind::Ding,
                },
                person_detected,
                rec,
                answered: false,
                favorite: false,
                duration_s: 20,
                snapshot_uuid: uuid.clone(),
            });
            if let Some(c) = inner.cameras.get_mut(&camera_id) {
                c.snapshot_ms = now;
            }
            SimEvent {
                kind,
                camera_id,
                ding_id: id,
                device_id: cam.device_id.clone(),
                camera_name: cam.name.clone(),
                device_kind: cam.kind.clone(),
                location_id: cam.location_id.clone(),
                person_detected,
                created_at_ms: now,
                created_at: clock::iso_ms(now),
                snapshot_uuid: uuid,
            }
        };
        // No receivers is fine.
        let _ = self.events_tx.send(ev.clone());
        Ok(ev)
    }

    /// `GET /_sim/state`.
    pub(crate) fn state_json(&self) -> Value {
        let mut out = self.live_stats();
        let now_ms = clock::now_ms();
        let now = Instant::now();
        let inner = self.lock();
        let cameras: serde_json::Map<String, Value> = inner
            .cameras
            .values()
            .map(|c| {
                let events = inner.events.iter().filter(|e| e.camera_id == c.id).count();
                let active = inner
                    .events
                    .iter()
                    .filter(|e| e.camera_id == c.id && now_ms - e.created_ms < ACTIVE_DING_SECS * 1000)
                    .count();
                let v = json!({
                    "name": c.name,
                    "online": c.online(),
                    "light_on": c.has_light_siren.then_some(c.light_on),
                    "siren_on": c.has_light_siren.then_some(c.siren_seconds_remaining() > 0),
                    "siren_seconds_remaining": c.has_light_siren.then_some(c.siren_seconds_remaining()),
                    "motion_detection_enabled": c.motion_detection_enabled(),
                    "live_view_disabled": c.live_view_disabled(),
                    "video": c.video,
                    "subscribed": c.subscribed,
                    "subscribed_motions": c.subscribed_motions,
                    "events": events,
                    "active_dings": active,
                });
                (c.id.to_string(), v)
            })
            .collect();
        let requests: serde_json::Map<String, Value> = inner
            .requests
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        out.insert("requests".into(), Value::Object(requests));
        out.insert("token_generation".into(), json!(inner.token_generation));
        out.insert(
            "refresh_tokens_valid".into(),
            json!(inner.refresh_tokens.len()),
        );
        out.insert(
            "access_tokens_valid".into(),
            json!(inner.access_tokens.values().filter(|e| **e > now).count()),
        );
        out.insert("tickets_issued".into(), json!(inner.tickets_issued));
        out.insert(
            "tickets_outstanding".into(),
            json!(inner.tickets.values().filter(|e| **e > now).count()),
        );
        out.insert("sessions_created".into(), json!(inner.sessions_created));
        out.insert("sessions_required".into(), json!(inner.require_session));
        out.insert("sessions".into(), json!(inner.sessions.len()));
        out.insert(
            "snapshot_delay_ms".into(),
            json!(inner.snapshot_delay.as_millis() as u64),
        );
        out.insert("hardware_ids".into(), json!(inner.hardware_ids));
        out.insert("push_tokens".into(), json!(inner.push_tokens.len()));
        out.insert("faults".into(), json!(inner.faults));
        out.insert("cameras".into(), Value::Object(cameras));
        Value::Object(out)
    }
}

impl Inner {
    pub(crate) fn issue_refresh_token(&mut self) -> String {
        let t = random_token(48);
        self.refresh_tokens.insert(t.clone());
        self.token_generation += 1;
        t
    }

    /// A camera by id, or 404 (400 for the chime).
    pub(crate) fn camera(&self, id: u64) -> SimResult<&SimCamera> {
        self.cameras.get(&id).ok_or_else(|| unknown_device(id))
    }

    /// A camera by id for mutation, or 404.
    pub(crate) fn camera_mut(&mut self, id: u64) -> SimResult<&mut SimCamera> {
        self.cameras.get_mut(&id).ok_or_else(|| unknown_device(id))
    }
}

fn unknown_device(id: u64) -> SimError {
    if id == data::CHIME_ID {
        SimError::bad_request(format!("device {id} is a chime, not a camera"))
    } else {
        SimError::not_found(format!("device {id} not found"))
    }
}

fn camera_info(c: &SimCamera) -> CameraInfo {
    CameraInfo {
        id: c.id,
        device_id: c.device_id.clone(),
        name: c.name.clone(),
        kind: c.kind.clone(),
        location_id: c.location_id.clone(),
        doorbell: c.doorbell(),
        online: c.online(),
        live_view_disabled: c.live_view_disabled(),
        media_file: c.media_file.clone(),
        video: c.video,
    }
}

/// Ring's "session is gone" answer, which names the hardware id (ring-api.md §1.5).
pub(super) fn session_not_found_body(hardware_id: &str) -> Value {
    json!({"error": format!("Session not found for hardware_id {hardware_id}")})
}

/// A random URL-safe token of `bytes` random bytes.
pub(crate) fn random_token(bytes: usize) -> String {
    let buf: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
