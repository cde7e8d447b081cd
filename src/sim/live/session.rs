//! One signalling websocket of the simulated Ring server: the `live_view`
//! dialog (ring-api.md §6.3) with Ring's timers — session cap, ping timeout
//! (code 6), and the ~70 s limit for sessions never activated.
//!
//! Messages without a `dialog_id` close the socket at once, like Ring, except a
//! `close`: ring-client-api sends its final hang-up without one, and it ends the
//! socket's only dialog. Exactly one session per socket (Ring's clients open one
//! socket per stream).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::LiveSim;
use super::peer::{PeerEvent, SimPeer};
use super::{clip, h265};

/// Ring ends sessions that never got `activate_session` after about this long.
const ACTIVATE_TIMEOUT: Duration = Duration::from_secs(70);
/// Close code the simulator uses when the camera is offline (Ring's real code
/// for this case is not documented).
pub const CLOSE_CAMERA_OFFLINE: u32 = 3;
/// Close code for internal simulator failures (e.g. GStreamer missing).
pub const CLOSE_INTERNAL: u32 = 1;

struct Session {
    id: String,
    camera: u64,
    peer: Arc<SimPeer>,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    created: Instant,
    last_ping: Instant,
    activated: bool,
    connected: bool,
}

/// Why the simulator ends a session by itself.
struct Timer {
    at: Instant,
    code: u32,
    text: &'static str,
}

struct Conn {
    sim: Arc<LiveSim>,
    ws: WebSocket,
    dialog_id: String,
    session: Option<Session>,
}

/// Serves one upgraded socket until it closes. `abort` drops it abruptly
/// (fault injection: no `close` message, no websocket close frame).
pub(crate) async fn serve(
    sim: Arc<LiveSim>,
    ws: WebSocket,
    ticket_ok: bool,
    abort: CancellationToken,
) {
    let mut c = Conn {
        sim,
        ws,
        dialog_id: String::new(),
        session: None,
    };
    if !ticket_ok {
        c.close(5, "invalid or expired token").await;
        return;
    }
    let shutdown = c.sim.shutdown.clone();
    loop {
        let timer = c.timer();
        // Biased: signalling already received (a client's `close`) is handled
        // before peer events that happened after it (the DTLS close that follows).
        let step = tokio::select! {
            biased;
            _ = abort.cancelled() => Step::Abort,
            _ = shutdown.cancelled() => Step::Close(0, "server shutting down"),
            m = c.ws.recv() => match m {
                Some(Ok(Message::Text(t))) => c.message(t.as_str()).await,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Step::Gone,
                Some(Ok(_)) => Step::Continue,
            },
            ev = next_event(&mut c.session) => c.peer_event(ev).await,
            _ = sleep_until(timer.as_ref().map(|t| t.at)) => match timer {
                Some(t) => Step::Close(t.code, t.text),
                None => Step::Continue,
            },
        };
        match step {
            Step::Continue => {}
            Step::Abort => {
                debug!("dropping the signalling socket (fault injection)");
                break;
            }
            Step::Gone => break,
            Step::Close(code, text) => {
                c.close(code, text).await;
                break;
            }
            Step::Hangup => {
                let _ = c.ws.send(Message::Close(None)).await;
                break;
            }
        }
    }
    c.end_session().await;
}

