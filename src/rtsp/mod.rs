//! The RTSP server: serves each camera's hub stream to RTSP players at `/<slug>` and
//! `/<device_id>`, using gst-rtsp-server with appsrc-fed pipelines (H.264 and Opus
//! passthrough, no transcoding).
//!
//! The paths follow the camera directory ([`crate::cameras::Directory::changes`]):
//! a camera that appears later is mounted then, one that disappears is unmounted
//! and its sessions end (`mounts`). The server starts at once with whatever the
//! directory holds, so a slow first load of the camera list delays nothing.
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
//!
//! Every task the server starts (the directory follower, the task that quits the
//! main loop on cancellation, one feeder per media, the DESCRIBE readiness waits)
//! runs on the server's `TaskTracker` under a child of its token;
//! [`RtspHandle::shutdown`] cancels, joins the GLib thread, then waits for them.

mod auth;
mod client;
mod clip;
mod describe;
mod event;
mod factory;
mod feeder;
mod follow;
mod gate;
mod hold;
mod join;
mod mounts;
mod pay;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use gst::glib;
use gst_rtsp_server::prelude::*;
use gstreamer as gst;
use gstreamer_rtsp_server as gst_rtsp_server;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, debug, info, info_span, warn};

use crate::base::{ErrorKind, ResultExt, Secret};
use crate::cameras::Directory;
use crate::media::Hub;
use gate::FirstLoad;
use mounts::{CtxByPath, MountEnv, Mounts};

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
    /// Clients that may wait at once for one camera to start; further DESCRIBEs
    /// get 503 at once, and a waiting client that hangs up frees its place.
    /// Default 8.
    pub describe_waiters: usize,
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
            describe_waiters: 8,
            shared_media: true,
        }
    }
}

/// The recorded-event streams (`/<slug>/event`, `/<device_id>_event`) served
/// for every camera with recordings, besides the live paths.
#[derive(Clone)]
pub struct EventStreams {
    /// Which recording each camera plays (and its download).
    pub replay: crate::events::replay::Replay,
    /// Longest DESCRIBE waits for Ring and the recording download.
    pub timeout: Duration,
}

