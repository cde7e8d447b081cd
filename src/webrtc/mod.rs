//! Browser viewers over WebRTC (WHEP, draft-ietf-wish-whep): one str0m instance
//! per viewer, driven by one task (`pump.rs`), fed from the media hub, plus
//! talkback from the viewer's microphone.
//!
//! - [`WhepServer::create_session`] answers a viewer's offer (recvonly video in the
//!   camera's codec, H.264 or H.265 when the offer has it; Opus audio — sendrecv
//!   when the viewer offers its mic) with every host candidate (non-trickle
//!   answer; sockets from the port range, or the shared port of `mux.rs`), takes a hub [`crate::media::Lease`] and, once ICE/DTLS
//!   connect, sends the camera's access units packetized per RFC 6184 or RFC 7798
//!   (no transcoding). An H.265 stream and an offer without H.265 get
//!   [`WhepError::CodecUnavailable`]. See `sdp.rs`, `outbound.rs`.
//! - A PLI/FIR from the viewer becomes `CameraStream::request_keyframe`.
//! - The answer tells the truth about the stream: its H.264 `profile-level-id`
//!   (H.265 `level-id`) is the one of the SPS actually sent (the answer waits,
//!   bounded, for the stream's first key frame), or the closest the offer allows;
//!   `a=rtcp-mux` without component-2 candidates. See `answer.rs`.
//! - Talkback: the viewer's Opus goes to `CameraStream::talkback` while its session
//!   holds the camera's talk floor; one talker per camera. The floor is taken by
//!   speech on the viewer's uplink audio ([`TalkFloor::Voice`], so any WHEP player
//!   with a microphone can talk) or with [`WhepServer::set_talking`], which wins.
//!   The floor is the hub's ([`crate::media::Floors`]), shared with
//!   announcements. See `voice.rs`, `talk.rs` (and `pcmu.rs` for Ring sessions that
//!   negotiated PCMU; the GStreamer uses here go through `crate::codec::opus`).
//! - A session ends on [`WhepServer::delete_session`], ICE failure/close, a viewer
//!   that never connects or goes silent, or [`WhepServer::shutdown`]; its lease and
//!   floor go with it.
//!
//! This module knows nothing about HTTP (`web::whep` maps it to routes) and takes
//! its own [`WhepOptions`], never the config file. Design: `docs/design/0005-whep.md`;
//! the stack: `docs/design/0014-whep-str0m.md`.
//!
//! ```ignore
//! let whep = WhepServer::new(WhepOptions::default(), hub.clone(), cancel.child_token());
//! let answer = whep.create_session("10001", &offer_sdp).await?; // 201 + answer.sdp
//! whep.set_talking("10001", &answer.session_id, true)?;         // floor
//! whep.delete_session("10001", &answer.session_id).await?;
//! whep.shutdown().await;
//! ```

mod activity;
mod answer;
mod error;
#[cfg(test)]
mod fuzz;
mod limits;
mod mux;
mod outbound;
mod payloads;
mod pcmu;
mod peer;
mod pump;
mod sdp;
mod session;
mod talk;
mod voice;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::media::Claim;
pub use error::WhepError;
pub use limits::SdpLimits;
pub use mux::SharedUdpPort;
pub use talk::PREROLL;
pub use voice::{TalkFloor, VoiceOptions};

use crate::base::CameraId;
use crate::media::Floors;
pub(crate) use activity::Activity;
use session::Session;

