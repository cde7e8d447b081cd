//! The live call's driver task: owns the signalling websocket and talks to the
//! call's pump (`pump.rs`, which owns the WebRTC instance), runs the §6.3
//! message sequence, pings, and hangs up.
//!
//! One task per call. Every await is raced with the call's cancellation
//! (except the quick local setup after the socket is open, so that even a
//! cancelled call hangs up explicitly and closes its peer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use url::Url;

use super::error::{CloseReason, Error, ErrorInner, close_code};
use super::media::MediaShared;
use super::pump::{self, Command, PeerEvent, PumpHandle};
use super::signalling::{self, Event, Incoming};
use super::talk::{TalkRtp, TalkTrack};
use super::{AudioCodec, LiveOptions, peer};
use crate::base::CameraId;
use crate::media::VideoCodec;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the signalling may take to explain an ended media transport.
const PEER_END_GRACE: Duration = Duration::from_secs(1);

/// How the call ended: `Ok(None)` we hung up, `Ok(Some(reason))` Ring closed
/// normally (code 0), `Err` anything else.
pub(super) type End = Result<Option<CloseReason>, Error>;

/// The call's life, published by the driver through a `watch` channel.
#[derive(Clone, Debug)]
pub(super) enum State {
    Connecting,
    Connected {
        session_id: String,
        since: Instant,
        audio: Option<AudioCodec>,
        video: VideoCodec,
    },
    Ended(End),
}

/// What woke the driver loop.
enum Wake {
    Cancelled,
    Socket(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Peer(Option<PeerEvent>),
    Ping,
}

/// Everything the driver task owns; built by `LiveCall::connect`.
pub(super) struct Driver {
    pub(super) camera: CameraId,
    pub(super) dialog_id: String,
    pub(super) session_id: Option<String>,
    /// When `session_created` arrived.
    pub(super) session_since: Option<Instant>,
    pub(super) opts: LiveOptions,
    pub(super) state_tx: watch::Sender<State>,
    pub(super) cancel: CancellationToken,
    pub(super) media: Arc<MediaShared>,
    pub(super) talk: Arc<TalkTrack>,
    /// The talkback packets' way to the pump (taken when the pump starts).
    pub(super) talk_rx: Option<mpsc::Receiver<TalkRtp>>,
}

/// The driver's per-call working set, created once the socket is open.
struct Conn {
    ws: Ws,
    pump: PumpHandle,
    offer: String,
    remote_set: bool,
    pending_ice: Vec<String>,
    activated: bool,
    connected: bool,
    audio: Option<AudioCodec>,
    video: VideoCodec,
}

impl Driver {
    fn err(&self, inner: ErrorInner) -> Error {
        Error::new(self.camera, self.session_id.clone(), inner)
    }

