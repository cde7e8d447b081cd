//! [`LiveCall`]: one Ring live view, from `live_view` to `close`.
//!
//! A driver task owns the signalling websocket and the peer connection; the
//! `LiveCall` handle owns the frame queue. The driver always hangs up
//! explicitly (`close {reason{code:0}}`, then a websocket close) when the
//! handle asks, is dropped, or the caller's cancellation token fires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};
use url::Url;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

use super::error::{CloseReason, Error, ErrorInner, close_code};
use super::media::{self, MediaShared};
use super::signalling::{self, Event, Incoming};
use super::talk::{TalkSender, TalkTrack};
use super::{AudioCodec, LiveFrame, LiveOptions, peer};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How the call ended: `Ok(None)` we hung up, `Ok(Some(reason))` Ring closed
/// normally (code 0), `Err` anything else.
type End = Result<Option<CloseReason>, Error>;

#[derive(Clone, Debug)]
enum State {
    Connecting,
    Connected {
        session_id: String,
        since: Instant,
        audio: Option<AudioCodec>,
    },
    Ended(End),
}

/// A live call to one Ring camera. Frames come from [`Self::next_frame`];
/// hang up with [`Self::close`] (dropping the handle also hangs up, in the
/// background).
pub struct LiveCall {
    camera: u64,
    session_id: String,
    since: Instant,
    audio: Option<AudioCodec>,
    frames_rx: mpsc::Receiver<LiveFrame>,
    state_rx: watch::Receiver<State>,
    media: Arc<MediaShared>,
    talk: TalkSender,
    hang_up: CancellationToken,
    driver: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LiveCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCall")
            .field("camera", &self.camera)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl LiveCall {
    /// Starts a live call and returns once the peer connection is up (or fails).
    ///
    /// `ticket` comes from `RingApi::live_ticket` (one use); `signalling` is the
    /// websocket base URL ([`super::RING_SIGNALLING_URL`], or the simulator's
    /// `ws://host:port/ws`); `doorbot_id` is the camera's numeric id. When
    /// `cancel` fires the call hangs up. Bounded by `opts.connect_timeout`.
    pub async fn connect(
        ticket: &str,
        signalling: &Url,
        doorbot_id: u64,
        opts: &LiveOptions,
        cancel: &CancellationToken,
    ) -> Result<LiveCall, Error> {
        let err = |inner| Error::new(doorbot_id, None, inner);
        if !matches!(signalling.scheme(), "ws" | "wss") {
            return Err(err(ErrorInner::BadUrl(format!(
                "scheme {:?}",
                signalling.scheme()
            ))));
        }
        let hang_up = cancel.child_token();
        let dialog_id = uuid::Uuid::new_v4().to_string();
        let span = info_span!("live_call", camera = doorbot_id, dialog = %dialog_id, session = tracing::field::Empty);
        let talk_track = TalkTrack::new(opts.talk_payload_type, opts.talk_ssrc);
        let (frames_tx, frames_rx) = mpsc::channel(opts.frame_queue.max(16));
        let media = Arc::new(MediaShared {
            frames_tx,
            start: Instant::now(),
            pli: Notify::new(),
            tasks: TaskTracker::new(),
            cancel: hang_up.child_token(),
            span: span.clone(),
        });
        let (state_tx, mut state_rx) = watch::channel(State::Connecting);
        let driver = Driver {
            camera: doorbot_id,
            dialog_id,
            session_id: None,
            session_since: None,
            opts: opts.clone(),
            state_tx,
            cancel: hang_up.clone(),
            media: Arc::clone(&media),
            talk: Arc::clone(&talk_track),
        };
        let url = signalling::socket_url(signalling, ticket);
        let handle = tokio::spawn(driver.run(url).instrument(span));
        let mut call = LiveCall {
            camera: doorbot_id,
            session_id: String::new(),
            since: Instant::now(),
            audio: None,
            frames_rx,
            state_rx: state_rx.clone(),
            media,
            talk: TalkSender::new(talk_track, doorbot_id),
            hang_up,
            driver: Some(handle),
        };
        let waited = tokio::time::timeout(
            opts.connect_timeout,
            state_rx.wait_for(|s| !matches!(s, State::Connecting)),
        )
        .await
        // Clone out of the watch guard at once: it must not live across an await.
        .map(|r| r.map(|s| s.clone()));
        let state = match waited {
            Ok(Ok(s)) => s,
            Ok(Err(_)) => State::Ended(Err(err(ErrorInner::PeerFailed("driver gone")))),
            Err(_) => {
                let _ = call.close().await;
                let after = opts.connect_timeout;
                return Err(err(ErrorInner::Timeout {
                    what: "the live call to connect",
                    after,
                }));
            }
        };
        match state {
            State::Connected {
                session_id,
                since,
                audio,
            } => {
                call.session_id = session_id;
                call.since = since;
                call.audio = audio;
                Ok(call)
            }
            State::Ended(end) => {
                call.join().await;
                Err(match end {
                    Err(e) => e,
                    Ok(Some(reason)) => {
                        Error::new(doorbot_id, None, ErrorInner::ServerClosed(reason))
                    }
                    Ok(None) => err(ErrorInner::Cancelled),
                })
            }
            State::Connecting => Err(err(ErrorInner::PeerFailed("still connecting"))),
        }
    }

    /// The next frame. `Ok(None)` once the call has ended normally (we hung up,
    /// or Ring closed with code 0, e.g. at its session cap: see
    /// [`Self::close_reason`]); `Err` when it ended abnormally (Ring `close` with
    /// a non-zero code, signalling lost, peer failed). Frames already queued are
    /// returned before the end.
    pub async fn next_frame(&mut self) -> Result<Option<LiveFrame>, Error> {
        tokio::select! {
            biased;
            f = self.frames_rx.recv() => Ok(f),
            s = self.state_rx.wait_for(|s| matches!(s, State::Ended(_))) => match s.map(|s| s.clone()) {
                Ok(State::Ended(Err(e))) => Err(e),
                _ => Ok(None),
            },
        }
    }

    /// Asks the camera for a key frame (RTCP PLI) soon. Never blocks.
    pub fn request_keyframe(&self) {
        self.media.pli.notify_one();
    }

    /// The talkback sender of this call (audio into the camera speaker).
    pub fn talk_sender(&self) -> TalkSender {
        self.talk.clone()
    }

    /// Time since Ring created the session (for restarting before Ring's cap).
    pub fn session_age(&self) -> Duration {
        self.since.elapsed()
    }

    /// Ring's session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The camera (`doorbot_id`).
    pub fn camera(&self) -> u64 {
        self.camera
    }

    /// The audio codec Ring answered with (received audio and talkback).
    pub fn audio_codec(&self) -> Option<AudioCodec> {
        self.audio
    }

    /// Whether the call has ended (for whatever reason).
    pub fn is_ended(&self) -> bool {
        matches!(*self.state_rx.borrow(), State::Ended(_))
    }

    /// The reason Ring gave if Ring closed the session (any code).
    pub fn close_reason(&self) -> Option<CloseReason> {
        match &*self.state_rx.borrow() {
            State::Ended(Ok(Some(r))) => Some(r.clone()),
            State::Ended(Err(e)) => e.close_reason().cloned(),
            _ => None,
        }
    }

    /// Hangs up: sends `close {reason{code:0,text:""}}`, closes the socket and
    /// the peer, and waits for that to finish. Idempotent. Returns the error the
    /// call had already ended with, if any.
    pub async fn close(&mut self) -> Result<(), Error> {
        self.hang_up.cancel();
        self.join().await;
        match &*self.state_rx.borrow() {
            State::Ended(Err(e)) if !matches!(e.inner(), ErrorInner::Cancelled) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    async fn join(&mut self) {
        if let Some(h) = self.driver.take()
            && let Err(e) = h.await
        {
            warn!(camera = self.camera, err = %e, "live call driver panicked");
        }
    }
}

impl Drop for LiveCall {
    fn drop(&mut self) {
        self.hang_up.cancel();
    }
}

/// What woke the driver loop.
enum Wake {
    Cancelled,
    Socket(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    LocalIce(RTCIceCandidateInit),
    PeerState(RTCPeerConnectionState),
    Ping,
}

struct Driver {
    camera: u64,
    dialog_id: String,
    session_id: Option<String>,
    /// When `session_created` arrived.
    session_since: Option<Instant>,
    opts: LiveOptions,
    state_tx: watch::Sender<State>,
    cancel: CancellationToken,
    media: Arc<MediaShared>,
    talk: Arc<TalkTrack>,
}

/// The driver's per-call working set, created once the socket is open.
struct Conn {
    ws: Ws,
    pc: Arc<RTCPeerConnection>,
    offer: String,
    ice_rx: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    pc_rx: watch::Receiver<RTCPeerConnectionState>,
    remote_set: bool,
    pending_ice: Vec<RTCIceCandidateInit>,
    activated: bool,
    connected: bool,
    audio: Option<AudioCodec>,
}

impl Driver {
    fn err(&self, inner: ErrorInner) -> Error {
        Error::new(self.camera, self.session_id.clone(), inner)
    }

    async fn run(mut self, url: Url) {
        // Only the socket connect is raced with cancellation: once the socket
        // is open, setup runs to the end (it is local and quick) so that a
        // cancelled call still hangs up explicitly and closes its peer.
        let cancel = self.cancel.clone();
        let opened = tokio::select! {
            _ = cancel.cancelled() => Ok(None),
            r = self.connect_socket(url) => r.map(Some),
        };
        let end = match opened {
            Ok(Some(ws)) => match self.offer(ws).await {
                Ok(conn) => self.serve(conn).await,
                Err(e) => Err(e),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        // A normal `close` found by `salvage_close` is a normal end.
        let end = match end {
            Err(e)
                if e.close_reason()
                    .is_some_and(|r| r.code == close_code::NORMAL) =>
            {
                Ok(e.close_reason().cloned())
            }
            end => end,
        };
        match &end {
            Ok(None) => info!("hung up"),
            Ok(Some(r)) => info!(reason = %r, "Ring ended the session"),
            Err(e) => info!(err = %e, "live call ended"),
        }
        self.talk.hang_up();
        self.media.cancel.cancel();
        self.media.tasks.close();
        self.state_tx.send_replace(State::Ended(end));
        let _ = tokio::time::timeout(Duration::from_secs(2), self.media.tasks.wait()).await;
    }

    /// Opens the signalling websocket (with the required `User-Agent`).
    async fn connect_socket(&self, url: Url) -> Result<Ws, Error> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| self.err(ErrorInner::BadUrl(e.to_string())))?;
        let ua = http::HeaderValue::from_str(&self.opts.user_agent)
            .map_err(|e| self.err(ErrorInner::BadUrl(format!("user agent: {e}"))))?;
        req.headers_mut().insert(http::header::USER_AGENT, ua);
        let (ws, _) = tokio::time::timeout(
            self.opts.connect_timeout,
            tokio_tungstenite::connect_async(req),
        )
        .await
        .map_err(|_| {
            self.err(ErrorInner::Timeout {
                what: "the signalling websocket",
                after: self.opts.connect_timeout,
            })
        })?
        .map_err(|e| {
            self.err(ErrorInner::Connect {
                host,
                source: Box::new(e),
            })
        })?;
        Ok(ws)
    }

    /// Builds the peer and sends `live_view` with the offer. On failure the
    /// peer is closed again.
    async fn offer(&mut self, ws: Ws) -> Result<Conn, Error> {
        let (pc, talk_sender) = peer::new_peer(&self.opts, Arc::clone(&self.talk))
            .await
            .map_err(|source| {
                self.err(ErrorInner::WebRtc {
                    context: "creating the peer",
                    source,
                })
            })?;
        media::install(&pc, Arc::clone(&self.media));
        media::spawn_rtcp_drain(&self.media, media::RtcpSource::Sender(talk_sender));
        let r = self.send_offer(ws, Arc::clone(&pc)).await;
        if r.is_err() {
            let _ = tokio::time::timeout(Duration::from_secs(2), pc.close()).await;
        }
        r
    }

    /// Wires the peer's callbacks, creates the offer and sends `live_view`.
    async fn send_offer(&self, mut ws: Ws, pc: Arc<RTCPeerConnection>) -> Result<Conn, Error> {
        let rtc = |context| move |source| self.err(ErrorInner::WebRtc { context, source });
        let (ice_tx, ice_rx) = mpsc::unbounded_channel();
        pc.on_ice_candidate(Box::new(move |c| {
            if let Some(init) = c.and_then(|c| c.to_json().ok()) {
                let _ = ice_tx.send(init);
            }
            Box::pin(async {})
        }));
        let (pc_tx, pc_rx) = watch::channel(RTCPeerConnectionState::New);
        pc.on_peer_connection_state_change(Box::new(move |s| {
            pc_tx.send_replace(s);
            Box::pin(async {})
        }));
        let offer = pc
            .create_offer(None)
            .await
            .map_err(rtc("creating the offer"))?;
        let offer_sdp = offer.sdp.clone();
        pc.set_local_description(offer)
            .await
            .map_err(rtc("applying the offer"))?;
        let body = json!({
            "stream_options": {"audio_enabled": true, "video_enabled": true},
            "sdp": offer_sdp,
            "type": "offer",
        });
        self.send(&mut ws, "live_view", body).await?;
        debug!("sent live_view offer");
        Ok(Conn {
            ws,
            pc,
            offer: offer_sdp,
            ice_rx,
            pc_rx,
            remote_set: false,
            pending_ice: Vec::new(),
            activated: false,
            connected: false,
            audio: None,
        })
    }

    async fn send(&self, ws: &mut Ws, method: &str, body: Value) -> Result<(), Error> {
        let text = signalling::frame(
            method,
            &self.dialog_id,
            self.camera,
            self.session_id.as_deref(),
            body,
        );
        match ws.send(Message::text(text)).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.err(match self.salvage_close(ws).await {
                Some(reason) => ErrorInner::ServerClosed(reason),
                None => ErrorInner::WebSocket(Box::new(e)),
            })),
        }
    }

    /// After a failed send: Ring may have closed the session just before (e.g.
    /// a bad ticket is refused right after the upgrade). Looks briefly for its
    /// `close` message among what was already received.
    async fn salvage_close(&self, ws: &mut Ws) -> Option<CloseReason> {
        let look = async {
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                let Ok(msg) = serde_json::from_str::<Incoming>(t.as_str()) else {
                    continue;
                };
                if let Ok(Event::Close(r)) = msg.event() {
                    return Some(r);
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_millis(500), look)
            .await
            .ok()
            .flatten()
    }

    async fn serve(&mut self, mut c: Conn) -> End {
        let period = self.opts.ping_interval.max(Duration::from_millis(100));
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let end = loop {
            let wake = tokio::select! {
                _ = self.cancel.cancelled() => Wake::Cancelled,
                m = c.ws.next() => Wake::Socket(m),
                Some(i) = c.ice_rx.recv() => Wake::LocalIce(i),
                Ok(()) = c.pc_rx.changed() => Wake::PeerState(*c.pc_rx.borrow_and_update()),
                _ = ping.tick(), if c.activated => Wake::Ping,
            };
            match self.handle(&mut c, wake).await {
                Ok(None) => {}
                Ok(Some(end)) => break end,
                Err(e) => break Err(e),
            }
        };
        if matches!(end, Ok(None)) {
            // Explicit hang-up, as Ring's clients do (ring-api.md §6.3 step 8).
            let body = json!({"reason": {"code": close_code::NORMAL, "text": ""}});
            if let Err(e) = self.send(&mut c.ws, "close", body).await {
                debug!(err = %e, "could not send close");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), c.ws.close(None)).await;
        if let Err(e) = tokio::time::timeout(Duration::from_secs(2), c.pc.close()).await {
            debug!(err = %e, "closing the peer timed out");
        }
        end
    }

    /// Handles one wake-up; `Ok(Some(end))` ends the call.
    async fn handle(&mut self, c: &mut Conn, wake: Wake) -> Result<Option<End>, Error> {
        match wake {
            Wake::Cancelled => return Ok(Some(Ok(None))),
            Wake::Ping => self.send(&mut c.ws, "ping", Value::Null).await?,
            Wake::LocalIce(init) if init.candidate.is_empty() => {}
            Wake::LocalIce(init) => {
                let body =
                    json!({"ice": init.candidate, "mlineindex": init.sdp_mline_index.unwrap_or(0)});
                self.send(&mut c.ws, "ice", body).await?;
            }
            Wake::PeerState(s) => {
                debug!(state = %s, "peer connection state");
                match s {
                    RTCPeerConnectionState::Connected if !c.connected => {
                        c.connected = true;
                        let session_id = self.session_id.clone().unwrap_or_default();
                        info!(audio = ?c.audio, "live call connected");
                        self.state_tx.send_replace(State::Connected {
                            session_id,
                            since: self.session_since.unwrap_or_else(Instant::now),
                            audio: c.audio,
                        });
                    }
                    RTCPeerConnectionState::Failed => {
                        return Err(self.err(ErrorInner::PeerFailed("failed")));
                    }
                    RTCPeerConnectionState::Closed => {
                        return Err(self.err(ErrorInner::PeerFailed("closed")));
                    }
                    _ => {}
                }
            }
            Wake::Socket(None) | Wake::Socket(Some(Ok(Message::Close(_)))) => {
                return Err(self.err(ErrorInner::SignallingLost));
            }
            Wake::Socket(Some(Err(e))) => return Err(self.err(ErrorInner::WebSocket(Box::new(e)))),
            Wake::Socket(Some(Ok(Message::Text(t)))) => return self.message(c, t.as_str()).await,
            Wake::Socket(Some(Ok(_))) => {}
        }
        Ok(None)
    }

    async fn message(&mut self, c: &mut Conn, text: &str) -> Result<Option<End>, Error> {
        let msg: Incoming = serde_json::from_str(text).map_err(|e| {
            self.err(ErrorInner::Protocol {
                method: "?".into(),
                detail: e.to_string(),
            })
        })?;
        if !msg.is_for(self.camera, self.session_id.as_deref()) {
            debug!(method = %msg.method, "dropping a message for another camera or session");
            return Ok(None);
        }
        let method = msg.method.clone();
        let protocol = |detail: String| ErrorInner::Protocol {
            method: method.clone(),
            detail,
        };
        match msg.event().map_err(|d| self.err(protocol(d)))? {
            Event::Session(id) => {
                if self.session_id.is_none() {
                    info!(session = %id, "session created");
                    self.media.span.record("session", id.as_str());
                    self.session_id = Some(id);
                    self.session_since = Some(Instant::now());
                }
            }
            Event::Answer(sdp) => {
                let fixed = signalling::fix_answer(&c.offer, &sdp);
                c.audio = signalling::answered_audio_codec(&fixed);
                let desc = RTCSessionDescription::answer(fixed)
                    .map_err(|e| self.err(protocol(e.to_string())))?;
                c.pc.set_remote_description(desc)
                    .await
                    .map_err(|e| self.err(protocol(format!("applying the answer: {e}"))))?;
                c.remote_set = true;
                for init in c.pending_ice.drain(..) {
                    if let Err(e) = c.pc.add_ice_candidate(init).await {
                        debug!(err = %e, "ignoring a bad remote candidate");
                    }
                }
                self.send(&mut c.ws, "activate_session", Value::Null)
                    .await?;
                let opts = json!({"audio_enabled": true, "video_enabled": true});
                self.send(&mut c.ws, "stream_options", opts).await?;
                c.activated = true;
                debug!(audio = ?c.audio, "answer applied; session activated");
            }
            Event::Ice {
                candidate,
                mline_index,
            } => {
                if candidate.is_empty() {
                    return Ok(None);
                }
                let init = RTCIceCandidateInit {
                    candidate,
                    sdp_mline_index: Some(mline_index),
                    ..Default::default()
                };
                if c.remote_set {
                    if let Err(e) = c.pc.add_ice_candidate(init).await {
                        debug!(err = %e, "ignoring a bad remote candidate");
                    }
                } else {
                    c.pending_ice.push(init);
                }
            }
            Event::Notification { is_ok, text } => {
                if !is_ok {
                    warn!(%text, "Ring notification not ok");
                } else {
                    debug!(%text, "notification");
                }
                if text == "camera_connected" && self.opts.talkback {
                    self.send(&mut c.ws, "camera_options", json!({"stealth_mode": false}))
                        .await?;
                }
            }
            Event::Close(reason) if reason.code == close_code::NORMAL => {
                return Ok(Some(Ok(Some(reason))));
            }
            Event::Close(reason) => return Err(self.err(ErrorInner::ServerClosed(reason))),
            Event::Other(m) => debug!(method = %m, "signalling message"),
        }
        Ok(None)
    }
}
