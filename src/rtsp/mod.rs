//! The RTSP server: serves each camera's hub stream to RTSP players at `/<slug>` and
//! `/<device_id>`, using gst-rtsp-server with appsrc-fed pipelines (H.264 and Opus
//! passthrough, no transcoding).
//!
//! This is the only module that touches gstreamer-rtsp-server. It owns one GLib main
//! loop on a dedicated thread (`rtsp-glib`), quit at shutdown. DESCRIBE is held until
//! the camera has a key frame (bounded by [`RtspOptions::describe_timeout`]), because
//! Ring takes seconds to start and players time out otherwise. Each media takes a
//! viewer [`crate::media::Lease`] and releases it when unprepared. See
//! `docs/design/0001-media-hub.md` for the hub side.
//!
//! Cameras with recordings also get an event stream (`/<slug>/event`,
//! `/<device_id>_event`) that plays the selected recorded event ([`event`], [`clip`]).

mod auth;
mod clip;
mod event;
mod factory;
mod feeder;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gst::glib;
use gst_rtsp_server::prelude::*;
use gstreamer as gst;
use gstreamer_rtsp_server as gst_rtsp_server;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::base::{ErrorKind, ResultExt, Secret};
use crate::media::{CameraStream, Hub};
use factory::{CameraFactory, FactoryCtx};

/// Options of the RTSP server.
#[derive(Clone, Debug)]
pub struct RtspOptions {
    /// Address to listen on; port 0 picks a free port (see [`RtspHandle::port`]).
    pub listen: SocketAddr,
    /// With `password`, requires HTTP Basic authentication from every client.
    pub username: Option<String>,
    /// See `username`.
    pub password: Option<Secret<String>>,
    /// Longest time DESCRIBE waits for the camera's first key frame. Default 20 s.
    /// After a wait failed, further DESCRIBEs of that camera fail at once for as
    /// long (unless the stream became ready), so queued clients are not each held
    /// for the full timeout.
    pub describe_timeout: Duration,
    /// Wrong passwords a client address may send per minute before it is refused
    /// for a while (without its credentials being compared). Default 10.
    pub auth_failures_per_minute: usize,
    /// One pipeline (and one hub subscription) per camera mount for all clients
    /// (`true`, the default), or one per client (`false`). With sharing, a client
    /// joining a running media starts mid-GOP: the hub is asked for a key frame, but
    /// the first frames it receives can be delta frames. Without sharing, each client
    /// starts on the hub's cached key frame at once.
    pub shared_media: bool,
}

impl Default for RtspOptions {
    fn default() -> Self {
        RtspOptions {
            listen: SocketAddr::from(([0, 0, 0, 0], 8554)),
            username: None,
            password: None,
            describe_timeout: Duration::from_secs(20),
            auth_failures_per_minute: 10,
            shared_media: true,
        }
    }
}

/// One camera to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    /// The hub camera id.
    pub camera_id: String,
    /// URL-safe name; served at `/<slug>`.
    pub slug: String,
    /// Ring device id; served at `/<device_id>` too.
    pub device_id: String,
}

/// The recorded-event streams served besides the live mounts.
#[derive(Clone)]
pub struct EventStreams {
    /// Which recording each camera plays.
    pub replay: crate::events::replay::Replay,
    /// Hub camera ids (numeric Ring ids) of the cameras with recordings; the
    /// others get no event path (DESCRIBE answers 404).
    pub with_recordings: Vec<String>,
    /// Longest DESCRIBE waits for Ring and the recording download.
    pub timeout: Duration,
}

/// The event-stream mounts of one camera: `(path, factory)` pairs, none for a
/// camera without recordings.
fn event_mounts(
    events: Option<&EventStreams>,
    cam: &MountSpec,
    rt: &tokio::runtime::Handle,
    cancel: &CancellationToken,
) -> Vec<(String, gst_rtsp_server::RTSPMediaFactory)> {
    let Some(ev) = events.filter(|e| e.with_recordings.contains(&cam.camera_id)) else {
        return Vec::new();
    };
    let Ok(camera_id) = cam.camera_id.parse::<u64>() else {
        return Vec::new();
    };
    let factory = event::EventFactory::new(event::EventCtx {
        camera_id,
        replay: ev.replay.clone(),
        rt: rt.clone(),
        timeout: ev.timeout,
        cancel: cancel.clone(),
    });
    event::event_paths(&cam.slug, &cam.device_id)
        .into_iter()
        .map(|p| (p, factory.clone().upcast()))
        .collect()
}