/// Options of the WHEP server. Each maps to a config key or a fixed default; see
/// `app::daemon` for the mapping.
#[derive(Clone, Debug)]
pub struct WhepOptions {
    /// Gather ICE candidates only on this address; unspecified (`0.0.0.0`/`::`) means
    /// every interface. IPv4 addresses gather IPv4 only.
    pub listen_ip: IpAddr,
    /// Announce this address instead of the local ones (1:1 NAT, e.g. the host's LAN
    /// IP under Docker). `None` or unspecified: announce the local addresses.
    pub announced_ip: Option<IpAddr>,
    /// Inclusive UDP port range for ICE (`RTC_MIN_PORT`..=`RTC_MAX_PORT`).
    pub udp_ports: (u16, u16),
    /// One UDP port for all sessions instead of the range (`RTC_UDP_PORT`).
    pub shared_port: Option<SharedUdpPort>,
    /// Also gather loopback candidates (tests, or a loopback `listen_ip`).
    pub include_loopback: bool,
    /// A session whose peer does not connect within this long is closed. Default 30 s.
    pub connect_timeout: Duration,
    /// A session that stays disconnected this long is closed. A viewer counts
    /// as disconnected after 5 s without any datagram from it (a closed tab, a
    /// dead network), so a vanished viewer is dropped after about 5 s + this.
    /// Default 10 s.
    pub disconnected_timeout: Duration,
    /// A connected session whose viewer sends nothing (no RTCP, no RTP) for this long
    /// is closed, even if ICE keepalives still flow. Default 30 s.
    pub idle_timeout: Duration,
    /// How viewers get the talk floor (`webrtc.talk_floor`). Default voice.
    pub talk_floor: TalkFloor,
    /// The voice detector's thresholds and hang time (voice floor).
    pub voice: VoiceOptions,
    /// Longest wait, before answering the first viewer of a stream, for the
    /// stream's first key frame, whose SPS gives the answer's `profile-level-id`.
    /// After it the answer keeps the offer's level. Default 10 s.
    pub answer_wait: Duration,
    /// Most sessions at once, over all cameras, counting those being opened.
    /// Default 32.
    pub max_sessions: usize,
    /// Ring may send H.265 (`stream.h265`). When false every stream is H.264, so an
    /// offer without H.264 is refused before a Ring call starts. Default false.
    pub h265: bool,
    /// Size and shape limits of offers and trickle fragments, checked before
    /// parsing.
    pub sdp_limits: SdpLimits,
}

impl Default for WhepOptions {
    fn default() -> Self {
        WhepOptions {
            listen_ip: IpAddr::from([0, 0, 0, 0]),
            announced_ip: None,
            udp_ports: (40_000, 40_100),
            shared_port: None,
            include_loopback: false,
            connect_timeout: Duration::from_secs(30),
            disconnected_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            talk_floor: TalkFloor::Voice,
            voice: VoiceOptions::default(),
            answer_wait: Duration::from_secs(10),
            max_sessions: 32,
            h265: false,
            sdp_limits: SdpLimits::default(),
        }
    }
}

/// The answer to a viewer's offer.
#[derive(Clone, Debug)]
pub struct WhepAnswer {
    /// The new session's id (URL-safe: 32 lowercase hex digits).
    pub session_id: String,
    /// The answer SDP, with all local candidates.
    pub sdp: String,
    /// The session's entity tag, quoted (WHEP `ETag`, `If-Match` on PATCH).
    pub etag: String,
}

/// Who holds a camera's talk floor (`GET /api/webrtc/{camera}/talk`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TalkState {
    /// Someone is talking.
    pub talking: bool,
    /// The talking session, if any.
    pub session: Option<String>,
    /// How the talking session holds the floor (`explicit` or `voice`); absent
    /// when nobody talks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Claim>,
}

/// A session as listed by [`WhepServer::sessions`].
#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Camera (hub key; a decimal string in JSON).
    #[serde(serialize_with = "crate::base::id::as_string")]
    pub camera: CameraId,
    /// Peer connection state (`new`, `connecting`, `connected`, ...).
    pub state: String,
    /// Holds the camera's talk floor.
    pub talking: bool,
    /// Seconds since the session was created.
    pub age_s: u64,
    /// The video codec the session sends (`h264`, `h265`): the camera's, as answered.
    pub codec: crate::media::VideoCodec,
}