/// Why the RTSP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RtspError {
    /// GStreamer could not be initialised.
    #[error("initialising GStreamer")]
    Init(#[source] glib::Error),
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
            RtspError::Bind { .. } => ErrorKind::Unavailable,
            RtspError::Init(_) | RtspError::NoMountPoints | RtspError::Thread(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// Entry point; see [`RtspServer::start`].
pub struct RtspServer;

/// A running RTSP server. Dropping it cancels its token and stops the main
/// loop too (without waiting); [`RtspHandle::shutdown`] also joins everything.
pub struct RtspHandle {
    port: u16,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Every task of the server: the directory follower, the main-loop quitter,
    /// the feeders and the DESCRIBE readiness waits.
    tasks: TaskTracker,
    /// The server's token, a child of the one given to [`RtspServer::start`]:
    /// stops the follower, the feeders and the waits, and quits the main loop.
    cancel: CancellationToken,
}

impl RtspServer {
    /// Binds the server, mounts every camera the directory holds now, starts the
    /// GLib thread and a task that mounts and unmounts cameras as the directory
    /// changes.
    ///
    /// Must be called inside a Tokio runtime (feeders, readiness waits and the
    /// directory follower run there, on the server's own task tracker under a
    /// child of `cancel`). `cancel` stops the server (the main loop quits,
    /// clients are disconnected); [`RtspHandle::shutdown`] joins it. A failed
    /// start has spawned no task.
    pub fn start(
        opts: RtspOptions,
        hub: Hub,
        directory: Directory,
        cancel: CancellationToken,
    ) -> Result<RtspHandle, RtspError> {
        Self::start_with_events(opts, hub, directory, None, cancel)
    }

    /// [`RtspServer::start`], plus the recorded-event streams of `events` for
    /// every camera with recordings.
    pub fn start_with_events(
        opts: RtspOptions,
        hub: Hub,
        directory: Directory,
        events: Option<EventStreams>,
        cancel: CancellationToken,
    ) -> Result<RtspHandle, RtspError> {
        gst::init().map_err(RtspError::Init)?;
        let cancel = cancel.child_token();
        let tasks = TaskTracker::new();
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
        let points = server.mount_points().ok_or(RtspError::NoMountPoints)?;
        let env = MountEnv {
            hub,
            rt: rt.clone(),
            describe_timeout: opts.describe_timeout,
            cancel: cancel.clone(),
            tasks: tasks.clone(),
            shared: opts.shared_media,
            describe_waiters: opts.describe_waiters,
            events,
        };
        let mut routes = vec![mounts::LIVE];
        if env.events.is_some() {
            routes.push(mounts::EVENT);
        }
        let mut mounts = Mounts::new(server.clone(), points, env, routes, auth);
        // The cameras known now are mounted before the first client can connect;
        // the follower applies every later change.
        let mut changes = directory.changes();
        let mut posted = follow::Posted::default();
        if let Some(Some(batch)) = changes.next().now_or_never() {
            posted.record(&batch);
            mounts.apply(batch);
        }
        let dir = directory.subscribe();
        let first_load = Arc::new(FirstLoad::new(opts.describe_waiters, opts.describe_timeout));
        if posted.covers(&dir.borrow()) {
            first_load.set_done();
        }
        let cameras = mounts.paths().len();
        connect_client_hooks(
            &server,
            mounts.contexts(),
            first_load.clone(),
            opts.shared_media,
        );

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
        info!(port, paths = cameras, auth, "RTSP server listening");
        let quit = main_loop.clone();
        let quit_on = cancel.clone();
        tasks.spawn_on(
            async move {
                quit_on.cancelled().await;
                quit.quit();
            },
            &rt,
        );
        let follower = follow::Follower {
            changes,
            dir,
            glib_ctx: main_loop.context(),
            mounts,
            posted,
            first_load,
        };
        tasks.spawn_on(
            follower
                .run(cancel.clone())
                .instrument(info_span!("rtsp_mounts")),
            &rt,
        );
        Ok(RtspHandle {
            port,
            main_loop,
            thread: Some(thread),
            tasks,
            cancel,
        })
    }
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

/// The mount path of a request URL: its path without a trailing control part
/// (`/<mount>/stream=0`).
pub(crate) fn mount_of(uri: &gst_rtsp_server::gst_rtsp::RTSPUrl) -> Option<String> {
    let url = url::Url::parse(uri.request_uri().as_str()).ok()?;
    Some(strip_control(url.path()).to_owned())
}

/// `path` without a trailing `/stream=N` control segment or a trailing `/`.
fn strip_control(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some((mount, last)) if last.starts_with("stream=") => mount,
        _ => path,
    }
}

/// Hooks on every client: the DESCRIBE gate (`describe`), and around every PLAY:
///
/// - With shared media, a client joining a running pipeline waits in its PLAY for
///   the stream's next key frame (`join`), which it asks the hub for; it then
///   starts inside that key frame's access unit instead of mid-GOP.
/// - After gst-rtsp-server handled a PLAY: rate control off for the session's live
///   media (event media keep it: their clips are paced by it). gst-rtsp-server
///   turns it on for every PLAY without an ONVIF `Rate-Control: no` header, and
///   then its TCP sinks sync each packet to the clock against PTS anchored at the
///   feeder's first push: a fixed extra delay of 0–15 ms per media (`ring-bridge
///   bench`). The hub already delivers in real time; PTS still sets the RTP
///   timestamps.
fn connect_client_hooks(
    server: &gst_rtsp_server::RTSPServer,
    by_path: CtxByPath,
    first_load: Arc<FirstLoad>,
    shared: bool,
) {
    server.connect_client_connected(move |_, client| {
        describe::connect(client, by_path.clone(), first_load.clone());
        // The gate that let this client's PLAY through, until the PLAY is handled.
        let admitted: Arc<std::sync::Mutex<Option<Arc<join::JoinGate>>>> = Arc::default();
        if shared {
            let admitted = Arc::clone(&admitted);
            client.connect_pre_play_request(move |_, ctx| {
                let gate = session_camera_media(ctx).and_then(|m| m.join_at_key_frame());
                *admitted.lock().unwrap_or_else(|p| p.into_inner()) = gate;
                gst_rtsp_server::gst_rtsp::RTSPStatusCode::Ok
            });
        }
        client.connect_play_request(move |_, ctx| {
            if let Some(gate) = admitted.lock().unwrap_or_else(|p| p.into_inner()).take() {
                gate.admitted();
            }
            if let Some(session) = ctx.session() {
                for sm in session.filter(None) {
                    match sm.media() {
                        // Recorded clips are paced by the clock (`clip`).
                        Some(m) if m.is::<event::EventMedia>() => {}
                        Some(m) => unsynced_sending(&m),
                        None => {}
                    }
                }
            }
        });
    });
}

/// The live camera media of the session a request belongs to.
fn session_camera_media(ctx: &gst_rtsp_server::RTSPContext) -> Option<factory::CameraMedia> {
    ctx.session()?
        .filter(None)
        .into_iter()
        .find_map(|sm| sm.media()?.downcast::<factory::CameraMedia>().ok())
}

impl RtspHandle {
    /// The TCP port the server is bound to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server: cancels its token (the directory follower, feeders and
    /// readiness waits end), quits the main loop, disconnects clients, joins the
    /// GLib thread, then every task of the server. Media then unprepare and
    /// release their leases.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for RtspHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.main_loop.quit();
    }
}
