//! [`Mounts`]: the RTSP paths, kept in step with the camera directory.
//!
//! Each camera is served on every [`Route`] of the server: a route names the
//! paths of a camera (the live route: `/<slug>` and `/<device_id>`; the event
//! route, for cameras with recordings: `/<slug>/event` and `/<device_id>_event`)
//! and builds the factory that serves them. A new kind of path per camera is one more `Route`
//! in the list given to [`Mounts::new`]; `apply` mounts and unmounts it like the
//! others.
//!
//! Thread rule: [`Mounts::apply`] runs on the `rtsp-glib` thread only (the
//! follower task posts each batch of directory changes there), so every change to
//! gst-rtsp-server's mount table and sessions happens on one thread and nothing
//! blocks on Tokio. A path that is invalid or already taken by another camera is
//! skipped with a warning; it never stops the server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst_rtsp_server::RTSPFilterResult;
use gst_rtsp_server::prelude::*;
use gstreamer as gst;
use gstreamer_rtsp_server as gst_rtsp_server;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::factory::{CameraFactory, FactoryCtx};
use super::gate::DescribeGate;
use crate::base::CameraId;
use crate::cameras::{Change, Entry};
use crate::media::Hub;

/// Mount path → what its live factory serves, read on client threads by the
/// DESCRIBE gate (`super::describe`) and the PLAY hook (key frame on join).
pub(crate) type CtxByPath = Arc<Mutex<HashMap<String, Arc<FactoryCtx>>>>;

/// What a [`Route`]'s factory builder may use.
pub(crate) struct MountEnv {
    /// The media hub.
    pub(crate) hub: Hub,
    /// Runtime for feeders and readiness waits.
    pub(crate) rt: tokio::runtime::Handle,
    /// Longest DESCRIBE wait for a first key frame.
    pub(crate) describe_timeout: Duration,
    /// The server's token (ends feeders and waits).
    pub(crate) cancel: CancellationToken,
    /// The server's tasks (feeders, readiness waits), joined by
    /// `RtspHandle::shutdown`.
    pub(crate) tasks: TaskTracker,
    /// One media for all clients of a path.
    pub(crate) shared: bool,
    /// Clients that may wait at once for one camera to start.
    pub(crate) describe_waiters: usize,
    /// The recorded-event streams, when served ([`EVENT`]).
    pub(crate) events: Option<super::EventStreams>,
}

/// One kind of path every camera is served at.
pub(crate) struct Route {
    /// Name for logs (`live`).
    pub(crate) name: &'static str,
    /// The camera's paths on this route (without the leading `/`); duplicates
    /// are served once, none means the camera is not served on this route.
    pub(crate) paths: fn(&Entry) -> Vec<String>,
    /// The factory for those paths and, for live hub paths, what it serves (the
    /// DESCRIBE gate waits on it; a PLAY on shared media asks it for a key frame).
    /// `None`: the route is not served (its part is not configured).
    pub(crate) factory: fn(&MountEnv, &Entry) -> Option<RouteFactory>,
}

/// A route's factory and, for live hub paths, its context.
pub(crate) type RouteFactory = (gst_rtsp_server::RTSPMediaFactory, Option<Arc<FactoryCtx>>);

/// The live route: `/<slug>` and `/<device_id>`, served from the hub.
pub(crate) const LIVE: Route = Route {
    name: "live",
    paths: |e| vec![e.slug.clone(), e.camera.device_id.clone()],
    factory: |env, e| {
        let ctx = Arc::new(FactoryCtx {
            stream: env.hub.stream(e.camera.id),
            rt: env.rt.clone(),
            describe_timeout: env.describe_timeout,
            cancel: env.cancel.clone(),
            tasks: env.tasks.clone(),
            failed_until: Mutex::new(None),
            gate: DescribeGate::new(env.describe_waiters),
            generation: Arc::default(),
        });
        let factory = CameraFactory::new(Arc::clone(&ctx), env.shared);
        Some((factory.upcast(), Some(ctx)))
    },
};

/// The event route: the selected recorded event of a camera with recordings,
/// at `/<slug>/event` and `/<device_id>_event` (`super::event`).
pub(crate) const EVENT: Route = Route {
    name: "event",
    paths: |e| {
        if !e.camera.recordings_enabled {
            return Vec::new();
        }
        super::event::event_paths(&e.slug, &e.camera.device_id)
            .into_iter()
            .map(|p| p.trim_start_matches('/').to_owned())
            .collect()
    },
    factory: |env, e| {
        let ev = env.events.as_ref()?;
        let factory = super::event::EventFactory::new(super::event::EventCtx {
            camera_id: e.camera.id,
            replay: ev.replay.clone(),
            rt: env.rt.clone(),
            timeout: ev.timeout,
            cancel: env.cancel.clone(),
            tasks: env.tasks.clone(),
        });
        Some((factory.upcast(), None))
    },
};

