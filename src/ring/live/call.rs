//! [`LiveCall`]: one Ring live view, from `live_view` to `close`.
//!
//! A driver task (`driver.rs`) owns the signalling websocket and the peer
//! connection; the `LiveCall` handle owns the frame queue. The driver always hangs up
//! explicitly (`close {reason{code:0}}`, then a websocket close) when the
//! handle asks, is dropped, or the caller's cancellation token fires.
//!
//! The talkback forwarder (`talk::forward`) and the track tasks run on the
//! call's tracker (`MediaShared::tasks`), which the driver joins before the
//! call counts as ended. The driver itself is joined by [`LiveCall::close`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span, warn};
use url::Url;

use super::driver::{Driver, State};
use super::error::{CloseReason, Error, ErrorInner};
use super::media::MediaShared;
use super::signalling;
use super::talk::{self, TalkSender, TalkTrack};
use super::{AudioCodec, LiveOptions};
use crate::base::CameraId;
use crate::media::{Frame, TalkbackSender, TransportStats, VideoCodec};

/// Talkback packets buffered between the hub and the forwarder (~1 s of 20 ms
/// packets); the outputs drop when it is full.
const TALKBACK_QUEUE: usize = 64;

/// A live call to one Ring camera. Frames come from [`Self::next_frame`];
/// hang up with [`Self::close`] (dropping the handle also hangs up, in the
/// background).
pub struct LiveCall {
    camera: CameraId,
    session_id: String,
    since: Instant,
    audio: Option<AudioCodec>,
    video: VideoCodec,
    frames_rx: mpsc::Receiver<Frame>,
    state_rx: watch::Receiver<State>,
    media: Arc<MediaShared>,
    talk: TalkSender,
    hang_up: CancellationToken,
    driver: Option<JoinHandle<()>>,
    /// Ring's session cap ([`LiveOptions::session_cap`]).
    pub(super) session_cap: Option<Duration>,
    /// The hub's talkback channel into [`talk::forward`]; `None` until the call
    /// is connected with an audio codec.
    pub(super) talkback: Option<TalkbackSender>,
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
        doorbot_id: CameraId,
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
        let span = info_span!("live_call", camera = %doorbot_id, dialog = %dialog_id, session = tracing::field::Empty);
        let (talk_track, talk_rx) = TalkTrack::new(opts.talk_payload_type);
        let (frames_tx, frames_rx) = mpsc::channel(opts.frame_queue.max(16));
        let media = Arc::new(MediaShared {
            frames_tx,
            start: Instant::now(),
            pli: Notify::new(),
            tasks: TaskTracker::new(),
            cancel: hang_up.child_token(),
            span: span.clone(),
            transport: Arc::default(),
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
            talk_rx: Some(talk_rx),
        };
        let url = signalling::socket_url(signalling, ticket);
        let handle = tokio::spawn(driver.run(url).instrument(span));
        let mut call = LiveCall {
            camera: doorbot_id,
            session_id: String::new(),
            since: Instant::now(),
            audio: None,
            video: VideoCodec::H264,
            frames_rx,
            state_rx: state_rx.clone(),
            media,
            talk: TalkSender::new(talk_track, doorbot_id),
            hang_up,
            driver: Some(handle),
            session_cap: opts.session_cap,
            talkback: None,
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
                video,
            } => {
                call.session_id = session_id;
                call.since = since;
                call.audio = audio;
                call.video = video;
                call.start_talkback();
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
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
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

    /// The hub's way in to [`Self::talk_sender`]: packets sent here are
    /// forwarded one RTP packet each (wrong-codec packets dropped). `None` if
    /// Ring answered without a talkback codec.
    pub fn talkback_sender(&self) -> Option<TalkbackSender> {
        self.talkback.clone()
    }

    /// The call's transport counters (video RTP loss, NACKs and PLIs sent).
    pub fn transport_stats(&self) -> Arc<TransportStats> {
        Arc::clone(&self.media.transport)
    }

    /// Starts the talkback forwarder on the call's tracker, once the answer
    /// named the codec.
    fn start_talkback(&mut self) {
        let Some(codec) = self.audio else {
            return;
        };
        let (tx, rx) = TalkbackSender::channel(TALKBACK_QUEUE);
        let task = talk::forward(rx, self.talk.clone(), codec, self.media.cancel.clone());
        let span = info_span!(parent: &self.media.span, "talkback");
        self.media.tasks.spawn(task.instrument(span));
        self.talkback = Some(tx);
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
    pub fn camera(&self) -> CameraId {
        self.camera
    }

    /// The audio codec Ring answered with (received audio and talkback).
    pub fn audio_codec(&self) -> Option<AudioCodec> {
        self.audio
    }

    /// The video codec Ring answered with: H.264, or H.265 when the offer listed it
    /// ([`super::LiveOptions::h265`]) and the camera is in HEVC mode.
    pub fn video_codec(&self) -> VideoCodec {
        self.video
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
            warn!(camera = %self.camera, err = %e, "live call driver panicked");
        }
    }
}

impl Drop for LiveCall {
    fn drop(&mut self) {
        self.hang_up.cancel();
    }
}
