//! The state of one camera's stream, shared by its [`CameraStream`](super::CameraStream)
//! handles, [`Lease`](super::Lease)s, subscribers and its supervisor task: the GOP
//! cache, the fan-out channel, status and readiness ([`Shared`]), plus what every
//! stream reads from the hub ([`Deps`], [`HubOptions`]).
//!
//! Both `hub.rs` (the handles) and `supervisor.rs` (the task) build on this file;
//! it imports neither.
//!
//! Locking: [`Shared::state`] is a `std::sync::Mutex` held only for short,
//! await-free critical sections; see [`lock`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::stats::StreamStats;
use super::timeline::Timeline;
use super::{
    Frame, LearnedCaps, LiveOpener, StreamState, StreamStatus, TalkbackSender, VideoParams,
};

use crate::base::CameraId;

/// Tuning of the hub. All durations are wall-clock (Tokio time in tests).
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// How long a source keeps running after its last lease is dropped. Default 10 s.
    pub linger: Duration,
    /// How long before a session's cap its replacement is opened. Default 30 s; at most
    /// half the cap is used.
    pub renew_before: Duration,
    /// Frames buffered per subscriber before it lags (`RecvError::Lagged`). Default 512.
    pub subscriber_buffer: usize,
    /// Longest GOP kept for late joiners, in frames; longer GOPs are not cached.
    /// Default 2048.
    pub max_gop_frames: usize,
    /// First retry delay after a failure. Default 1 s.
    pub retry_min: Duration,
    /// Longest retry delay. Default 60 s.
    pub retry_max: Duration,
    /// Longest wait for [`LiveOpener::open`]. Default 30 s.
    pub open_timeout: Duration,
    /// Longest wait for a new session's first key frame. Default 15 s.
    pub keyframe_timeout: Duration,
    /// A session sending no frame for this long is considered dead. Default 10 s.
    pub stall_timeout: Duration,
    /// Key-frame requests are forwarded to the source at most this often, and only if
    /// the cached key frame is at least this old. Default 1 s.
    pub keyframe_request_interval: Duration,
    /// Where learned session caps are persisted (see [`LearnedCaps`]), e.g.
    /// `<state dir>/session_caps.json`. Default `None`: kept in memory only.
    pub cap_file: Option<PathBuf>,
    /// A talker that sends no audio for this long loses the camera's talk floor
    /// ([`super::Hub::floors`]). Default 30 s.
    pub talk_timeout: Duration,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            linger: Duration::from_secs(10),
            renew_before: Duration::from_secs(30),
            subscriber_buffer: 512,
            max_gop_frames: 2048,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            open_timeout: Duration::from_secs(30),
            keyframe_timeout: Duration::from_secs(15),
            stall_timeout: Duration::from_secs(10),
            keyframe_request_interval: Duration::from_secs(1),
            cap_file: None,
            talk_timeout: Duration::from_secs(30),
        }
    }
}

/// What every stream's supervisor needs from the hub (no back-reference to the map).
pub(crate) struct Deps {
    pub(crate) opener: Arc<dyn LiveOpener>,
    pub(crate) opts: HubOptions,
    pub(crate) cancel: CancellationToken,
    pub(crate) caps: LearnedCaps,
    pub(crate) tracker: TaskTracker,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) floors: Arc<super::Floors>,
}

/// Locks a mutex, recovering from poisoning (no hub code panics while holding one,
/// and the protected state stays consistent at every await-free step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Mutable per-stream state behind [`Shared::state`].
pub(crate) struct State {
    /// Fan-out channels; `None` after hub shutdown.
    pub(crate) tx: Option<Fanout>,
    /// Frames since the latest video key frame (inclusive); empty if none is cached.
    pub(crate) gop: Vec<Arc<Frame>>,
    /// When the cached key frame arrived.
    pub(crate) gop_started: Option<Instant>,
    pub(crate) next_seq: u64,
    /// Whether a supervisor task is running for this stream.
    pub(crate) running: bool,
    pub(crate) has_audio: bool,
    pub(crate) talkback: Option<TalkbackSender>,
    pub(crate) last_keyframe_request: Option<Instant>,
    /// Kept across supervisor runs so timestamps never go backwards.
    pub(crate) timeline: Timeline,
}

/// The fan-out of one stream: every frame on `all`, video frames also on `video`,
/// so a consumer that plays no audio (an RTSP client that set up video only) is
/// not woken for each 20 ms audio packet.
pub(crate) struct Fanout {
    all: broadcast::Sender<Arc<Frame>>,
    video: broadcast::Sender<Arc<Frame>>,
}

impl Fanout {
    fn new(capacity: usize) -> Fanout {
        Fanout {
            all: broadcast::channel(capacity).0,
            video: broadcast::channel(capacity).0,
        }
    }

    /// A receiver of every frame, or of video frames only, from now on.
    pub(crate) fn subscribe(&self, audio: bool) -> broadcast::Receiver<Arc<Frame>> {
        if audio {
            self.all.subscribe()
        } else {
            self.video.subscribe()
        }
    }

    fn send(&self, frame: &Arc<Frame>) {
        // Err only means "no subscriber now".
        if frame.kind == super::MediaKind::Video {
            let _ = self.video.send(frame.clone());
        }
        let _ = self.all.send(frame.clone());
    }
}