/// The server's mount table, per camera.
pub(crate) struct Mounts {
    points: gst_rtsp_server::RTSPMountPoints,
    server: gst_rtsp_server::RTSPServer,
    env: MountEnv,
    routes: Vec<Route>,
    /// Require the `user` role (RTSP authentication is on).
    auth: bool,
    /// Mounted path → Ring id of its camera.
    owner: HashMap<String, CameraId>,
    /// Ring id → its mounted paths.
    by_camera: HashMap<CameraId, Vec<String>>,
    contexts: CtxByPath,
}

impl Mounts {
    /// An empty table over `server`'s mount points, serving `routes`.
    pub(crate) fn new(
        server: gst_rtsp_server::RTSPServer,
        points: gst_rtsp_server::RTSPMountPoints,
        env: MountEnv,
        routes: Vec<Route>,
        auth: bool,
    ) -> Self {
        Mounts {
            points,
            server,
            env,
            routes,
            auth,
            owner: HashMap::new(),
            by_camera: HashMap::new(),
            contexts: CtxByPath::default(),
        }
    }

    /// The live paths' contexts, for the DESCRIBE gate and the PLAY hook.
    pub(crate) fn contexts(&self) -> CtxByPath {
        self.contexts.clone()
    }

    /// The mounted paths, sorted (for logs and tests).
    pub(crate) fn paths(&self) -> Vec<String> {
        let mut p: Vec<String> = self.owner.keys().cloned().collect();
        p.sort();
        p
    }

    /// Applies one batch of directory changes. Runs on the GLib thread.
    pub(crate) fn apply(&mut self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Added(e) => self.mount(&e),
                Change::Removed(e) => self.unmount(&e),
                Change::Updated { old, new } => {
                    if self.wanted_paths(&old) != self.wanted_paths(&new) {
                        self.unmount(&old);
                        self.mount(&new);
                    }
                }
            }
        }
    }

    fn wanted_paths(&self, e: &Entry) -> Vec<String> {
        self.routes.iter().flat_map(|r| (r.paths)(e)).collect()
    }

    fn mount(&mut self, e: &Entry) {
        let id = e.camera.id;
        let mut mounted = Vec::new();
        for route in &self.routes {
            let mut paths = (route.paths)(e);
            paths.dedup();
            if paths.is_empty() {
                continue;
            }
            let Some((factory, ctx)) = (route.factory)(&self.env, e) else {
                continue;
            };
            if self.auth {
                require_user(&factory);
            }
            for p in paths {
                let path = format!("/{p}");
                if !p.split('/').all(valid_path_segment) {
                    warn!(
                        camera = %id,
                        route = route.name,
                        path,
                        "camera not served at an invalid RTSP path"
                    );
                    continue;
                }
                if let Some(other) = self.owner.get(&path) {
                    warn!(
                        camera = %id,
                        route = route.name,
                        path,
                        %other,
                        "RTSP path already taken by another camera"
                    );
                    continue;
                }
                self.points.add_factory(&path, factory.clone());
                if let Some(c) = &ctx {
                    lock(&self.contexts).insert(path.clone(), Arc::clone(c));
                }
                self.owner.insert(path.clone(), id);
                mounted.push(path);
            }
        }
        info!(camera = %id, slug = %e.slug, paths = ?mounted, "RTSP paths mounted");
        self.by_camera.entry(id).or_default().extend(mounted);
    }

    /// Unmounts every path of `e`'s camera and ends the sessions on them (their
    /// media unprepare and drop their hub leases).
    fn unmount(&mut self, e: &Entry) {
        let id = e.camera.id;
        let Some(paths) = self.by_camera.remove(&id) else {
            return;
        };
        for path in &paths {
            self.points.remove_factory(path);
            self.owner.remove(path);
            lock(&self.contexts).remove(path);
        }
        if let Some(pool) = self.server.session_pool() {
            pool.filter(Some(&mut |_, session| {
                let on_path = session.filter(None).iter().any(|sm| {
                    paths
                        .iter()
                        .any(|p| sm.matches(p) == i32::try_from(p.len()).ok())
                });
                if on_path {
                    RTSPFilterResult::Remove
                } else {
                    RTSPFilterResult::Keep
                }
            }));
        }
        info!(camera = %id, slug = %e.slug, paths = ?paths, "RTSP paths removed");
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `s` is a usable path segment: `[A-Za-z0-9._~-]+`.
pub(crate) fn valid_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}
