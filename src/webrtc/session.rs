//! One viewer's WHEP session: opening it (offer → peer → non-trickle answer), its
//! supervisor (connect timeout, ICE failure, idleness, DELETE, shutdown) and its
//! cleanup (peer closed, tasks joined, talk floor released, hub lease dropped).
//!
//! Each session runs under the span `webrtc{camera, session}`; webrtc-rs callbacks
//! run on its own tasks, so every task spawned from them is instrumented by hand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span, debug, info, info_span, warn};
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_remote::TrackRemote;

use super::activity::Activity;
use super::answer;
use super::error::WhepError;
use super::outbound::{self, RtcpSink, Tracks};
use super::sdp::{self, Fragment, OfferError, VideoFormat};
use super::talk::{self, Intake};
use super::{Inner, WhepAnswer, peer};
use crate::base::CameraId;
use crate::media::h264::ProfileLevel;
use crate::media::{CameraStream, Lease, VideoCodec, VideoParams, ViewerKind};

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
    pc: Arc<RTCPeerConnection>,
    state: watch::Receiver<RTCPeerConnectionState>,
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

    /// The peer connection state, e.g. `connected`.
    pub fn state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// Applies a trickle-ICE fragment (WHEP PATCH). `if_match` is the request's
    /// `If-Match` header, if any.
    pub async fn add_candidates(
        &self,
        frag: Fragment,
        if_match: Option<&str>,
    ) -> Result<(), WhepError> {
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
        for c in frag.candidates {
            let init = RTCIceCandidateInit {
                candidate: c.candidate,
                sdp_mid: c.mid,
                sdp_mline_index: Some(c.mline_index),
                username_fragment: None,
            };
            self.pc
                .add_ice_candidate(init)
                .await
                .map_err(|e| WhepError::BadCandidate {
                    session: self.id.clone(),
                    reason: e.to_string(),
                })?;
        }
        debug!(parent: &self.span, end = frag.end_of_candidates, "added trickled candidates");
        Ok(())
    }
}