/// Shared state of the server.
pub(crate) struct Inner {
    opts: WhepOptions,
    hub: crate::media::Hub,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Sessions being opened (slots reserved, not yet in `sessions`); changed
    /// only with the `sessions` lock held, so the cap is checked atomically.
    opening: AtomicUsize,
    floors: Arc<Floors>,
    /// Video payloads shared by the viewers of each camera.
    payloads: payloads::Payloads,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an opened session; it takes over the slot reserved for it.
    fn insert(&self, s: Arc<Session>) {
        let mut sessions = self.lock();
        sessions.insert(s.id.clone(), s);
        release_slot(&self.opening);
    }

    /// Reserves a slot for a session about to open, or says the server is full.
    fn reserve(&self) -> Result<Reservation<'_>, WhepError> {
        let max = self.opts.max_sessions;
        let sessions = self.lock();
        if sessions.len() + self.opening.load(Ordering::Acquire) >= max {
            return Err(WhepError::TooManySessions { max });
        }
        self.opening.fetch_add(1, Ordering::AcqRel);
        Ok(Reservation {
            opening: &self.opening,
            armed: true,
        })
    }

    fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().remove(id)
    }

    fn get(&self, camera: CameraId, id: &str) -> Result<Arc<Session>, WhepError> {
        self.lock()
            .get(id)
            .filter(|s| s.camera == camera)
            .cloned()
            .ok_or_else(|| WhepError::NoSuchSession {
                camera,
                session: id.to_owned(),
            })
    }
}

fn release_slot(opening: &AtomicUsize) {
    let _ = opening.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
}

/// A reserved session slot: given back when dropped unless the session was
/// inserted (which takes the slot over). Dropping covers a failed open and a
/// request abandoned by its client mid-way.
struct Reservation<'a> {
    opening: &'a AtomicUsize,
    armed: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.armed {
            release_slot(self.opening);
        }
    }
}

/// The WHEP server: every viewer session of the daemon. Cheap to clone.
#[derive(Clone)]
pub struct WhepServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WhepServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhepServer")
            .field("sessions", &self.inner.lock().len())
            .finish()
    }
}

impl WhepServer {
    /// A server taking viewers' frames from `hub`. `cancel` (a child of the daemon's
    /// root token) refuses new sessions and ends every session when fired; see also
    /// [`Self::shutdown`].
    pub fn new(opts: WhepOptions, hub: crate::media::Hub, cancel: CancellationToken) -> Self {
        WhepServer {
            inner: Arc::new(Inner {
                floors: hub.floors().clone(),
                opts,
                hub,
                sessions: Mutex::new(HashMap::new()),
                opening: AtomicUsize::new(0),
                payloads: payloads::Payloads::default(),
                cancel,
                tracker: TaskTracker::new(),
            }),
        }
    }

    /// The options the server was created with.
    pub fn options(&self) -> &WhepOptions {
        &self.inner.opts
    }

    /// Answers `offer` (SDP text) for `camera` (hub key). The caller checks that the
    /// camera exists and is online. Fails with `TooLarge` (→ 413, checked before
    /// anything else), `BadOffer`/`UnsupportedOffer` (→ 400), `TooManySessions`
    /// (→ 429; sessions being opened count, so concurrent offers cannot overshoot
    /// the cap) or `ShuttingDown` (→ 503).
    pub async fn create_session(
        &self,
        camera: CameraId,
        offer: &str,
    ) -> Result<WhepAnswer, WhepError> {
        limits::check(offer, self.inner.opts.sdp_limits)
            .map_err(|e| WhepError::TooLarge { reason: e.0 })?;
        if self.inner.cancel.is_cancelled() {
            return Err(WhepError::ShuttingDown);
        }
        let mut slot = self.inner.reserve()?;
        let (_, answer) = session::open(&self.inner, camera, offer).await?;
        // `open` inserted the session, which took the slot over.
        slot.armed = false;
        Ok(answer)
    }

