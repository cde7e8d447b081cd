//! [`SimState`]: the simulator's shared in-memory state (devices, events, tokens,
//! tickets, request counters, faults) and the public hooks the live part and the
//! push channel use. One object over one lock; its methods are split by topic:
//! the cameras and the live part's hooks here, credentials in [`tokens`],
//! run-time motions and dings in [`events`], `GET /_sim/state` in [`report`].
//! Fault injection itself is in `super::faults`; the fault records ([`Fault`])
//! live here with the rest of the state.
//!
//! One `std::sync::Mutex` guards everything; it is never held across an `.await`.
//! Handlers call [`SimState::gate`] first, which counts the request and applies
//! injected faults (latency, error status).

mod events;
mod report;
mod tokens;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SimOptions;
use super::clock;
use super::data;
use super::data::cameras::SimCamera;
use super::data::events::EventRec;
use super::error::{SimError, SimResult};

pub use events::{SimEvent, SimEventKind};
pub(crate) use tokens::session_not_found_body;

/// How long a new event is listed in `clients_api/dings/active` (seconds).
pub(crate) const ACTIVE_DING_SECS: i64 = 180;

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
        let mut cameras: BTreeMap<u64, SimCamera> = data::cameras::seed_cameras(now)
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        for (i, (name, file)) in media_cams.into_iter().enumerate() {
            let cam = data::cameras::media_dir_camera(i, &name, file, now);
            cameras.insert(cam.id, cam);
        }
        for i in 0..opts.extra_cameras {
            let cam = data::cameras::extra_camera(i, now);
            cameras.insert(cam.id, cam);
        }
        let mut seq = 0;
        let events = cameras
            .values()
            .flat_map(|c| data::events::seed_events(c, opts.seed_events_per_camera, now, &mut seq))
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
}

impl Inner {
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
    if id == data::home::CHIME_ID {
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

/// A random URL-safe token of `bytes` random bytes.
pub(crate) fn random_token(bytes: usize) -> String {
    let buf: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
