//! The [`Hub`] (one per daemon) and its per-camera [`CameraStream`]s: the GOP cache,
//! the fan-out channel, viewer [`Lease`]s, status and readiness.
//!
//! Locking: each stream has one `std::sync::Mutex` held only for short, non-async
//! critical sections (publish, subscribe, lease). Every method here is safe to call
//! from any thread, including the GLib main loop, and never blocks on Tokio.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::timeline::Timeline;
use super::{
    Floors, Frame, HubError, LearnedCaps, LiveOpener, StreamState, StreamStatus, Subscriber,
    TalkbackCodec, TalkbackSender, VideoParams, supervisor,
};

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
    /// ([`Hub::floors`]). Default 30 s.
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
    pub(crate) floors: Arc<Floors>,
}

/// The media hub: owns one [`CameraStream`] per camera id. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    deps: Arc<Deps>,
    streams: Arc<Mutex<HashMap<String, CameraStream>>>,
}

impl Hub {
    /// Creates a hub that opens sessions with `opener`. `cancel` (a child of the
    /// daemon's root token) stops every stream; see also [`Hub::shutdown`].
    ///
    /// Must be called inside a Tokio runtime: the hub spawns its per-camera tasks
    /// there, even when leases are taken from other threads (e.g. GLib).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, as `tokio::runtime::Handle::current` does.
    pub fn new(opener: Arc<dyn LiveOpener>, opts: HubOptions, cancel: CancellationToken) -> Hub {
        Hub {
            deps: Arc::new(Deps {
                opener,
                caps: LearnedCaps::load(opts.cap_file.clone()),
                floors: Arc::new(Floors::new(opts.talk_timeout)),
                opts,
                cancel,
                tracker: TaskTracker::new(),
                rt: tokio::runtime::Handle::current(),
            }),
            streams: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The stream of `camera`, created (inactive) on first use.
    pub fn stream(&self, camera: &str) -> CameraStream {
        let mut map = lock(&self.streams);
        map.entry(camera.to_owned())
            .or_insert_with(|| CameraStream::new(camera, self.deps.clone()))
            .clone()
    }

    /// Shorthand for `self.stream(camera).lease()`.
    pub fn lease(&self, camera: &str) -> Lease {
        self.stream(camera).lease()
    }

    /// Shorthand for `self.stream(camera).status()`.
    pub fn status(&self, camera: &str) -> watch::Receiver<StreamStatus> {
        self.stream(camera).status()
    }

    /// Ids of the streams created so far, sorted.
    pub fn cameras(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.streams).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The options the hub was created with.
    pub fn options(&self) -> &HubOptions {
        &self.deps.opts
    }

    /// The talk floors of every camera: whoever sends talkback (a WHEP viewer, an
    /// announcement) holds its camera's floor first.
    pub fn floors(&self) -> &Arc<Floors> {
        &self.deps.floors
    }

    /// Stops every stream: cancels the hub token, closes (hangs up) every source and
    /// waits for all hub tasks. Subscribers then see [`crate::media::RecvError::Closed`].
    pub async fn shutdown(&self) {
        self.deps.cancel.cancel();
        self.deps.tracker.close();
        self.deps.tracker.wait().await;
        for s in lock(&self.streams).values() {
            lock(&s.shared.state).tx = None;
        }
    }
}

/// Locks a mutex, recovering from poisoning (no hub code panics while holding one,
/// and the protected state stays consistent at every await-free step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Mutable per-stream state behind [`Shared::state`].
pub(crate) struct State {
    /// Fan-out channel; `None` after hub shutdown.
    pub(crate) tx: Option<broadcast::Sender<Arc<Frame>>>,
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

/// Shared between [`CameraStream`] handles, [`Lease`]s, subscribers and the supervisor.
pub(crate) struct Shared {
    pub(crate) id: String,
    pub(crate) deps: Arc<Deps>,
    pub(crate) cancel: CancellationToken,
    pub(crate) state: Mutex<State>,
    pub(crate) leases: watch::Sender<usize>,
    pub(crate) status: watch::Sender<StreamStatus>,
    pub(crate) ready: watch::Sender<Option<VideoParams>>,
    pub(crate) keyframe: Notify,
}

impl Shared {
    /// Assigns `seq`, updates the GOP cache and fans the frame out. Never blocks.
    pub(crate) fn publish(&self, mut frame: Frame) -> Arc<Frame> {
        let mut st = lock(&self.state);
        frame.seq = st.next_seq;
        st.next_seq += 1;
        frame.received_at = std::time::Instant::now();
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
            let _ = tx.send(frame.clone()); // Err only means "no subscriber now".
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

    /// Publishes the learned session cap in the status.
    pub(crate) fn set_learned_cap(&self, cap: Duration) {
        let ms = Some(u64::try_from(cap.as_millis()).unwrap_or(u64::MAX));
        self.status.send_if_modified(|s| {
            let changed = s.learned_cap_ms != ms;
            s.learned_cap_ms = ms;
            changed
        });
    }

    /// Snapshot of the cached GOP plus a receiver positioned right after it.
    pub(crate) fn snapshot(&self) -> (Option<broadcast::Receiver<Arc<Frame>>>, Vec<Arc<Frame>>) {
        let st = lock(&self.state);
        (st.tx.as_ref().map(|tx| tx.subscribe()), st.gop.clone())
    }
}

/// One camera's live stream. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct CameraStream {
    pub(crate) shared: Arc<Shared>,
}

impl CameraStream {
    fn new(id: &str, deps: Arc<Deps>) -> Self {
        let (tx, _) = broadcast::channel(deps.opts.subscriber_buffer.max(16));
        let learned_cap_ms = deps
            .caps
            .get(id)
            .map(|c| u64::try_from(c.as_millis()).unwrap_or(u64::MAX));
        CameraStream {
            shared: Arc::new(Shared {
                id: id.to_owned(),
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
            }),
        }
    }

    /// The camera id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Takes a viewer lease: the first one starts the live source; dropping the last
    /// one stops it after [`HubOptions::linger`]. Callable from any thread.
    pub fn lease(&self) -> Lease {
        let mut st = lock(&self.shared.state);
        self.shared.leases.send_modify(|n| *n += 1);
        if !st.running && !self.shared.cancel.is_cancelled() {
            st.running = true;
            supervisor::spawn(self.shared.clone());
        }
        Lease {
            stream: self.clone(),
        }
    }

    /// Number of leases currently held.
    pub fn viewers(&self) -> usize {
        *self.shared.leases.borrow()
    }

    /// Subscribes to frames: first the cached GOP (starting at its key frame, audio
    /// included), then live frames. Does not start the source; hold a [`Lease`] too.
    pub fn subscribe(&self) -> Subscriber {
        let (rx, gop) = self.shared.snapshot();
        if gop.is_empty() && rx.is_some() {
            self.request_keyframe();
        }
        Subscriber::new(self.clone(), rx, gop)
    }

    /// Live status, for REST and MQTT.
    pub fn status(&self) -> watch::Receiver<StreamStatus> {
        self.shared.status.subscribe()
    }

    /// Parameters of the cached key frame, if any.
    pub fn video_params(&self) -> Option<VideoParams> {
        self.shared.ready.borrow().clone()
    }

    /// Whether the current session carries audio (see `LiveSource::has_audio`).
    pub fn has_audio(&self) -> bool {
        lock(&self.shared.state).has_audio
    }

    /// The current session's talkback handle, if it has one.
    pub fn talkback(&self) -> Option<TalkbackSender> {
        lock(&self.shared.state).talkback.clone()
    }

    /// The codec the current session takes talkback in, if it takes talkback: a
    /// session with Opus audio takes Opus (`LiveSource::has_audio` is true only
    /// for Opus); one with talkback but no Opus audio negotiated PCMU.
    pub fn talkback_codec(&self) -> Option<TalkbackCodec> {
        let st = lock(&self.shared.state);
        st.talkback.as_ref().map(|_| {
            if st.has_audio {
                TalkbackCodec::Opus
            } else {
                TalkbackCodec::Pcmu
            }
        })
    }

    /// Asks the source for a key frame, if the cached one is older than
    /// [`HubOptions::keyframe_request_interval`] and no request was forwarded within
    /// that interval. Never blocks.
    pub fn request_keyframe(&self) {
        let every = self.shared.deps.opts.keyframe_request_interval;
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        let fresh =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < every);
        if fresh(st.gop_started) || fresh(st.last_keyframe_request) {
            return;
        }
        st.last_keyframe_request = Some(now);
        drop(st);
        self.shared.keyframe.notify_one();
    }

    /// Waits until a key frame is cached and returns its parameters: what RTSP DESCRIBE
    /// needs. Fails after `timeout`, at shutdown, or at once if nobody holds a lease.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<VideoParams, HubError> {
        let mut rx = self.shared.ready.subscribe();
        if rx.borrow().is_none() && self.viewers() == 0 {
            return Err(HubError::NotLeased {
                camera: self.shared.id.clone(),
            });
        }
        tokio::select! {
            r = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)) => match r {
                Ok(Ok(p)) => p.clone().ok_or_else(|| HubError::ShutDown { camera: self.shared.id.clone() }),
                Ok(Err(_)) => Err(HubError::ShutDown { camera: self.shared.id.clone() }),
                Err(_) => Err(HubError::Timeout { camera: self.shared.id.clone(), waited: timeout }),
            },
            _ = self.shared.cancel.cancelled() => Err(HubError::ShutDown { camera: self.shared.id.clone() }),
        }
    }
}

/// A viewer's claim on a camera's live source. Dropping it only updates a counter
/// (a `watch` send); the stream's task does the async stop after the linger.
pub struct Lease {
    stream: CameraStream,
}

impl Lease {
    /// The leased stream.
    pub fn stream(&self) -> &CameraStream {
        &self.stream
    }

    /// Subscribes to the leased stream; see [`CameraStream::subscribe`].
    pub fn subscribe(&self) -> Subscriber {
        self.stream.subscribe()
    }
}

impl Clone for Lease {
    fn clone(&self) -> Self {
        self.stream.lease()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stream
            .shared
            .leases
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("camera", &self.stream.id())
            .finish()
    }
}

impl std::fmt::Debug for CameraStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraStream")
            .field("id", &self.id())
            .finish()
    }
}
