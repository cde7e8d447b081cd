//! One viewer's WHEP session: opening it (offer → peer → non-trickle answer), its
//! supervisor (connect timeout, ICE failure, idleness, DELETE, shutdown) and its
//! cleanup (peer closed, tasks joined, talk floor released, hub lease dropped).
//!
//! Each session runs under the span `webrtc{camera, session}`: its pump
//! (`pump.rs`), which drives the WebRTC instance, and its talkback intake.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::{Candidate, IceCreds};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span, debug, info, info_span, warn};

use super::activity::Activity;
use super::answer;
use super::error::WhepError;
use super::outbound::Outbound;
use super::pump::{self, PeerState, PumpParts, Transport};
use super::sdp::{self, Fragment, OfferError, VideoFormat};
use super::talk::{self, Intake};
use super::{Inner, WhepAnswer, WhepOptions, peer};
use crate::base::CameraId;
use crate::base::udp::{self, Sockets};
use crate::media::h264::ProfileLevel;
use crate::media::{CameraStream, Lease, VideoCodec, VideoParams, ViewerKind};

/// Viewer audio packets queued for the talkback intake (~1 s of 20 ms packets).
const UPLINK_QUEUE: usize = 50;

/// A live WHEP session, as kept in the server's map.
pub(crate) struct Session {
    /// Opaque id, also the last path segment of the session URL.
    pub id: String,
    /// Hub key of the camera.
    pub camera: CameraId,
    /// The entity tag of the session (ICE generation).
    pub etag: String,
    /// The viewer's ICE username fragment from the offer.
    remote_ufrag: Option<String>,
    /// The viewer sends audio (so it can talk).
    pub uplink_audio: bool,
    /// When the session was created.
    pub created: Instant,
    /// The video codec the session sends.
    pub codec: VideoCodec,
    /// Trickled candidates for the pump.
    candidates: mpsc::UnboundedSender<Candidate>,
    state: watch::Receiver<PeerState>,
    /// Cancelled to end the session.
    cancel: CancellationToken,
    /// Cancelled once the session is fully closed.
    closed: CancellationToken,
    span: Span,
}

impl Session {
    /// Asks the session to end (DELETE, shutdown). Returns at once.
    pub fn end(&self) {
        self.cancel.cancel();
    }

    /// Waits (bounded) until the session's peer is closed and its lease dropped.
    pub async fn wait_closed(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.closed.cancelled()).await;
    }

    /// The session's tracing span (`webrtc{camera, session}`).
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The connection state, e.g. `connected`.
    pub fn state(&self) -> PeerState {
        *self.state.borrow()
    }

    /// Applies a trickle-ICE fragment (WHEP PATCH). `if_match` is the request's
    /// `If-Match` header, if any.
    pub fn add_candidates(&self, frag: Fragment, if_match: Option<&str>) -> Result<(), WhepError> {
        if let Some(tag) = if_match.map(str::trim)
            && tag != "*"
            && tag != self.etag
        {
            return Err(WhepError::EtagMismatch {
                session: self.id.clone(),
                got: tag.to_owned(),
            });
        }
        if frag
            .ufrag
            .as_ref()
            .is_some_and(|u| Some(u) != self.remote_ufrag.as_ref())
        {
            return Err(WhepError::IceRestart {
                session: self.id.clone(),
            });
        }
        let mut parsed = Vec::with_capacity(frag.candidates.len());
        for c in frag.candidates {
            if mdns_name(&c.candidate) {
                debug!(parent: &self.span, candidate = %c.candidate, "ignoring an mDNS candidate (never resolved; ICE finds the viewer's address from its checks)");
                continue;
            }
            let candidate =
                Candidate::from_sdp_string(&c.candidate).map_err(|e| WhepError::BadCandidate {
                    session: self.id.clone(),
                    reason: e.to_string(),
                })?;
            parsed.push(candidate);
        }
        for c in parsed {
            // The pump gone means the session is ending; nothing to apply.
            let _ = self.candidates.send(c);
        }
        debug!(parent: &self.span, end = frag.end_of_candidates, "added trickled candidates");
        Ok(())
    }
}

/// Whether a candidate line's address is an mDNS name (`<uuid>.local`).
fn mdns_name(candidate: &str) -> bool {
    candidate
        .split_whitespace()
        .nth(4)
        .is_some_and(|addr| addr.parse::<IpAddr>().is_err())
}