/// Shared between [`CameraStream`] handles, [`Lease`]s, subscribers and the supervisor.
pub(crate) struct Shared {
    pub(crate) id: CameraId,
    pub(crate) deps: Arc<Deps>,
    pub(crate) cancel: CancellationToken,
    pub(crate) state: Mutex<State>,
    pub(crate) leases: watch::Sender<usize>,
    pub(crate) status: watch::Sender<StreamStatus>,
    pub(crate) ready: watch::Sender<Option<VideoParams>>,
    pub(crate) keyframe: Notify,
    /// Counters behind [`CameraStream::stats`](super::CameraStream::stats).
    pub(crate) stats: StreamStats,
}

impl Shared {
    /// The state of a new, inactive stream for camera `id`.
    pub(crate) fn new(id: CameraId, deps: Arc<Deps>) -> Shared {
        let tx = Fanout::new(deps.opts.subscriber_buffer.max(16));
        let learned_cap_ms = deps
            .caps
            .get(id)
            .map(|c| u64::try_from(c.as_millis()).unwrap_or(u64::MAX));
        Shared {
            id,
            cancel: deps.cancel.child_token(),
            deps,
            state: Mutex::new(State {
                tx: Some(tx),
                gop: Vec::new(),
                gop_started: None,
                next_seq: 0,
                running: false,
                has_audio: false,
                talkback: None,
                last_keyframe_request: None,
                timeline: Timeline::default(),
            }),
            leases: watch::Sender::new(0),
            status: watch::Sender::new(StreamStatus {
                learned_cap_ms,
                ..StreamStatus::default()
            }),
            ready: watch::Sender::new(None),
            keyframe: Notify::new(),
            stats: StreamStats::default(),
        }
    }

    /// Assigns `seq`, updates the GOP cache and fans the frame out. Never blocks.
    pub(crate) fn publish(&self, mut frame: Frame) -> Arc<Frame> {
        let mut st = lock(&self.state);
        frame.seq = st.next_seq;
        st.next_seq += 1;
        frame.received_at = std::time::Instant::now();
        self.stats.on_frame(&frame);
        let frame = Arc::new(frame);
        if frame.is_video_keyframe() {
            st.gop.clear();
            st.gop.push(frame.clone());
            st.gop_started = Some(Instant::now());
        } else if !st.gop.is_empty() {
            if st.gop.len() >= self.deps.opts.max_gop_frames {
                st.gop.clear();
                st.gop_started = None;
            } else {
                st.gop.push(frame.clone());
            }
        }
        if let Some(tx) = &st.tx {
            tx.send(&frame);
        }
        frame
    }

    /// Forgets the cached GOP and readiness (the session that produced them is gone).
    pub(crate) fn clear_cache(&self) {
        let mut st = lock(&self.state);
        st.gop.clear();
        st.gop_started = None;
        drop(st);
        self.ready.send_replace(None);
    }

    pub(crate) fn set_status(
        &self,
        state: StreamState,
        error: Option<(crate::base::ErrorKind, String)>,
    ) {
        self.status.send_if_modified(|s| {
            let mut next = StreamStatus {
                state,
                last_error: s.last_error.clone(),
                error_kind: s.error_kind,
                learned_cap_ms: s.learned_cap_ms,
                video_codec: s.video_codec,
            };
            if let Some((kind, text)) = error {
                next.error_kind = Some(kind);
                next.last_error = Some(text);
            } else if state == StreamState::Active || state == StreamState::Inactive {
                next.error_kind = None;
                next.last_error = None;
            }
            let changed = *s != next;
            *s = next;
            changed
        });
    }

    /// Publishes the stream's codec in the status, then its video parameters (a
    /// described key frame): whoever sees the parameters sees the codec too.
    pub(crate) fn set_ready(&self, params: super::VideoParams) {
        let codec = Some(params.codec);
        self.status.send_if_modified(|s| {
            let changed = s.video_codec != codec;
            s.video_codec = codec;
            changed
        });
        self.ready.send_replace(Some(params));
    }

    /// Publishes the learned session cap in the status.
    pub(crate) fn set_learned_cap(&self, cap: Duration) {
        let ms = Some(u64::try_from(cap.as_millis()).unwrap_or(u64::MAX));
        self.status.send_if_modified(|s| {
            let changed = s.learned_cap_ms != ms;
            s.learned_cap_ms = ms;
            changed
        });
    }

    /// Snapshot of the cached GOP plus a receiver positioned right after it (of
    /// every frame, or with `audio` false of video frames only).
    pub(crate) fn snapshot(
        &self,
        audio: bool,
    ) -> (Option<broadcast::Receiver<Arc<Frame>>>, Vec<Arc<Frame>>) {
        let st = lock(&self.state);
        (st.tx.as_ref().map(|tx| tx.subscribe(audio)), st.gop.clone())
    }

    /// A receiver of every frame, or of video frames only, from now on.
    pub(crate) fn receiver(&self, audio: bool) -> Option<broadcast::Receiver<Arc<Frame>>> {
        lock(&self.state).tx.as_ref().map(|tx| tx.subscribe(audio))
    }
}
