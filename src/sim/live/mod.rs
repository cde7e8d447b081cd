//! The simulator's live-view side: a fake Ring signalling server (`GET /ws`)
//! and a WebRTC camera peer per session that streams a looped, pre-encoded
//! H.264 (or, for cameras in HEVC mode, H.265: [`h265`]) + Opus clip and measures
//! the talkback it receives.
//!
//! It follows ring-api.md §6 from the server's side closely enough that
//! `ring::live::LiveCall` cannot tell it from Ring, including the faults:
//! bad tickets (close 5), missing pings (close 6), the session cap (close 0),
//! offline cameras, and dropped sockets ([`LiveSim::drop_signalling`]).
//! It owns no REST: tickets and camera state come in as closures from the rest
//! of the simulator.
//!
//! ```ignore
//! let live = LiveSim::new(
//!     LiveSimOptions::default(),
//!     Box::new(move |ticket| state.take_ticket(ticket)),
//!     Box::new(move |camera| state.camera_online(camera)),
//! );
//! let app = rest_router.merge(live.router()); // GET /ws
//! // ... on shutdown:
//! live.shutdown().await;
//! ```

mod clip;
pub mod h265;
mod loss;
mod peer;
mod session;
pub mod stamp;
mod talkback;

#[cfg(test)]
pub use session::{CLOSE_CAMERA_OFFLINE, CLOSE_INTERNAL};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::field::Empty;
use tracing::{Instrument, info_span};

use talkback::TalkMap;

/// Options of the simulated live view.
#[derive(Clone, Debug)]
pub struct LiveSimOptions {
    /// The simulator closes every session (code 0) after this long. Default 600 s
    /// (the `max_duration` Ring's push payloads carry).
    pub session_cap: Duration,
    /// Video width in pixels. Default 1920.
    pub width: u32,
    /// Video height in pixels. Default 1080.
    pub height: u32,
    /// Frames per second. Default 15.
    pub fps: u32,
    /// Seconds per GOP (key-frame interval). Default 2 (Ring's interval).
    pub gop_secs: u32,
    /// The session is closed with code 6 when no `ping` came for this long.
    /// Default 30 s.
    pub ping_timeout: Duration,
    /// Stamp every video access unit with an SEI carrying a frame counter and
    /// the send time, for `ring-bridge bench` (see [`stamp`]). Default off.
    pub stamp_frames: bool,
    /// Drop the first transmission of every n-th video RTP packet (its
    /// retransmission after a NACK goes through), to test loss recovery.
    /// Default `None`: no loss.
    pub video_loss_every: Option<u32>,
    /// Opus packets sent back to back each time audio is due: 1 (the default) is
    /// Ring's schedule, one 20 ms packet every 20 ms; `n` sends `n` packets every
    /// `n` × 20 ms (the same audio in fewer bursts); 0 sends no audio. Only for
    /// measuring what a receiver pays per burst (`ring-bridge bench
    /// --sim-audio-per-send`).
    pub audio_per_send: u32,
}

impl Default for LiveSimOptions {
    fn default() -> Self {
        LiveSimOptions {
            session_cap: Duration::from_secs(600),
            width: 1920,
            height: 1080,
            fps: 15,
            gop_secs: 2,
            ping_timeout: Duration::from_secs(30),
            stamp_frames: false,
            video_loss_every: None,
            audio_per_send: 1,
        }
    }
}

/// A camera's [`h265::VideoMode`] by id, looked up at each `live_view`.
pub type VideoLookup = Box<dyn Fn(u64) -> h265::VideoMode + Send + Sync>;

/// Maps a camera id to the user's media file for it (`sim --media DIR`).
pub type MediaLookup = Box<dyn Fn(u64) -> Option<std::path::PathBuf> + Send + Sync>;

