//! The simulator's push channel: a stand-in for Google's FCM/MCS transport.
//!
//! `GET /_sim/push?token=<push token>` upgrades to a websocket that delivers
//! every control-API motion/ding (from [`SimState::events`]) as one text frame
//! holding an FCM message body, `{"data":{…}, "from", "priority",
//! "fcmMessageId"}`, whose `data` values are JSON documents *as strings* in
//! Ring's real v2 shape (ring-api.md §7.2); with `v1_dings=true`, doorbell
//! dings come in the legacy v1 `gcmData` shape instead. Websocket pings are
//! the heartbeats (every `heartbeat_ms`, default 30 s).
//!
//! Only tokens registered with `PATCH /clients_api/device` may connect (403
//! otherwise) and receive events. Like FCM, events for a registered token with
//! no open socket are queued (at most [`MAX_PENDING`]) and delivered when it
//! connects: clients must treat them as replays.
//!
//! Control: `POST /_sim/push/drop` cuts every push socket abruptly (no close
//! frame); `POST /_sim/push/silence` makes Ring silently stop pushing to every
//! token registered so far (sockets and heartbeats stay up; events are
//! dropped, not queued) until a new token is registered, which is Ring's real
//! failure mode; `DELETE /_sim/push/silence` ends that; `GET /_sim/push/state`
//! reports connections and counters.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, debug, info_span};

use super::clock::now_ms;
use super::state::{SimEvent, SimEventKind, SimState};

/// Events queued per registered token while it has no open socket.
pub const MAX_PENDING: usize = 64;
/// Ring's FCM sender id, the `from` of every push.
const RING_SENDER_ID: &str = "876313859327";
/// Default heartbeat period.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

struct Conn {
    token: String,
    tx: mpsc::Sender<SimEvent>,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<u64, Conn>,
    pending: HashMap<String, VecDeque<SimEvent>>,
    connections_total: u64,
    delivered: u64,
    dropped_by_control: u64,
    /// Tokens Ring silently stopped pushing to (`POST /_sim/push/silence`).
    silenced: HashSet<String>,
    /// Events dropped because their token was silenced.
    dropped_silenced: u64,
}

/// The push channel's state (shared by its handlers and fan-out task).
pub(crate) struct PushSim {
    state: Arc<SimState>,
    inner: Mutex<Inner>,
    next_conn: AtomicU64,
}

impl PushSim {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn registered(&self, token: &str) -> bool {
        self.state.lock().push_tokens.values().any(|t| t == token)
    }

    /// Routes one event to the open sockets of every registered token, or to
    /// the token's queue when it has none.
    fn route(&self, ev: &SimEvent) {
        let tokens: Vec<String> = self.state.lock().push_tokens.values().cloned().collect();
        let mut inner = self.lock();
        for token in tokens {
            if inner.silenced.contains(&token) {
                inner.dropped_silenced += 1;
                continue;
            }
            let mut sent = false;
            for c in inner.conns.values().filter(|c| c.token == token) {
                // Full only if the socket stalls; dropping is what FCM would do too.
                sent |= c.tx.try_send(ev.clone()).is_ok();
            }
            if !sent {
                let q = inner.pending.entry(token).or_default();
                if q.len() == MAX_PENDING {
                    q.pop_front();
                }
                q.push_back(ev.clone());
            }
        }
    }