/// Per-session parts the supervisor owns.
struct Parts {
    activity: Arc<Activity>,
    tasks: TaskTracker,
}

/// Opens a session for `camera` (hub key): takes a lease, answers `offer` with all
/// local candidates gathered, and starts the supervisor.
pub(crate) async fn open(
    inner: &Arc<Inner>,
    camera: CameraId,
    offer: &str,
) -> Result<(Arc<Session>, WhepAnswer), WhepError> {
    let stream = inner.hub.stream(camera);
    // Refuse a bad offer, or one without the stream's codec, before anything starts.
    let offer = sdp::parse_offer(offer).map_err(|e| match e {
        OfferError::Malformed(reason) => WhepError::BadOffer { reason },
        OfferError::Unsupported(reason) => WhepError::UnsupportedOffer { reason },
    })?;
    let known = stream.video_params();
    // Without `stream.h265` every stream is H.264, known yet or not.
    let expected = known
        .as_ref()
        .map(|p| p.codec)
        .or((!inner.opts.h265).then_some(VideoCodec::H264));
    if let Some(codec) = expected {
        pick_video(camera, &offer, codec, known.as_ref())?;
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let span = info_span!("webrtc", camera = %camera, session = %id);
    let lease = stream.lease_as(ViewerKind::Whep);
    let params = match known {
        Some(p) => Some(p),
        // The first viewer: the answer waits for the stream's parameter sets. The
        // codec, and the pick among the offered formats, depend on them.
        None => {
            stream_params(inner, &stream)
                .instrument(span.clone())
                .await?
        }
    };
    let format = match &params {
        Some(p) => pick_video(camera, &offer, p.codec, Some(p))?,
        None => unknown_stream_video(camera, &offer, &stream, inner.opts.h265)?,
    };
    let announced = params
        .as_ref()
        .and_then(|p| span.in_scope(|| announce(&format, p)));
    let video = SessionVideo { format, announced };
    let (session, answer, parts) =
        span.in_scope(|| setup(inner, &stream, &offer, &video, &id, &span))?;
    inner.insert(session.clone());
    let run = supervise(inner.clone(), session.clone(), lease, parts);
    inner.tracker.spawn(run.instrument(span));
    Ok((session, answer))
}

/// The offered format for a stream of `codec` (parameters `params`, if known). An
/// offer without the stream's codec is refused: H.265 with a message the console
/// shows in the tile (never a black tile), H.264 as an unsupported offer.
fn pick_video(
    camera: CameraId,
    offer: &sdp::Offer,
    codec: VideoCodec,
    params: Option<&VideoParams>,
) -> Result<VideoFormat, WhepError> {
    let fmtp = params.map(|p| p.profile_level_id.as_str());
    offer.pick_video(codec, fmtp).ok_or_else(|| match codec {
        VideoCodec::H265 => WhepError::CodecUnavailable {
            camera,
            codec: "H.265",
        },
        VideoCodec::H264 => WhepError::UnsupportedOffer {
            reason: "the camera streams H.264 and the offer has no H.264 packetization-mode=1 format (no transcoding)".into(),
        },
    })
}

/// The format when the stream's parameters did not come in time: H.264 unless Ring
/// may send H.265 (`h265`); then the codec of the camera's last live session if
/// known, else H.264 when offered (what Ring sends unless asked for H.265), else
/// H.265. The media sender ends the session should the stream turn out to be the
/// other codec.
fn unknown_stream_video(
    camera: CameraId,
    offer: &sdp::Offer,
    stream: &CameraStream,
    h265: bool,
) -> Result<VideoFormat, WhepError> {
    let last = stream.status().borrow().video_codec;
    let codec = match last {
        _ if !h265 => VideoCodec::H264,
        Some(c) => c,
        None if offer.offers(VideoCodec::H264) => VideoCodec::H264,
        None => VideoCodec::H265,
    };
    pick_video(camera, offer, codec, None)
}

/// Waits (bounded by `answer_wait`) for the stream's first key frame and returns
/// its parameters; `None` when it does not come in time.
async fn stream_params(
    inner: &Inner,
    stream: &CameraStream,
) -> Result<Option<VideoParams>, WhepError> {
    tokio::select! {
        r = stream.wait_ready(inner.opts.answer_wait) => match r {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                info!(err = %crate::base::error::chain(&e), "answering before the stream's first key frame: the level is the offer's");
                Ok(None)
            }
        },
        _ = inner.cancel.cancelled() => Err(WhepError::ShuttingDown),
    }
}