/// Per-session parts the supervisor owns.
struct Parts {
    /// What the media sender needs; taken when the viewer connects.
    media: Option<(CameraStream, Tracks)>,
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
    let pc = peer::new_peer(&inner.opts, &offer, &format)
        .instrument(span.clone())
        .await?;
    let announced = params
        .as_ref()
        .and_then(|p| span.in_scope(|| announce(&format, p)));
    let video = SessionVideo { format, announced };
    match setup(inner, &stream, &offer, &video, &id, &pc, &span)
        .instrument(span.clone())
        .await
    {
        Ok((session, answer, parts)) => {
            inner.insert(session.clone());
            let run = supervise(inner.clone(), session.clone(), lease, parts);
            inner.tracker.spawn(run.instrument(span));
            Ok((session, answer))
        }
        Err(e) => {
            let _ = tokio::time::timeout(Duration::from_secs(3), pc.close()).await;
            Err(e)
        }
    }
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

async fn setup(
    inner: &Arc<Inner>,
    stream: &CameraStream,
    offer: &sdp::Offer,
    video: &SessionVideo,
    id: &str,
    pc: &Arc<RTCPeerConnection>,
    span: &Span,
) -> Result<(Arc<Session>, WhepAnswer, Parts), WhepError> {
    let cancel = inner.cancel.child_token();
    let tasks = TaskTracker::new();
    let activity = Arc::new(Activity::new());

    let video_format = &video.format;
    let announced = &video.announced;
    let video = Arc::new(TrackLocalStaticRTP::new(
        peer::video_capability(video_format),
        "video".into(),
        "ring-bridge".into(),
    ));
    let sender = pc
        .add_track(Arc::clone(&video) as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .map_err(WhepError::webrtc("adding the video track"))?;
    let sink = RtcpSink {
        stream: Some(stream.clone()),
        activity: Arc::clone(&activity),
    };
    tasks.spawn(outbound::drain_rtcp(sender, sink, cancel.clone()).instrument(span.clone()));

    let mut audio = None;
    let mut uplink_audio = false;
    if let Some((codec, dir)) = &offer.audio {
        uplink_audio = dir.viewer_sends;
        if dir.viewer_receives {
            let track = Arc::new(TrackLocalStaticRTP::new(
                peer::audio_capability(codec),
                "audio".into(),
                "ring-bridge".into(),
            ));
            let sender = pc
                .add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
                .await
                .map_err(WhepError::webrtc("adding the audio track"))?;
            let sink = RtcpSink {
                stream: None,
                activity: Arc::clone(&activity),
            };
            tasks
                .spawn(outbound::drain_rtcp(sender, sink, cancel.clone()).instrument(span.clone()));
            audio = Some(track);
        }
    }

    let (state_tx, state_rx) = watch::channel(RTCPeerConnectionState::New);
    let state_span = span.clone();
    pc.on_peer_connection_state_change(Box::new(move |st| {
        debug!(parent: &state_span, state = %st, "peer connection state");
        state_tx.send_replace(st);
        Box::pin(async {})
    }));
    let intake = IntakeFactory {
        camera: stream.id().to_owned(),
        session: id.to_owned(),
        stream: stream.clone(),
        inner: Arc::clone(inner),
        activity: Arc::clone(&activity),
        cancel: cancel.clone(),
        tasks: tasks.clone(),
        span: span.clone(),
    };
    pc.on_track(Box::new(move |track, receiver, _| {
        intake.spawn(track);
        let (cancel, activity) = (intake.cancel.clone(), Arc::clone(&intake.activity));
        intake.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = receiver.read_rtcp() => if r.is_err() { break } else { activity.touch() },
                }
            }
        });
        Box::pin(async {})
    }));

    let desc =
        RTCSessionDescription::offer(offer.sdp.clone()).map_err(|e| WhepError::BadOffer {
            reason: e.to_string(),
        })?;
    pc.set_remote_description(desc)
        .await
        .map_err(|e| WhepError::BadOffer {
            reason: e.to_string(),
        })?;
    let answer = pc
        .create_answer(None)
        .await
        .map_err(WhepError::webrtc("creating the answer"))?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(answer)
        .await
        .map_err(WhepError::webrtc("applying the answer"))?;
    if tokio::time::timeout(inner.opts.gather_timeout, gathered.recv())
        .await
        .is_err()
    {
        debug!("ICE gathering not complete in time; answering with what we have");
    }
    let sdp = pc
        .local_description()
        .await
        .ok_or_else(|| WhepError::BadOffer {
            reason: "no answer could be produced".into(),
        })?
        .sdp;
    let param = announced.as_ref().map(|(k, v)| (*k, v.as_str()));
    let sdp = answer::rewrite(&sdp, video_format.format.payload_type, param);

    let session = Arc::new(Session {
        id: id.to_owned(),
        camera: stream.id().to_owned(),
        etag: format!("\"{id}\""),
        remote_ufrag: offer.ice_ufrag.clone(),
        uplink_audio,
        created: Instant::now(),
        codec: video_format.codec,
        pc: Arc::clone(pc),
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
    let parts = Parts {
        media: Some((
            stream.clone(),
            Tracks {
                codec: video_format.codec,
                video,
                audio,
                payloads: inner.payloads.for_camera(stream.id()),
            },
        )),
        activity,
        tasks,
    };
    info!(
        codec = %video_format.codec,
        video_pt = video_format.format.payload_type,
        video_fmtp = %video_format.format.fmtp,
        announced = %announced.as_ref().map(|(k, v)| format!("{k}={v}")).unwrap_or_default(),
        audio = offer.audio.is_some(),
        uplink_audio,
        "WebRTC session opened"
    );
    Ok((session, answer, parts))
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

/// Spawns the per-track tasks from the `on_track` callback.
struct IntakeFactory {
    camera: CameraId,
    session: String,
    stream: CameraStream,
    inner: Arc<Inner>,
    activity: Arc<Activity>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    span: Span,
}

impl IntakeFactory {
    fn spawn(&self, track: Arc<TrackRemote>) {
        if track.kind() == RTPCodecType::Audio {
            let ctx = Intake {
                camera: self.camera,
                session: self.session.clone(),
                stream: self.stream.clone(),
                floors: Arc::clone(&self.inner.floors),
                activity: Arc::clone(&self.activity),
                cancel: self.cancel.clone(),
                mode: self.inner.opts.talk_floor,
                voice: self.inner.opts.voice.clone(),
            };
            self.tasks
                .spawn(talk::run(track, ctx).instrument(self.span.clone()));
            return;
        }
        // Unexpected viewer video: read and discard so buffers never fill.
        let (cancel, activity) = (self.cancel.clone(), Arc::clone(&self.activity));
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = track.read_rtp() => if r.is_err() { break } else { activity.touch() },
                }
            }
        });
    }
}

/// Waits for the session's end and returns why.
async fn wait_end(inner: &Inner, session: &Session, parts: &mut Parts) -> &'static str {
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
                    RTCPeerConnectionState::Connected => {
                        disconnected_since = None;
                        if !connected {
                            connected = true;
                            info!("viewer connected");
                            if let Some((stream, tracks)) = parts.media.take() {
                                let run = outbound::run(stream, tracks, session.cancel.clone());
                                parts.tasks.spawn(run.instrument(session.span.clone()));
                            }
                        }
                    }
                    RTCPeerConnectionState::Disconnected => {
                        disconnected_since.get_or_insert_with(Instant::now);
                    }
                    RTCPeerConnectionState::Failed => return "ICE/DTLS failed",
                    RTCPeerConnectionState::Closed => return "peer connection closed",
                    _ => {}
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

async fn supervise(inner: Arc<Inner>, session: Arc<Session>, lease: Lease, mut parts: Parts) {
    let reason = wait_end(&inner, &session, &mut parts).await;
    let tasks = parts.tasks;
    info!(
        reason,
        age_s = session.created.elapsed().as_secs(),
        "WebRTC session ended"
    );
    inner.remove(&session.id);
    inner.floors.release_session(&session.id);
    session.cancel.cancel();
    if tokio::time::timeout(Duration::from_secs(3), session.pc.close())
        .await
        .is_err()
    {
        debug!("closing the peer connection timed out");
    }
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