    async fn fan_out(self: Arc<Self>) {
        let cancel = self.state.cancel_token();
        let mut rx = self.state.events();
        loop {
            let ev = tokio::select! {
                () = cancel.cancelled() => break,
                ev = rx.recv() => ev,
            };
            match ev {
                Ok(ev) => self.route(&ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    debug!(dropped = n, "push fan-out lagged");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }
}

/// Routes of the push channel. Spawns the fan-out task on `tasks` (it ends
/// with the simulator's cancel token; the simulator joins `tasks`); call inside
/// a Tokio runtime.
pub fn router(state: Arc<SimState>, tasks: &TaskTracker) -> Router {
    let push = Arc::new(PushSim {
        state,
        inner: Mutex::new(Inner::default()),
        next_conn: AtomicU64::new(1),
    });
    tasks.spawn(push.clone().fan_out().instrument(info_span!("sim_push")));
    Router::new()
        .route("/_sim/push", get(ws_handler))
        .route("/_sim/push/drop", post(drop_sockets))
        .route("/_sim/push/silence", post(silence).delete(unsilence))
        .route("/_sim/push/state", get(push_state))
        .with_state(push)
}

#[derive(Debug, serde::Deserialize)]
struct PushQuery {
    token: Option<String>,
    #[serde(default)]
    v1_dings: bool,
    heartbeat_ms: Option<u64>,
}

fn reject(status: StatusCode, why: &str) -> Response {
    (status, Json(json!({ "error": why }))).into_response()
}

async fn ws_handler(
    State(push): State<Arc<PushSim>>,
    Query(q): Query<PushQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if push.state.cancel_token().is_cancelled() {
        return reject(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let Some(token) = q.token.filter(|t| !t.is_empty()) else {
        return reject(StatusCode::BAD_REQUEST, "token is required");
    };
    if !push.registered(&token) {
        return reject(
            StatusCode::FORBIDDEN,
            "push token not registered: PATCH /clients_api/device first",
        );
    }
    let heartbeat = q
        .heartbeat_ms
        .map_or(DEFAULT_HEARTBEAT, Duration::from_millis)
        .max(Duration::from_millis(20));
    let id = push.next_conn.fetch_add(1, Ordering::Relaxed);
    let v1_dings = q.v1_dings;
    ws.on_upgrade(move |socket| {
        serve(push, id, token, socket, v1_dings, heartbeat)
            .instrument(info_span!("sim_push", conn = id))
    })
}

async fn serve(
    push: Arc<PushSim>,
    id: u64,
    token: String,
    mut socket: WebSocket,
    v1_dings: bool,
    heartbeat: Duration,
) {
    let (tx, mut rx) = mpsc::channel(MAX_PENDING);
    {
        let mut inner = push.lock();
        for ev in inner.pending.remove(&token).unwrap_or_default() {
            let _ = tx.try_send(ev);
        }
        inner.conns.insert(
            id,
            Conn {
                token: token.clone(),
                tx,
            },
        );
        inner.connections_total += 1;
    }
    debug!("push socket open");
    let cancel = push.state.cancel_token();
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        tokio::select! {
            () = cancel.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            ev = rx.recv() => {
                // None: cut by `/_sim/push/drop`; return without a close frame.
                let Some(ev) = ev else { break };
                if !push.registered(&token) {
                    continue;
                }
                let body = fcm_body(&ev, v1_dings);
                if socket.send(Message::text(body.to_string())).await.is_err() {
                    break;
                }
                push.lock().delivered += 1;
            }
            _ = beat.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    push.lock().conns.remove(&id);
    debug!("push socket closed");
}

/// `POST /_sim/push/drop`: cuts every push socket (no close frame).
async fn drop_sockets(State(push): State<Arc<PushSim>>) -> Json<Value> {
    let mut inner = push.lock();
    let n = inner.conns.len();
    inner.conns.clear();
    inner.dropped_by_control += n as u64;
    Json(json!({ "dropped": n }))
}

/// `POST /_sim/push/silence`: Ring stops pushing to every token registered
/// now (a later registration with a new token receives again). Answers
/// `{"silenced": N}`.
async fn silence(State(push): State<Arc<PushSim>>) -> Json<Value> {
    let tokens: Vec<String> = push.state.lock().push_tokens.values().cloned().collect();
    let mut inner = push.lock();
    inner.silenced.extend(tokens);
    for t in inner.silenced.clone() {
        inner.pending.remove(&t);
    }
    Json(json!({ "silenced": inner.silenced.len() }))
}

/// `DELETE /_sim/push/silence`: pushes flow to every registered token again.
async fn unsilence(State(push): State<Arc<PushSim>>) -> Json<Value> {
    let mut inner = push.lock();
    let n = inner.silenced.len();
    inner.silenced.clear();
    Json(json!({ "unsilenced": n }))
}

/// `GET /_sim/push/state`.
async fn push_state(State(push): State<Arc<PushSim>>) -> Json<Value> {
    let inner = push.lock();
    let pending: usize = inner.pending.values().map(VecDeque::len).sum();
    Json(json!({
        "connections": inner.conns.len(),
        "connections_total": inner.connections_total,
        "delivered": inner.delivered,
        "pending": pending,
        "dropped_by_control": inner.dropped_by_control,
        "silenced_tokens": inner.silenced.len(),
        "dropped_silenced": inner.dropped_silenced,
    }))
}

/// The FCM message body of one event: Ring's v2 payload, or v1 `gcmData` for a
/// doorbell ding when `v1_dings` is set.
pub(crate) fn fcm_body(ev: &SimEvent, v1_dings: bool) -> Value {
    let data = if v1_dings && ev.kind == SimEventKind::Ding {
        json!({ "gcmData": v1_gcm_data(ev).to_string() })
    } else {
        v2_data(ev)
    };
    json!({
        "data": data,
        "from": RING_SENDER_ID,
        "priority": "high",
        "fcmMessageId": uuid::Uuid::new_v4().to_string(),
    })
}

/// `(subtype, detection_type)` of an event.
fn subtype(ev: &SimEvent) -> (&'static str, Value) {
    match (ev.kind, ev.person_detected) {
        (SimEventKind::Ding, _) => ("ding", Value::Null),
        (SimEventKind::Motion, true) => ("human", json!("human")),
        (SimEventKind::Motion, false) => ("motion", json!("motion")),
    }
}

fn v2_data(ev: &SimEvent) -> Value {
    let (sub, detection) = subtype(ev);
    let ding_id = ev.ding_id.to_string();
    let (kind, body) = match (ev.kind, ev.person_detected) {
        (SimEventKind::Ding, _) => ("ding", format!("Someone is at your {}", ev.camera_name)),
        (SimEventKind::Motion, true) => (
            "motion",
            format!("There is a person at your {}", ev.camera_name),
        ),
        (SimEventKind::Motion, false) => (
            "motion",
            format!("There is motion at your {}", ev.camera_name),
        ),
    };
    let data = json!({
        "device": {
            "e2ee_enabled": false,
            "id": ev.camera_id,
            "kind": ev.device_kind,
            "name": ev.camera_name,
        },
        "event": {
            "ding": {
                "id": ding_id,
                "created_at": ev.created_at,
                "subtype": sub,
                "detection_type": detection,
            },
            "eventito": { "type": sub, "timestamp": ev.created_at_ms },
            "riid": format!("{:032x}", ev.ding_id),
            "is_sidewalk": false,
            "live_session": {
                "streaming_data_hash": "sh-v1|simulator",
                "active_streaming_profile": "rms",
                "default_audio_route": "loud_speaker",
                "max_duration": 600,
            },
        },
        "location": { "id": ev.location_id },
    });
    let analytics = json!({
        "server_category": kind,
        "server_id": "com.ring.pns",
        "subcategory": sub,
        "triggered_at": ev.created_at_ms,
        "sent_at": now_ms(),
        "referring_item_type": "ding",
        "referring_item_id": ding_id,
    });
    let android_config = json!({
        "category": format!("com.ring.pn.live-event.{kind}"),
        "channel": format!("{kind}_channel_notification{}", ev.camera_id),
        "body": body,
    });
    let img = json!({ "snapshot_uuid": format!("{}:{}", ev.snapshot_uuid, ev.camera_id) });
    json!({
        "version": "2.0.0",
        "data": data.to_string(),
        "analytics": analytics.to_string(),
        "android_config": android_config.to_string(),
        "img": img.to_string(),
        "video": "{}",
    })
}

fn v1_gcm_data(ev: &SimEvent) -> Value {
    json!({
        "ding": {
            "streaming_protocol": "ring_media_server",
            "riid": format!("{:032x}", ev.ding_id),
            "created_at": ev.created_at,
            "e2ee_method": 1,
            "location_id": ev.location_id,
            "device_name": ev.camera_name,
            "doorbot_id": ev.camera_id,
            "e2ee_enabled": false,
            "streaming_data_hash": "sh-v1|simulator",
            "device_kind": ev.device_kind,
            "id": ev.ding_id,
            "request_id": uuid::Uuid::new_v4().to_string(),
            "properties": { "active_streaming_profile": "rms", "is_sidewalk": false },
        },
        "aps": {
            "alert": format!("\u{1F514} Someone is at your {}", ev.camera_name),
            "sound": "DoorBot.wav",
        },
        "subtype": "ding",
        "action": "com.ring.push.HANDLE_NEW_DING",
    })
}