/// The session's video: the offered format it is sent as, and the `fmtp` parameter
/// the answer sets to describe the stream (see [`announce`]).
struct SessionVideo {
    format: VideoFormat,
    announced: Option<(&'static str, String)>,
}

/// The session's transport and the host candidates it announces: sockets of
/// its own from the port range (one per local address), or the shared port.
fn transport(opts: &WhepOptions, ufrag: &str) -> Result<(Transport, Vec<SocketAddr>), WhepError> {
    let announce = |addr: SocketAddr| match opts.announced_ip.filter(|ip| !ip.is_unspecified()) {
        Some(ip) => SocketAddr::new(ip, addr.port()),
        None => addr,
    };
    if let Some(port) = &opts.shared_port {
        let bound = port.local_addr();
        let candidates: Vec<SocketAddr> = local_ips(opts, bound.ip())
            .into_iter()
            .map(|ip| announce(SocketAddr::new(ip, bound.port())))
            .collect();
        let (route, rx) = port.register(ufrag);
        let t = Transport::Shared {
            route,
            rx,
            candidates: candidates.clone(),
        };
        return Ok((t, candidates));
    }
    let ips = local_ips(opts, opts.listen_ip);
    let sockets = Sockets::bind_all(&ips, Some(opts.udp_ports), announce)
        .map_err(|source| WhepError::Transport { source })?;
    let candidates = sockets.list.iter().map(|s| s.announced).collect();
    Ok((Transport::Own(sockets), candidates))
}

/// The addresses to offer host candidates on: `listen` itself, or, when it is
/// unspecified, every interface address (IPv4 only for `0.0.0.0`).
fn local_ips(opts: &WhepOptions, listen: IpAddr) -> Vec<IpAddr> {
    if !listen.is_unspecified() {
        return vec![listen];
    }
    udp::local_ips(opts.include_loopback, &[])
        .into_iter()
        .filter(|ip| listen.is_ipv6() || ip.is_ipv4())
        .collect()
}

fn setup(
    inner: &Arc<Inner>,
    stream: &CameraStream,
    offer: &sdp::Offer,
    video: &SessionVideo,
    id: &str,
    span: &Span,
) -> Result<(Arc<Session>, WhepAnswer, Parts), WhepError> {
    let cancel = inner.cancel.child_token();
    let tasks = TaskTracker::new();
    let activity = Arc::new(Activity::new());
    let video_format = &video.format;
    let announced = &video.announced;

    let creds = IceCreds::new();
    let (transport, candidates) = transport(&inner.opts, &creds.ufrag)?;
    let answered = peer::answer(
        offer,
        video_format,
        creds,
        &candidates,
        std::time::Instant::now(),
    )?;
    let param = announced.as_ref().map(|(k, v)| (*k, v.as_str()));
    let sdp = answer::rewrite(&answered.sdp, video_format.format.payload_type, param);

    let mut uplink_audio = false;
    let mut audio_pt = None;
    let mut audio_out = false;
    let mut uplink = None;
    if let Some((codec, dir)) = &offer.audio {
        uplink_audio = dir.viewer_sends;
        audio_out = dir.viewer_receives;
        audio_pt = Some(codec.payload_type);
        if dir.viewer_sends {
            let (tx, rx) = mpsc::channel(UPLINK_QUEUE);
            let ctx = Intake {
                camera: stream.id(),
                session: id.to_owned(),
                stream: stream.clone(),
                floors: Arc::clone(&inner.floors),
                activity: Arc::clone(&activity),
                cancel: cancel.clone(),
                mode: inner.opts.talk_floor,
                voice: inner.opts.voice.clone(),
            };
            tasks.spawn(talk::run(rx, ctx).instrument(span.clone()));
            uplink = Some(tx);
        }
    }

    let (state_tx, state_rx) = watch::channel(PeerState::New);
    let (candidates_tx, candidates_rx) = mpsc::unbounded_channel();
    let parts = PumpParts {
        rtc: answered.rtc,
        stream: stream.clone(),
        outbound: Outbound::new(
            video_format.codec,
            inner.payloads.for_camera(stream.id()),
            audio_out,
        ),
        video_pt: video_format.format.payload_type,
        audio_pt,
        state: state_tx,
        activity: Arc::clone(&activity),
        uplink,
    };
    let run = pump::run(parts, transport, candidates_rx, cancel.clone());
    tasks.spawn(run.instrument(span.clone()));

    let session = Arc::new(Session {
        id: id.to_owned(),
        camera: stream.id().to_owned(),
        etag: format!("\"{id}\""),
        remote_ufrag: offer.ice_ufrag.clone(),
        uplink_audio,
        created: Instant::now(),
        codec: video_format.codec,
        candidates: candidates_tx,
        state: state_rx,
        cancel,
        closed: CancellationToken::new(),
        span: span.clone(),
    });
    let answer = WhepAnswer {
        session_id: id.to_owned(),
        sdp,
        etag: session.etag.clone(),
    };
    info!(
        codec = %video_format.codec,
        video_pt = video_format.format.payload_type,
        video_fmtp = %video_format.format.fmtp,
        announced = %announced.as_ref().map(|(k, v)| format!("{k}={v}")).unwrap_or_default(),
        audio = offer.audio.is_some(),
        uplink_audio,
        candidates = candidates.len(),
        "WebRTC session opened"
    );
    Ok((session, answer, Parts { activity, tasks }))
}

/// The answer's `fmtp` parameter that describes the stream sent (`profile-level-id`
/// for H.264, `level-id` for H.265); a mismatch the offer forced is logged.
fn announce(video: &VideoFormat, params: &VideoParams) -> Option<(&'static str, String)> {
    let offered = &video.format;
    let (key, value, fit) = match video.codec {
        VideoCodec::H264 => {
            let sent = ProfileLevel::parse(&params.profile_level_id)?;
            let (plid, fit) = answer::announce(offered, sent);
            ("profile-level-id", plid.to_string(), fit)
        }
        VideoCodec::H265 => {
            let (level, fit) = answer::announce_h265(offered, &params.profile_level_id);
            ("level-id", level.to_string(), fit)
        }
    };
    if let Some(note) = fit.note(video.codec) {
        warn!(stream = %params.profile_level_id, offered = %offered.fmtp, answer = %value, "{note}");
    }
    Some((key, value))
}

/// Waits for the session's end and returns why.
async fn wait_end(inner: &Inner, session: &Session, parts: &Parts) -> &'static str {
    let opts = &inner.opts;
    let mut state = session.state.clone();
    let connect_deadline = tokio::time::Instant::now() + opts.connect_timeout;
    let mut connected = false;
    let mut disconnected_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = session.cancel.cancelled() => {
                return if inner.cancel.is_cancelled() { "shutting down" } else { "closed by the viewer" };
            }
            _ = tokio::time::sleep_until(connect_deadline), if !connected => {
                return "ICE/DTLS did not connect in time";
            }
            r = state.changed() => {
                if r.is_err() {
                    return "peer connection dropped";
                }
                let st = *state.borrow_and_update();
                match st {
                    PeerState::Connected => {
                        disconnected_since = None;
                        connected = true;
                    }
                    PeerState::Disconnected => {
                        disconnected_since.get_or_insert_with(Instant::now);
                    }
                    PeerState::Failed => return "ICE/DTLS failed",
                    PeerState::Closed => return "peer connection closed",
                    PeerState::New | PeerState::Connecting => {}
                }
            }
            _ = tick.tick() => {
                if connected && parts.activity.idle() > opts.idle_timeout {
                    return "viewer idle (no RTCP/RTP)";
                }
                if disconnected_since.is_some_and(|t| t.elapsed() > opts.disconnected_timeout) {
                    return "viewer disconnected";
                }
            }
        }
    }
}

async fn supervise(inner: Arc<Inner>, session: Arc<Session>, lease: Lease, parts: Parts) {
    let reason = wait_end(&inner, &session, &parts).await;
    let tasks = parts.tasks;
    info!(
        reason,
        age_s = session.created.elapsed().as_secs(),
        "WebRTC session ended"
    );
    inner.remove(&session.id);
    inner.floors.release_session(&session.id);
    // The pump closes the instance (DTLS close_notify) on its way out.
    session.cancel.cancel();
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(3), tasks.wait())
        .await
        .is_err()
    {
        debug!("session tasks did not stop in time");
    }
    drop(lease);
    session.closed.cancel();
}