    /// Adds trickled viewer candidates (WHEP PATCH, `application/trickle-ice-sdpfrag`).
    pub async fn add_candidates(
        &self,
        camera: CameraId,
        session: &str,
        fragment: &str,
        if_match: Option<&str>,
    ) -> Result<(), WhepError> {
        limits::check(fragment, self.inner.opts.sdp_limits)
            .map_err(|e| WhepError::TooLarge { reason: e.0 })?;
        let s = self.inner.get(camera, session)?;
        let frag = sdp::parse_fragment(fragment).map_err(|reason| WhepError::BadCandidate {
            session: session.to_owned(),
            reason,
        })?;
        s.add_candidates(frag, if_match)
    }

    /// Ends a session (WHEP DELETE) and waits (bounded) until its peer is closed and
    /// its lease dropped.
    pub async fn delete_session(&self, camera: CameraId, session: &str) -> Result<(), WhepError> {
        let s = self.inner.get(camera, session)?;
        self.inner.remove(session);
        self.inner.floors.release_session(session);
        s.end();
        s.wait_closed(Duration::from_secs(5)).await;
        Ok(())
    }

    /// Takes (`true`) or releases (`false`) `camera`'s talk floor for `session`
    /// explicitly. Returns whether the session now talks. Taking wins over a
    /// session that holds the floor by voice; it fails with `FloorTaken` when
    /// another session holds it explicitly, and with `NoUplinkAudio` when the
    /// session's viewer sends no audio.
    pub fn set_talking(
        &self,
        camera: CameraId,
        session: &str,
        talking: bool,
    ) -> Result<bool, WhepError> {
        let s = self.inner.get(camera, session)?;
        if !talking {
            self.inner.floors.release(camera, session);
            return Ok(false);
        }
        if !s.uplink_audio {
            return Err(WhepError::NoUplinkAudio {
                session: session.to_owned(),
            });
        }
        match self.inner.floors.take(camera, session, Claim::Explicit) {
            Ok(preempted) => {
                if let Some(voice) = preempted {
                    tracing::info!(parent: s.span(), %voice, "talk floor taken from a voice talker");
                }
                Ok(true)
            }
            Err(holder) => Err(WhepError::FloorTaken { camera, holder }),
        }
    }

    /// Who talks on `camera`.
    pub fn talk_state(&self, camera: CameraId) -> TalkState {
        let holder = self.inner.floors.holder(camera);
        TalkState {
            talking: holder.is_some(),
            by: holder.as_ref().map(|(_, claim)| *claim),
            session: holder.map(|(session, _)| session),
        }
    }

    /// Current sessions, optionally only `camera`'s, oldest first.
    pub fn sessions(&self, camera: Option<CameraId>) -> Vec<SessionInfo> {
        let mut list: Vec<(std::time::Instant, SessionInfo)> = self
            .inner
            .lock()
            .values()
            .filter(|s| camera.is_none_or(|c| s.camera == c))
            .map(|s| {
                let info = SessionInfo {
                    id: s.id.clone(),
                    camera: s.camera,
                    state: s.state().to_string(),
                    talking: self
                        .inner
                        .floors
                        .holder(s.camera)
                        .is_some_and(|(holder, _)| holder == s.id),
                    age_s: s.created.elapsed().as_secs(),
                    codec: s.codec,
                };
                (s.created, info)
            })
            .collect();
        list.sort_by_key(|(t, _)| *t);
        list.into_iter().map(|(_, i)| i).collect()
    }

    /// Refuses new sessions, ends every session (peers closed, leases dropped) and
    /// waits for their tasks, bounded.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let all: Vec<Arc<Session>> = self.inner.lock().values().cloned().collect();
        for s in &all {
            s.end();
        }
        self.inner.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("WebRTC sessions did not close within 10 s");
        }
    }
}