    /// Runs the call to its end, then publishes `State::Ended`.
    pub(super) async fn run(mut self, url: Url) {
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
        // A `wss://` connector builds its TLS config from the default provider.
        crate::base::tls::install_default_provider();
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

    /// Builds the WebRTC instance and its offer, starts the pump, and sends
    /// `live_view` with the offer. On failure the pump is stopped again.
    async fn offer(&mut self, mut ws: Ws) -> Result<Conn, Error> {
        let offered = peer::offer(&self.opts, self.media.start).map_err(|source| {
            self.err(ErrorInner::WebRtc {
                context: "creating the offer",
                source,
            })
        })?;
        let offer_sdp = offered.sdp.clone();
        let talk_rx = self.talk_rx.take().unwrap_or_else(|| mpsc::channel(1).1);
        let pump = pump::start(&self.opts, offered, Arc::clone(&self.media), talk_rx)
            .map_err(|e| self.err(ErrorInner::Sockets(e)))?;
        let body = json!({
            "stream_options": {"audio_enabled": true, "video_enabled": true},
            "sdp": offer_sdp,
            "type": "offer",
        });
        // On failure the pump's handle is dropped, which stops it.
        self.send(&mut ws, "live_view", body).await?;
        debug!("sent live_view offer");
        Ok(Conn {
            ws,
            pump,
            offer: offer_sdp,
            remote_set: false,
            pending_ice: Vec::new(),
            activated: false,
            connected: false,
            audio: None,
            video: VideoCodec::H264,
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
                biased;
                _ = self.cancel.cancelled() => Wake::Cancelled,
                m = c.ws.next() => Wake::Socket(m),
                e = c.pump.events.recv() => Wake::Peer(e),
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
        // Dropping `c` stops the pump, which closes the WebRTC instance; run()
        // joins it with the call's other tasks.
        end
    }

    /// Handles one wake-up; `Ok(Some(end))` ends the call.
    async fn handle(&mut self, c: &mut Conn, wake: Wake) -> Result<Option<End>, Error> {
        match wake {
            Wake::Cancelled => return Ok(Some(Ok(None))),
            Wake::Ping => self.send(&mut c.ws, "ping", Value::Null).await?,
            Wake::Peer(Some(PeerEvent::Candidate(line))) => {
                let body = json!({"ice": line, "mlineindex": 0});
                self.send(&mut c.ws, "ice", body).await?;
            }
            Wake::Peer(Some(PeerEvent::Connected)) => {
                if !c.connected {
                    c.connected = true;
                    let session_id = self.session_id.clone().unwrap_or_default();
                    info!(audio = ?c.audio, video = %c.video, "live call connected");
                    self.state_tx.send_replace(State::Connected {
                        session_id,
                        since: self.session_since.unwrap_or_else(Instant::now),
                        audio: c.audio,
                        video: c.video,
                    });
                }
            }
            Wake::Peer(Some(PeerEvent::Failed(why))) => return self.peer_ended(c, why).await,
            Wake::Peer(None) => return self.peer_ended(c, "closed").await,
            Wake::Socket(None) | Wake::Socket(Some(Ok(Message::Close(_)))) => {
                return Err(self.err(ErrorInner::SignallingLost));
            }
            Wake::Socket(Some(Err(e))) => return Err(self.err(ErrorInner::WebSocket(Box::new(e)))),
            Wake::Socket(Some(Ok(Message::Text(t)))) => return self.message(c, t.as_str()).await,
            Wake::Socket(Some(Ok(_))) => {}
        }
        Ok(None)
    }

    /// The media transport ended. Ring usually ends its side of the media and
    /// the signalling together, so the signalling gets [`PEER_END_GRACE`] to
    /// say why (a `close` with its reason, or the socket ending) before the
    /// call ends as a transport failure.
    async fn peer_ended(&mut self, c: &mut Conn, why: &'static str) -> Result<Option<End>, Error> {
        let deadline = tokio::time::Instant::now() + PEER_END_GRACE;
        loop {
            match tokio::time::timeout_at(deadline, c.ws.next()).await {
                Err(_) => return Err(self.err(ErrorInner::PeerFailed(why))),
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => {
                    return Err(self.err(ErrorInner::SignallingLost));
                }
                Ok(Some(Err(e))) => return Err(self.err(ErrorInner::WebSocket(Box::new(e)))),
                Ok(Some(Ok(Message::Text(t)))) => {
                    if let Some(end) = self.message(c, t.as_str()).await? {
                        return Ok(Some(end));
                    }
                }
                Ok(Some(Ok(_))) => {}
            }
        }
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
                c.video = signalling::answered_video_codec(&fixed);
                let (reply, applied) = oneshot::channel();
                let _ = c.pump.commands.send(Command::Answer { sdp: fixed, reply });
                match applied.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return Err(self.err(protocol(format!("applying the answer: {e}"))));
                    }
                    Err(_) => return Err(self.err(ErrorInner::PeerFailed("closed"))),
                }
                if let Some(codec) = c.audio {
                    self.talk.bind(codec);
                }
                c.remote_set = true;
                for line in c.pending_ice.drain(..) {
                    let _ = c.pump.commands.send(Command::Candidate(line));
                }
                self.send(&mut c.ws, "activate_session", Value::Null)
                    .await?;
                let opts = json!({"audio_enabled": true, "video_enabled": true});
                self.send(&mut c.ws, "stream_options", opts).await?;
                c.activated = true;
                debug!(audio = ?c.audio, "answer applied; session activated");
            }
            Event::Ice { candidate, .. } => {
                if candidate.is_empty() {
                    return Ok(None);
                }
                // One transport for both m-lines (BUNDLE): the index does not matter.
                if c.remote_set {
                    let _ = c.pump.commands.send(Command::Candidate(candidate));
                } else {
                    c.pending_ice.push(candidate);
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
