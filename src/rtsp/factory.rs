//! GObject subclasses for gst-rtsp-server: [`CameraFactory`] (one per camera, mounted
//! at `/<slug>` and `/<device_id>`) and [`CameraMedia`] (holds the viewer lease and
//! the feeder task of one media).
//!
//! Thread rules: the vfuncs run on gst-rtsp-server client/media threads, never on a
//! Tokio worker. `create_element` blocks its RTSP client thread (not the server's main
//! loop) while the camera starts, bounded by the describe timeout; that is what holds
//! DESCRIBE until the stream can be described. No vfunc panics; failures are logged
//! and reported as `None`.

use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use gst_rtsp_server::subclass::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as gst_rtsp_server;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, debug, error, info, info_span, warn};

use super::gate::DescribeGate;
use super::join::{self, JoinGate};
use super::{feeder, hold};
use crate::media::{CameraStream, HubError, Lease, VideoParams, ViewerKind};

/// How often a waiting DESCRIBE checks whether its client hung up.
pub(crate) const GONE_CHECK: Duration = Duration::from_millis(200);

/// Everything a factory needs, set once at creation.
pub(crate) struct FactoryCtx {
    pub(crate) stream: CameraStream,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) describe_timeout: Duration,
    pub(crate) cancel: CancellationToken,
    /// The server's tracker: the feeders and readiness waits this factory
    /// starts are spawned on it (on `rt`), so the server's shutdown joins them.
    pub(crate) tasks: TaskTracker,
    /// Until when DESCRIBE fails at once because the last wait failed, so clients
    /// that queued behind a failing wait are not each held the whole timeout.
    pub(crate) failed_until: Mutex<Option<std::time::Instant>>,
    /// Bounds the clients waiting for this camera to start (`super::describe`).
    pub(crate) gate: DescribeGate,
    /// Part of every media key (`gen_key`), moved on before a shared media lets
    /// go of its hold (`super::hold`), so no client finds a media that is ending.
    pub(crate) generation: Arc<std::sync::atomic::AtomicU64>,
}

impl FactoryCtx {
    pub(crate) fn failing(&self) -> bool {
        let until = *self.failed_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|t| std::time::Instant::now() < t) && self.stream.video_params().is_none()
    }

    pub(crate) fn set_failing(&self, failing: bool) {
        let until = failing.then(|| std::time::Instant::now() + self.describe_timeout);
        *self.failed_until.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }
}

/// Handed from `construct` to `create_element` and `media_configure` of the same
/// construction (gst-rtsp-server runs all three under the factory's media lock).
struct Pending {
    lease: Lease,
    bin: Option<gst::Bin>,
    video: gst_app::AppSrc,
    audio: Option<gst_app::AppSrc>,
    started: watch::Receiver<bool>,
    gate: Arc<JoinGate>,
}

/// What a prepared media keeps until it is unprepared: the lease and the
/// feeder's guard.
struct MediaState {
    _lease: Lease,
    _feeder: DropGuard,
}