/// The simulated live-view service. Shared as `Arc<LiveSim>`.
pub struct LiveSim {
    opts: LiveSimOptions,
    validate_ticket: Box<dyn Fn(&str) -> bool + Send + Sync>,
    camera_online: Box<dyn Fn(u64) -> bool + Send + Sync>,
    camera_media: Mutex<Option<MediaLookup>>,
    camera_video: Mutex<Option<VideoLookup>>,
    active: AtomicU64,
    total: AtomicU64,
    talk: TalkMap,
    conns: Mutex<HashMap<u64, CancellationToken>>,
    next_conn: AtomicU64,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// `close` messages received from clients (`live_hangups` in the stats).
    hangups: AtomicU64,
}

impl std::fmt::Debug for LiveSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSim")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl LiveSim {
    /// A new simulator. `validate_ticket` is called once per socket with the
    /// `token` query parameter (the closure should consume one-use tickets);
    /// `camera_online` decides whether a `live_view` for a `doorbot_id` is
    /// answered or closed with [`CLOSE_CAMERA_OFFLINE`].
    ///
    /// When called inside a tokio runtime, the clip starts encoding in the
    /// background so the first session does not wait for it.
    pub fn new(
        opts: LiveSimOptions,
        validate_ticket: Box<dyn Fn(&str) -> bool + Send + Sync>,
        camera_online: Box<dyn Fn(u64) -> bool + Send + Sync>,
    ) -> Arc<Self> {
        let sim = Arc::new(LiveSim {
            opts,
            validate_ticket,
            camera_online,
            camera_media: Mutex::new(None),
            camera_video: Mutex::new(None),
            active: AtomicU64::new(0),
            total: AtomicU64::new(0),
            talk: Arc::default(),
            conns: Mutex::default(),
            next_conn: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            hangups: AtomicU64::new(0),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            let key = sim.clip_key();
            sim.tracker.spawn(async move {
                if let Err(e) = clip::get(key).await {
                    tracing::warn!(err = %format!("{e:#}"), "pre-encoding the simulator clip failed");
                }
            });
        }
        sim
    }

    fn clip_key(&self) -> clip::ClipKey {
        clip::ClipKey {
            width: self.opts.width,
            height: self.opts.height,
            fps: self.opts.fps,
            gop_secs: self.opts.gop_secs,
            h265: false,
        }
    }

    /// Makes cameras for which `lookup` returns a path stream that H.264 MP4
    /// (its first minute, looped) instead of the generated clip.
    pub fn set_camera_media(&self, lookup: MediaLookup) {
        if let Ok(mut m) = self.camera_media.lock() {
            *m = Some(lookup);
        }
    }

    /// The media file of `camera`, if one was configured.
    /// Sets how each camera picks its video codec (default: every camera
    /// [`h265::VideoMode::Legacy`]).
    pub fn set_camera_video(&self, lookup: VideoLookup) {
        if let Ok(mut m) = self.camera_video.lock() {
            *m = Some(lookup);
        }
    }

    pub(crate) fn video_mode(&self, camera: u64) -> h265::VideoMode {
        self.camera_video
            .lock()
            .ok()
            .and_then(|f| f.as_ref().map(|f| f(camera)))
            .unwrap_or_default()
    }

    pub(crate) fn media_file(&self, camera: u64) -> Option<std::path::PathBuf> {
        self.camera_media
            .lock()
            .ok()?
            .as_ref()
            .and_then(|f| f(camera))
    }

    /// The signalling route: `GET /ws` (websocket upgrade). Mount it at the
    /// root of the simulator's app so clients use `ws://host:port/ws`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/ws", get(ws_handler))
            .with_state(Arc::clone(self))
    }

    /// Counters: `{"live_sessions_active":N,"live_sessions_total":N,
    /// "talkback":{"<camera id>":{"packets":N,"energy":X,"audio_ms":N,
    /// "loud_ms":N,"loud_span_ms":N}}}`. `packets` counts every talkback RTP
    /// packet; the rest measure the talkback audio played while the camera
    /// speaker was on (`camera_options {stealth_mode:false}`, as Ring's clients
    /// send), over all sessions: `energy` its RMS (0..=1), `audio_ms` its
    /// length, `loud_ms` the 20 ms windows at or above -40 dBFS, `loud_span_ms`
    /// from the first such window to the end of the last.
    pub fn stats(&self) -> serde_json::Value {
        let talk: serde_json::Map<String, serde_json::Value> = self
            .talk
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(cam, s)| {
                        (
                            cam.to_string(),
                            json!({
                                "packets": s.packets,
                                "energy": s.energy(),
                                "audio_ms": s.audio_ms(),
                                "loud_ms": s.loud_ms(),
                                "loud_span_ms": s.loud_span_ms(),
                            }),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "live_sessions_active": self.active.load(Ordering::SeqCst),
            "live_sessions_total": self.total.load(Ordering::SeqCst),
            "talkback": talk,
            "live_hangups": self.hangups.load(Ordering::SeqCst),
        })
    }

    /// How many `close` messages clients have sent.
    #[cfg(test)]
    pub(crate) fn client_hangups(&self) -> u64 {
        self.hangups.load(Ordering::SeqCst)
    }

    /// Fault injection: closes every signalling socket abruptly (no `close`
    /// message, no websocket close frame). Their sessions end too.
    pub fn drop_signalling(&self) {
        if let Ok(conns) = self.conns.lock() {
            for abort in conns.values() {
                abort.cancel();
            }
        }
    }

    /// Closes every session (`close` code 0) and waits (up to 5 s) for the
    /// connection tasks to finish. New sockets are refused afterwards.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("live simulator connections did not finish within 5 s");
        }
    }
}