enum Step {
    Continue,
    /// Fault injection: drop the socket.
    Abort,
    /// The client went away.
    Gone,
    /// End with a `close` message.
    Close(u32, &'static str),
    /// The client sent `close`.
    Hangup,
}

async fn next_event(s: &mut Option<Session>) -> Option<PeerEvent> {
    match s {
        Some(s) => s.events.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Conn {
    fn timer(&self) -> Option<Timer> {
        let s = self.session.as_ref()?;
        let o = &self.sim.opts;
        let mut timers = vec![
            Timer {
                at: s.created + o.session_cap,
                code: 0,
                text: "Session reached its maximum duration",
            },
            Timer {
                at: s.last_ping + o.ping_timeout,
                code: 6,
                text: "Timeout waiting for ping",
            },
        ];
        if !s.activated {
            timers.push(Timer {
                at: s.created + ACTIVATE_TIMEOUT,
                code: 0,
                text: "Session was not activated",
            });
        }
        timers.into_iter().min_by_key(|t| t.at)
    }

    async fn send(&mut self, method: &str, mut body: Value) {
        if let (Some(o), Some(s)) = (body.as_object_mut(), &self.session) {
            o.insert("doorbot_id".into(), json!(s.camera));
            o.insert("session_id".into(), json!(s.id));
        }
        let text = json!({"method": method, "dialog_id": self.dialog_id, "body": body}).to_string();
        if let Err(e) = self.ws.send(Message::text(text)).await {
            debug!(err = %e, method, "send failed");
        }
    }

    /// Sends `close {reason}`, then closes the socket with a proper
    /// websocket closing handshake (waiting up to 2 s for the client's close
    /// frame, so unread data is not lost to a TCP reset).
    async fn close(&mut self, code: u32, text: &str) {
        info!(code, text, "closing the session");
        self.send("close", json!({"reason": {"code": code, "text": text}}))
            .await;
        let _ = self.ws.send(Message::Close(None)).await;
        let drain = async { while let Some(Ok(_)) = self.ws.recv().await {} };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }

    async fn end_session(&mut self) {
        if let Some(s) = self.session.take() {
            s.peer.close().await;
            self.sim.active.fetch_sub(1, Ordering::SeqCst);
            info!(session = %s.id, camera = s.camera, "session ended");
        }
    }

    async fn peer_event(&mut self, ev: Option<PeerEvent>) -> Step {
        let Some(s) = self.session.as_mut() else {
            return Step::Continue;
        };
        match ev {
            Some(PeerEvent::Connected) if !s.connected => {
                s.connected = true;
                s.peer.start_media();
                self.send(
                    "notification",
                    json!({"is_ok": true, "text": "camera_connected"}),
                )
                .await;
                self.send("camera_started", json!({})).await;
                Step::Continue
            }
            Some(PeerEvent::Connected) => Step::Continue,
            Some(PeerEvent::Failed) | None => Step::Close(0, "Peer connection failed"),
        }
    }

    async fn message(&mut self, text: &str) -> Step {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            warn!("not JSON; closing the socket");
            return Step::Gone;
        };
        let method = msg
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let body = msg.get("body").cloned().unwrap_or(Value::Null);
        let Some(dialog_id) = msg.get("dialog_id").and_then(Value::as_str) else {
            if method == "close" {
                return self.hangup(&body);
            }
            warn!(method, "message without dialog_id; closing the socket");
            return Step::Gone;
        };
        if self.dialog_id.is_empty() {
            self.dialog_id = dialog_id.to_owned();
        }
        if let Some(s) = &self.session {
            let door = body.get("doorbot_id").and_then(Value::as_u64);
            let sid = body.get("session_id").and_then(Value::as_str);
            if door.is_some_and(|d| d != s.camera) || sid.is_some_and(|i| i != s.id) {
                debug!(method, "ignoring a message for another session");
                return Step::Continue;
            }
        }
        match method {
            "live_view" => return self.live_view(&body).await,
            "ice" => {
                let cand = body.get("ice").and_then(Value::as_str).unwrap_or_default();
                let idx = body.get("mlineindex").and_then(Value::as_u64).unwrap_or(0);
                if let (Some(s), false) = (&self.session, cand.is_empty()) {
                    s.peer
                        .add_candidate(cand.to_owned(), u16::try_from(idx).unwrap_or(0))
                        .await;
                }
            }
            "camera_options" => {
                if let (Some(s), Some(stealth)) = (
                    &self.session,
                    body.get("stealth_mode").and_then(Value::as_bool),
                ) {
                    debug!(stealth, "camera options");
                    s.peer.set_speaker(!stealth);
                }
            }
            "activate_session" => {
                if let Some(s) = self.session.as_mut() {
                    s.activated = true;
                }
            }
            "ping" => {
                if let Some(s) = self.session.as_mut() {
                    s.last_ping = Instant::now();
                }
                self.send("pong", json!({})).await;
            }
            "close" => return self.hangup(&body),
            other => debug!(method = other, "signalling message"),
        }
        Step::Continue
    }

    /// A client `close`: counts the hang-up and ends the socket's dialog.
    fn hangup(&self, body: &Value) -> Step {
        let reason = body.get("reason").cloned().unwrap_or_default();
        info!(%reason, "client hung up");
        self.sim.hangups.fetch_add(1, Ordering::SeqCst);
        Step::Hangup
    }

    async fn live_view(&mut self, body: &Value) -> Step {
        if self.session.is_some() {
            warn!("second live_view on one socket ignored");
            return Step::Continue;
        }
        let camera = match body.get("doorbot_id") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let (Some(camera), Some(offer)) = (camera, body.get("sdp").and_then(Value::as_str)) else {
            return Step::Close(CLOSE_INTERNAL, "live_view needs doorbot_id and sdp");
        };
        if !(self.sim.camera_online)(camera) {
            return Step::Close(CLOSE_CAMERA_OFFLINE, "Camera is offline");
        }
        let file = self.sim.media_file(camera);
        let mode = self.sim.video_mode(camera);
        let Some(choice) = h265::choose(mode, offer, file.is_some()) else {
            info!(
                ?mode,
                "the offer has no H.265 and this camera streams nothing else"
            );
            return Step::Close(
                h265::CLOSE_CODEC,
                "Codec negotiation failed: the camera streams H.265 only",
            );
        };
        let o = &self.sim.opts;
        let key = clip::ClipKey {
            width: o.width,
            height: o.height,
            fps: o.fps,
            gop_secs: o.gop_secs,
            h265: choice.h265,
        };
        let clip = match file {
            Some(path) => clip::get_file(path).await,
            None => clip::get(key).await,
        };
        let clip = match clip {
            Ok(c) => c,
            Err(e) => {
                warn!(err = %format!("{e:#}"), "cannot encode the simulator clip");
                return Step::Close(CLOSE_INTERNAL, "Camera media unavailable");
            }
        };
        let (tx, events) = mpsc::unbounded_channel();
        let answer = SimPeer::answer(
            offer.to_owned(),
            clip,
            choice.h265,
            camera,
            Arc::clone(&self.sim.talk),
            tx,
            &self.sim.opts,
        )
        .await;
        let (peer, sdp) = match answer {
            Ok(a) => a,
            Err(e) => {
                warn!(err = %format!("{e:#}"), "cannot answer the offer");
                return Step::Close(CLOSE_INTERNAL, "Negotiation failed");
            }
        };
        let id = uuid::Uuid::new_v4().to_string();
        self.sim.total.fetch_add(1, Ordering::SeqCst);
        self.sim.active.fetch_add(1, Ordering::SeqCst);
        let span = tracing::Span::current();
        span.record("camera", camera);
        span.record("session", id.as_str());
        info!("session created");
        let now = Instant::now();
        self.session = Some(Session {
            id: id.clone(),
            camera,
            peer,
            events,
            created: now,
            last_ping: now,
            activated: false,
            connected: false,
        });
        self.send("session_created", json!({})).await;
        self.send("sdp", json!({"sdp": sdp, "type": "answer"}))
            .await;
        if choice.transcoded {
            self.send(
                "stream_info",
                json!({"transcoding": true, "transcoding_reason": "codec_mismatch"}),
            )
            .await;
        }
        Step::Continue
    }
}