/// What a media keeps for its whole life: its factory's context and the
/// key-frame gate of its joiners.
struct MediaParts {
    ctx: Arc<FactoryCtx>,
    gate: Arc<JoinGate>,
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct CameraFactory {
        pub(super) ctx: OnceLock<Arc<FactoryCtx>>,
        pub(super) pending: Mutex<Option<Pending>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for CameraFactory {
        const NAME: &'static str = "RingBridgeCameraFactory";
        type Type = super::CameraFactory;
        type ParentType = gst_rtsp_server::RTSPMediaFactory;
    }

    impl ObjectImpl for CameraFactory {}

    impl CameraFactory {
        fn pending(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
            self.pending.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl RTSPMediaFactoryImpl for CameraFactory {
        fn construct(
            &self,
            url: &gst_rtsp_server::gst_rtsp::RTSPUrl,
        ) -> Option<gst_rtsp_server::RTSPMedia> {
            // Waiting here rather than in `create_element`: returning `None` from
            // `construct` is clean, from `create_element` it trips a GLib critical.
            let ctx = self.ctx.get()?;
            let span = info_span!("rtsp", camera = %ctx.stream.id(), uri = %url.request_uri());
            let _enter = span.enter();
            if ctx.failing() {
                debug!("DESCRIBE refused at once: the camera failed to start moments ago");
                return None;
            }
            let lease = ctx.stream.lease_as(ViewerKind::Rtsp);
            // Normally ready at once: the DESCRIBE gate waited already.
            let params = match wait_ready_blocking(ctx, || false) {
                Ok(p) => p,
                Err(e) => {
                    warn!(err = %e, "DESCRIBE refused: stream not ready");
                    ctx.set_failing(true);
                    return None;
                }
            };
            ctx.set_failing(false);
            let audio = ctx.stream.has_audio();
            let elements = match feeder::build_elements(params.codec, audio) {
                Ok(e) => e,
                Err(e) => {
                    error!(err = %e, "cannot build RTSP media elements (GStreamer plugins missing?)");
                    return None;
                }
            };
            info!(
                codec = %params.codec,
                width = params.width,
                height = params.height,
                audio,
                "stream ready; answering DESCRIBE"
            );
            *self.pending() = Some(Pending {
                lease,
                bin: Some(elements.bin),
                video: elements.video,
                audio: elements.audio,
                started: elements.started,
                gate: elements.gate,
            });
            let media = self.parent_construct(url);
            if media.is_none() {
                *self.pending() = None;
            }
            media
        }

        // gst-rtsp-server looks a shared media up by this key before `construct`
        // runs; the generation keeps a media that is unpreparing from being found.
        fn gen_key(&self, url: &gst_rtsp_server::gst_rtsp::RTSPUrl) -> Option<glib::GString> {
            let key = self.parent_gen_key(url)?;
            let generation = self.ctx.get().map_or(0, |c| {
                c.generation.load(std::sync::atomic::Ordering::Acquire)
            });
            Some(format!("{key}#{generation}").into())
        }

        fn create_element(
            &self,
            _url: &gst_rtsp_server::gst_rtsp::RTSPUrl,
        ) -> Option<gst::Element> {
            let bin = self.pending().as_mut().and_then(|p| p.bin.take());
            if bin.is_none() {
                error!("create_element called outside construct");
            }
            bin.map(|b| b.upcast())
        }

        fn media_configure(&self, media: &gst_rtsp_server::RTSPMedia) {
            self.parent_media_configure(media);
            // Send each packet as soon as it is made (see `crate::rtsp::unsynced_sending`,
            // done again after every PLAY).
            crate::rtsp::unsynced_sending(media);
            let Some(ctx) = self.ctx.get() else { return };
            let pending = self.pending().take();
            let (Some(p), Some(cm)) = (pending, media.downcast_ref::<super::CameraMedia>()) else {
                error!(camera = %ctx.stream.id(), "RTSP media configured without its elements");
                return;
            };
            let token = ctx.cancel.child_token();
            let span = info_span!("rtsp", camera = %ctx.stream.id());
            ctx.tasks.spawn_on(
                feeder::feed(
                    p.lease.stream().clone(),
                    p.video,
                    p.audio,
                    feeder::AudioGate::new(media),
                    p.started,
                    token.clone(),
                )
                .instrument(span),
                &ctx.rt,
            );
            let cm = cm.imp();
            *cm.state() = Some(MediaState {
                _lease: p.lease,
                _feeder: token.drop_guard(),
            });
            let _ = cm.parts.set(MediaParts {
                ctx: Arc::clone(ctx),
                gate: p.gate,
            });
        }
    }

    #[derive(Default)]
    pub struct CameraMedia {
        pub(super) state: Mutex<Option<MediaState>>,
        pub(super) parts: OnceLock<MediaParts>,
    }

    impl CameraMedia {
        fn state(&self) -> std::sync::MutexGuard<'_, Option<MediaState>> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for CameraMedia {
        const NAME: &'static str = "RingBridgeCameraMedia";
        type Type = super::CameraMedia;
        type ParentType = gst_rtsp_server::RTSPMedia;
    }

    impl ObjectImpl for CameraMedia {}

    impl RTSPMediaImpl for CameraMedia {
        fn prepared(&self) {
            self.parent_prepared();
            // Shared media outlive their last client briefly (`super::hold`); taken
            // here, on the thread that prepared the media, before its client can
            // leave.
            let obj = self.obj();
            let media: &gst_rtsp_server::RTSPMedia = obj.upcast_ref();
            let Some(parts) = self.parts.get() else {
                return;
            };
            // Our media are not reusable: this runs once per media.
            if media.is_shared() && hold::take(media) {
                let ctx = &parts.ctx;
                ctx.tasks.spawn_on(
                    hold::release_when_idle(
                        media.downgrade(),
                        Arc::clone(&ctx.generation),
                        ctx.cancel.child_token(),
                    )
                    .instrument(info_span!("rtsp", camera = %ctx.stream.id())),
                    &ctx.rt,
                );
            }
        }

        fn unprepared(&self) {
            // Stops the feeder and releases the lease (the hub lingers, then hangs up).
            let state = self.state().take();
            if state.is_some() {
                debug!("RTSP media unprepared; lease released");
            }
            drop(state);
            self.parent_unprepared();
        }
    }
}

glib::wrapper! {
    /// Media factory for one camera; see the module docs.
    pub struct CameraFactory(ObjectSubclass<imp::CameraFactory>)
        @extends gst_rtsp_server::RTSPMediaFactory;
}

glib::wrapper! {
    /// One RTSP media (pipeline) of a camera, shared by its clients when sharing is on.
    pub struct CameraMedia(ObjectSubclass<imp::CameraMedia>)
        @extends gst_rtsp_server::RTSPMedia;
}

impl CameraMedia {
    /// For a client PLAYing this media while others play it already: asks the
    /// hub for a new key frame and waits (at most [`join::JOIN_WAIT`], on this
    /// client thread) until the stream reaches one (`super::join`). The gate it
    /// returns must hear [`JoinGate::admitted`] once the PLAY is handled. `None`
    /// for the first client (its feeder starts on the cached key frame) or when
    /// no key frame came in time.
    pub(crate) fn join_at_key_frame(&self) -> Option<Arc<JoinGate>> {
        let parts = self.imp().parts.get()?;
        // The joiner's own transport is not active yet.
        let playing = self
            .stream(0)
            .is_some_and(|v| !v.transport_filter(None).is_empty());
        if !playing {
            return None;
        }
        parts.ctx.stream.request_new_keyframe();
        if parts.gate.wait_for_key(join::JOIN_WAIT) {
            Some(Arc::clone(&parts.gate))
        } else {
            debug!(
                camera = %parts.ctx.stream.id(),
                wait = ?join::JOIN_WAIT,
                "no key frame for a joining RTSP client; it plays from the stream's current point"
            );
            None
        }
    }
}

impl CameraFactory {
    /// A factory serving `ctx.stream`; `shared` selects one media for all clients.
    pub(crate) fn new(ctx: Arc<FactoryCtx>, shared: bool) -> Self {
        let f: CameraFactory = glib::Object::new();
        // A fresh object: the cell is empty, so this cannot fail.
        let _ = f.imp().ctx.set(ctx);
        f.set_shared(shared);
        f.set_media_gtype(CameraMedia::static_type());
        f.set_eos_shutdown(false);
        f
    }
}

/// Why a wait for the stream ended without it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WaitError {
    /// The client hung up.
    #[error("the client hung up")]
    Gone,
    /// The stream did not become ready (timeout, start failure, shutdown).
    #[error("{0}")]
    Failed(String),
}

/// Waits (on this GStreamer thread) for the hub to have a key frame; the wait
/// itself runs on Tokio, this thread blocks on a std channel in short slices,
/// asking `gone` between them.
pub(crate) fn wait_ready_blocking(
    ctx: &FactoryCtx,
    gone: impl Fn() -> bool,
) -> Result<VideoParams, WaitError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let stream = ctx.stream.clone();
    let stop = ctx.cancel.child_token();
    let timeout = ctx.describe_timeout;
    {
        let stop = stop.clone();
        ctx.tasks.spawn_on(
            async move {
                let r = tokio::select! {
                    r = stream.wait_ready(timeout) => r.map_err(|e: HubError| e.to_string()),
                    _ = stop.cancelled() => Err("RTSP server shutting down".to_owned()),
                };
                let _ = tx.send(r);
            },
            &ctx.rt,
        );
    }
    // Ends the Tokio side too when we stop waiting early.
    let _stop = stop.drop_guard();
    let deadline = Instant::now() + timeout + Duration::from_secs(2);
    loop {
        let slice = deadline
            .saturating_duration_since(Instant::now())
            .min(GONE_CHECK);
        match rx.recv_timeout(slice) {
            Ok(r) => return r.map_err(WaitError::Failed),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(WaitError::Failed("waiting for the hub: task ended".into()));
            }
            Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                return Err(WaitError::Failed("waiting for the hub: timed out".into()));
            }
            Err(RecvTimeoutError::Timeout) => {
                if gone() {
                    return Err(WaitError::Gone);
                }
            }
        }
    }
}