/// Test seam for WHEP clients (the bench's): answers `offer` like a simulated
/// camera and streams the clip for `opts` (stamped when `opts.stamp_frames`)
/// once connected. Keep the returned peer alive; `close` it at the end.
#[cfg(test)]
pub(crate) async fn answer_as_camera(
    opts: &LiveSimOptions,
    offer: String,
) -> anyhow::Result<(CameraPeer, String)> {
    let key = clip::ClipKey {
        width: opts.width,
        height: opts.height,
        fps: opts.fps,
        gop_secs: opts.gop_secs,
        h265: false,
    };
    let clip = clip::get(key).await?;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (p, sdp) = peer::SimPeer::answer(offer, clip, false, 1, Arc::default(), tx, opts).await?;
    let started = Arc::clone(&p);
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if ev == peer::PeerEvent::Connected {
                started.start_media();
            }
        }
    });
    Ok((CameraPeer(p), sdp))
}

/// A simulated camera peer made by [`answer_as_camera`].
#[cfg(test)]
pub(crate) struct CameraPeer(Arc<peer::SimPeer>);

#[cfg(test)]
impl CameraPeer {
    /// Stops its media and closes it.
    pub(crate) async fn close(&self) {
        self.0.close().await;
    }
}

fn reject(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

async fn ws_handler(
    State(sim): State<Arc<LiveSim>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if sim.shutdown.is_cancelled() {
        return reject(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    if !headers.contains_key(header::USER_AGENT) {
        return reject(StatusCode::BAD_REQUEST, "User-Agent header required");
    }
    let param = |k: &str| q.get(k).map(String::as_str);
    if param("api_version") != Some("4.0")
        || param("auth_type") != Some("ring_solutions")
        || !param("client_id").is_some_and(|c| c.starts_with("ring_site-"))
    {
        return reject(
            StatusCode::BAD_REQUEST,
            "api_version, auth_type and client_id required",
        );
    }
    let Some(token) = param("token") else {
        return reject(StatusCode::BAD_REQUEST, "token required");
    };
    let ticket_ok = (sim.validate_ticket)(token);
    let id = sim.next_conn.fetch_add(1, Ordering::Relaxed);
    ws.on_upgrade(move |socket| {
        let abort = CancellationToken::new();
        if let Ok(mut conns) = sim.conns.lock() {
            conns.insert(id, abort.clone());
        }
        let fut = {
            let sim = Arc::clone(&sim);
            async move {
                session::serve(Arc::clone(&sim), socket, ticket_ok, abort).await;
                if let Ok(mut conns) = sim.conns.lock() {
                    conns.remove(&id);
                }
            }
        };
        sim.tracker.track_future(fut).instrument(info_span!(
            "sim_live",
            conn = id,
            camera = Empty,
            session = Empty
        ))
    })
}