/// Why the RTSP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RtspError {
    /// GStreamer could not be initialised.
    #[error("initialising GStreamer")]
    Init(#[source] glib::Error),
    /// A mount path is empty, has characters other than `[A-Za-z0-9._~-]`, or is
    /// used twice.
    #[error("invalid or duplicate RTSP mount path {path:?}")]
    BadMount {
        /// The offending path.
        path: String,
    },
    /// The server could not bind its listening socket.
    #[error("binding RTSP server to {addr}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// GStreamer's error.
        #[source]
        source: glib::BoolError,
    },
    /// gst-rtsp-server returned no mount-point table (a broken installation).
    #[error("RTSP server has no mount points")]
    NoMountPoints,
    /// The GLib thread could not be spawned or died during start-up.
    #[error("starting the RTSP main-loop thread")]
    Thread(#[source] std::io::Error),
}

impl ResultExt for RtspError {
    fn kind(&self) -> ErrorKind {
        match self {
            RtspError::BadMount { .. } => ErrorKind::InvalidArgument,
            RtspError::Bind { .. } => ErrorKind::Unavailable,
            RtspError::Init(_) | RtspError::NoMountPoints | RtspError::Thread(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// Entry point; see [`RtspServer::start`].
pub struct RtspServer;

/// A running RTSP server. Dropping it stops the main loop too (without waiting).
pub struct RtspHandle {
    port: u16,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn valid_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

impl RtspServer {
    /// Binds the server, mounts every camera and starts the GLib thread.
    ///
    /// Must be called inside a Tokio runtime (feeders and readiness waits run there).
    /// `cancel` stops the server (the main loop quits, clients are disconnected).
    pub fn start(
        opts: RtspOptions,
        hub: Hub,
        cameras: Vec<MountSpec>,
        cancel: CancellationToken,
    ) -> Result<RtspHandle, RtspError> {
        Self::start_with_events(opts, hub, cameras, None, cancel)
    }

    /// [`RtspServer::start`], plus the recorded-event streams of `events`.
    pub fn start_with_events(
        opts: RtspOptions,
        hub: Hub,
        cameras: Vec<MountSpec>,
        events: Option<EventStreams>,
        cancel: CancellationToken,
    ) -> Result<RtspHandle, RtspError> {
        gst::init().map_err(RtspError::Init)?;
        let rt = tokio::runtime::Handle::current();
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address(&opts.listen.ip().to_string());
        server.set_service(&opts.listen.port().to_string());
        if let Some(pool) = server.thread_pool() {
            // Each client gets its own thread (up to this many), so a DESCRIBE held
            // for a slow camera never stalls clients of other cameras.
            pool.set_max_threads(64);
        }
        let auth = match (&opts.username, &opts.password) {
            (Some(user), Some(pass)) => {
                let auth = auth::ThrottledAuth::new(opts.auth_failures_per_minute);
                let token = gst_rtsp_server::RTSPToken::builder()
                    .field(gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
                    .build();
                let basic = gst_rtsp_server::RTSPAuth::make_basic(user, pass.expose());
                auth.add_basic(basic.as_str(), &token);
                server.set_auth(Some(&auth));
                true
            }
            _ => false,
        };
        let mounts = server.mount_points().ok_or(RtspError::NoMountPoints)?;
        let mut by_path: HashMap<String, CameraStream> = HashMap::new();
        for cam in &cameras {
            let stream = hub.stream(&cam.camera_id);
            let factory = CameraFactory::new(
                FactoryCtx {
                    stream: stream.clone(),
                    rt: rt.clone(),
                    describe_timeout: opts.describe_timeout,
                    cancel: cancel.clone(),
                    failed_until: std::sync::Mutex::new(None),
                },
                opts.shared_media,
            );
            if auth {
                require_user(factory.upcast_ref());
            }
            let mut paths = vec![cam.slug.as_str()];
            if cam.device_id != cam.slug {
                paths.push(cam.device_id.as_str());
            }
            for p in paths {
                let path = format!("/{p}");
                if !valid_path_segment(p) || by_path.contains_key(&path) {
                    return Err(RtspError::BadMount { path });
                }
                mounts.add_factory(&path, factory.clone());
                by_path.insert(path, stream.clone());
            }
            for (path, factory) in event_mounts(events.as_ref(), cam, &rt, &cancel) {
                if auth {
                    require_user(&factory);
                }
                mounts.add_factory(&path, factory);
            }
        }
        connect_play_hooks(&server, opts.shared_media.then(|| Arc::new(by_path)));

        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<u16, glib::BoolError>>(1);
        let thread = {
            let main_loop = main_loop.clone();
            std::thread::Builder::new()
                .name("rtsp-glib".into())
                .spawn(move || glib_thread(server, ctx, main_loop, tx))
                .map_err(RtspError::Thread)?
        };
        let port = match rx.recv() {
            Ok(Ok(port)) => port,
            Ok(Err(source)) => {
                let _ = thread.join();
                return Err(RtspError::Bind {
                    addr: opts.listen,
                    source,
                });
            }
            Err(_) => {
                let _ = thread.join();
                return Err(RtspError::Thread(std::io::Error::other(
                    "RTSP thread exited during start-up",
                )));
            }
        };
        info!(port, cameras = cameras.len(), auth, "RTSP server listening");
        let quit = main_loop.clone();
        rt.spawn(async move {
            cancel.cancelled().await;
            quit.quit();
        });
        Ok(RtspHandle {
            port,
            main_loop,
            thread: Some(thread),
        })
    }
}

/// Lets the authenticated `user` role access and construct `factory`'s media.
fn require_user(factory: &gst_rtsp_server::RTSPMediaFactory) {
    factory.add_role_from_structure(
        &gst::Structure::builder("user")
            .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
            .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
            .build(),
    );
}

/// Body of the `rtsp-glib` thread: attach, report the bound port, run until quit,
/// then disconnect every client.
fn glib_thread(
    server: gst_rtsp_server::RTSPServer,
    ctx: glib::MainContext,
    main_loop: glib::MainLoop,
    ready: std::sync::mpsc::SyncSender<Result<u16, glib::BoolError>>,
) {
    let r = ctx.with_thread_default(|| {
        let source = match server.attach(Some(&ctx)) {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let port = u16::try_from(server.bound_port()).unwrap_or(0);
        let _ = ready.send(Ok(port));
        main_loop.run();
        debug!("RTSP main loop quit; disconnecting clients");
        if let Some(src) = ctx.find_source_by_id(&source) {
            src.destroy();
        }
        server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
    });
    if let Err(e) = r {
        warn!(err = %e, "RTSP main context busy; server not run");
    }
}

/// Makes `media` send each packet as soon as it is made: rate control off (its TCP
/// sinks stop syncing to the clock), but RTCP sender reports keep their NTP/RTP
/// timestamps (gst-rtsp-server drops them with rate control, and players need them
/// for audio/video sync).
pub(crate) fn unsynced_sending(media: &gst_rtsp_server::RTSPMedia) {
    media.set_rate_control(false);
    for i in 0..media.n_streams() {
        if let Some(session) = media.stream(i).and_then(|s| s.rtpsession())
            && session.find_property("disable-sr-timestamp").is_some()
        {
            session.set_property("disable-sr-timestamp", false);
        }
    }
}

/// Runs on every PLAY, after gst-rtsp-server handled it:
///
/// - Rate control off for the session's live media (event media keep it: their
///   clips are paced by it). gst-rtsp-server turns it on for every
///   PLAY without an ONVIF `Rate-Control: no` header, and then its TCP sinks sync each
///   packet to the clock against PTS anchored at the feeder's first push: a fixed extra
///   delay of 0–15 ms per media (`ring-bridge bench`). The hub already delivers in real
///   time; PTS still sets the RTP timestamps.
/// - With shared media (`by_path`), a client joining a running pipeline starts mid-GOP;
///   ask the hub for a key frame (rate-limited there).
fn connect_play_hooks(
    server: &gst_rtsp_server::RTSPServer,
    by_path: Option<Arc<HashMap<String, CameraStream>>>,
) {
    server.connect_client_connected(move |_, client| {
        let by_path = by_path.clone();
        client.connect_play_request(move |_, ctx| {
            let mut event_media = false;
            if let Some(session) = ctx.session() {
                for sm in session.filter(None) {
                    match sm.media() {
                        // Recorded clips are paced by the clock (`clip`).
                        Some(m) if m.is::<event::EventMedia>() => event_media = true,
                        Some(m) => unsynced_sending(&m),
                        None => {}
                    }
                }
            }
            if event_media {
                return;
            }
            let Some(by_path) = &by_path else { return };
            let Some(uri) = ctx.uri() else { return };
            let Ok(url) = url::Url::parse(uri.request_uri().as_str()) else {
                return;
            };
            let path = url.path();
            // Control URLs look like /<mount>/stream=0; match on the mount part.
            let mount = path.split('/').nth(1).map(|m| format!("/{m}"));
            if let Some(s) = mount.and_then(|m| by_path.get(&m)) {
                s.request_keyframe();
            }
        });
    });
}

impl RtspHandle {
    /// The TCP port the server is bound to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server: quits the main loop, disconnects clients and joins the
    /// thread. Media then unprepare and release their leases.
    pub async fn shutdown(mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for RtspHandle {
    fn drop(&mut self) {
        self.main_loop.quit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_mount_paths() {
        assert!(valid_path_segment("front-door_2.cam~"));
        assert!(!valid_path_segment(""));
        assert!(!valid_path_segment("a/b"));
        assert!(!valid_path_segment("sp ace"));
    }
}
