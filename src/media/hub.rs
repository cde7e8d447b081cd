//! The [`Hub`] (one per daemon) and its per-camera [`CameraStream`]s: the stream
//! map, viewer [`Lease`]s, subscription, status and readiness. The state a stream
//! shares with its supervisor lives in `stream.rs`.
//!
//! Locking: each stream has one `std::sync::Mutex` held only for short, non-async
//! critical sections (publish, subscribe, lease). Every method here is safe to call
//! from any thread, including the GLib main loop, and never blocks on Tokio.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::stream::{Deps, HubOptions, Shared, lock};
use super::{
    Floors, HubError, LearnedCaps, LiveOpener, LiveStats, StreamStatus, Subscriber, TalkbackCodec,
    TalkbackSender, VideoParams, ViewerKind, supervisor,
};

use crate::base::CameraId;

/// The media hub: owns one [`CameraStream`] per camera id. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    deps: Arc<Deps>,
    streams: Arc<Mutex<HashMap<CameraId, CameraStream>>>,
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
    pub fn stream(&self, camera: CameraId) -> CameraStream {
        let mut map = lock(&self.streams);
        map.entry(camera)
            .or_insert_with(|| CameraStream::new(camera, self.deps.clone()))
            .clone()
    }

    /// Shorthand for `self.stream(camera).lease()`.
    pub fn lease(&self, camera: CameraId) -> Lease {
        self.stream(camera).lease()
    }

    /// Shorthand for `self.stream(camera).status()`.
    pub fn status(&self, camera: CameraId) -> watch::Receiver<StreamStatus> {
        self.stream(camera).status()
    }

    /// Ids of the streams created so far, sorted.
    pub fn cameras(&self) -> Vec<CameraId> {
        let mut ids: Vec<CameraId> = lock(&self.streams).keys().copied().collect();
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

/// One camera's live stream. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct CameraStream {
    pub(crate) shared: Arc<Shared>,
}

impl CameraStream {
    fn new(id: CameraId, deps: Arc<Deps>) -> Self {
        CameraStream {
            shared: Arc::new(Shared::new(id, deps)),
        }
    }

    /// The camera id.
    pub fn id(&self) -> CameraId {
        self.shared.id
    }

    /// Takes a viewer lease: the first one starts the live source; dropping the last
    /// one stops it after [`HubOptions::linger`]. Callable from any thread. Counted
    /// as [`ViewerKind::Other`]; outputs use [`CameraStream::lease_as`].
    pub fn lease(&self) -> Lease {
        self.lease_as(ViewerKind::Other)
    }

    /// [`CameraStream::lease`] for a viewer of `kind` (counted in [`LiveStats::viewers`]).
    pub fn lease_as(&self, kind: ViewerKind) -> Lease {
        let mut st = lock(&self.shared.state);
        self.shared.stats.viewer(kind, true);
        self.shared.leases.send_modify(|n| *n += 1);
        if !st.running && !self.shared.cancel.is_cancelled() {
            st.running = true;
            supervisor::spawn(self.shared.clone());
        }
        Lease {
            stream: self.clone(),
            kind,
        }
    }

    /// Counts a reader of the running stream that holds no lease (a live
    /// snapshot decoding the cached key frame) as a viewer of `kind` in
    /// [`LiveStats::viewers`] while the returned guard lives. Never starts the
    /// source.
    pub fn count_reader(&self, kind: ViewerKind) -> CountedReader {
        self.shared.stats.viewer(kind, true);
        CountedReader {
            stream: self.clone(),
            kind,
        }
    }

    /// Number of leases currently held.
    pub fn viewers(&self) -> usize {
        *self.shared.leases.borrow()
    }

    /// Subscribes to frames: first the cached GOP (starting at its key frame, audio
    /// included), then live frames. Does not start the source; hold a [`Lease`] too.
    pub fn subscribe(&self) -> Subscriber {
        let (rx, gop) = self.shared.snapshot(true);
        if gop.is_empty() && rx.is_some() {
            self.request_keyframe();
        }
        Subscriber::new(self.clone(), rx, gop, None)
    }

    /// [`CameraStream::subscribe`] for a viewer of `kind`, whose delivery (bitrate,
    /// drops) is listed in [`LiveStats::viewer_streams`] while the subscriber lives.
    pub fn subscribe_as(&self, kind: ViewerKind) -> Subscriber {
        let counters = self.shared.stats.register(kind);
        let (rx, gop) = self.shared.snapshot(true);
        if gop.is_empty() && rx.is_some() {
            self.request_keyframe();
        }
        Subscriber::new(self.clone(), rx, gop, Some(counters))
    }

    /// Statistics of the stream as of now (rates over the last second or more).
    pub fn stats(&self) -> LiveStats {
        self.shared
            .stats
            .snapshot(self.shared.ready.borrow().as_ref())
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
        self.ask_for_keyframe(true);
    }

    /// Asks the source for a new key frame even when the cached one is recent: for
    /// a viewer that cannot start on the cached one (an RTSP client joining a
    /// shared pipeline, which waits for the next key frame in the stream). Still
    /// at most one request per [`HubOptions::keyframe_request_interval`]. Never
    /// blocks.
    pub fn request_new_keyframe(&self) {
        self.ask_for_keyframe(false);
    }

    fn ask_for_keyframe(&self, unless_cached_is_fresh: bool) {
        let every = self.shared.deps.opts.keyframe_request_interval;
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        let fresh =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < every);
        if (unless_cached_is_fresh && fresh(st.gop_started)) || fresh(st.last_keyframe_request) {
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
                camera: self.shared.id,
            });
        }
        tokio::select! {
            r = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)) => match r {
                Ok(Ok(p)) => p.clone().ok_or_else(|| HubError::ShutDown { camera: self.shared.id }),
                Ok(Err(_)) => Err(HubError::ShutDown { camera: self.shared.id }),
                Err(_) => Err(HubError::Timeout { camera: self.shared.id, waited: timeout }),
            },
            _ = self.shared.cancel.cancelled() => Err(HubError::ShutDown { camera: self.shared.id }),
        }
    }
}

/// A viewer's claim on a camera's live source. Dropping it only updates a counter
/// (a `watch` send); the stream's task does the async stop after the linger.
pub struct Lease {
    stream: CameraStream,
    kind: ViewerKind,
}

impl Lease {
    /// The leased stream.
    pub fn stream(&self) -> &CameraStream {
        &self.stream
    }

    /// Subscribes to the leased stream; see [`CameraStream::subscribe_as`] (the
    /// subscriber counts as a viewer of the lease's kind).
    pub fn subscribe(&self) -> Subscriber {
        self.stream.subscribe_as(self.kind)
    }

    /// Who holds this lease.
    pub fn kind(&self) -> ViewerKind {
        self.kind
    }
}

impl Clone for Lease {
    fn clone(&self) -> Self {
        self.stream.lease_as(self.kind)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stream.shared.stats.viewer(self.kind, false);
        self.stream
            .shared
            .leases
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A reader counted as a viewer without a lease; see [`CameraStream::count_reader`].
pub struct CountedReader {
    stream: CameraStream,
    kind: ViewerKind,
}

impl Drop for CountedReader {
    fn drop(&mut self) {
        self.stream.shared.stats.viewer(self.kind, false);
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("camera", &self.stream.id())
            .field("kind", &self.kind)
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
