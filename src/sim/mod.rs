//! The Ring cloud simulator: an axum server that speaks the Ring REST protocol
//! (`../shared/ring-api.md` §1–§5, all hosts on one port) over a fixed demo data
//! set, with real GStreamer-made recordings and snapshots, fault injection and a
//! `/_sim/` control API. It powers tests and the demo mode; see
//! `docs/SIMULATOR.md`.
//!
//! This module owns the REST side only. The live-view signalling socket
//! (`GET /ws`) belongs to `sim::live`, which plugs in through
//! [`SimOptions::extra_routes`] and uses [`SimState::take_ticket`],
//! [`SimState::camera_online`] and [`SimState::set_live_stats_provider`]. The
//! push channel (`GET /_sim/push`, FCM's stand-in) is [`push`], fed from
//! [`SimState::events`]. The
//! simulator must never be reachable from outside the host: it has no real
//! security.

mod auth;
mod clock;
mod control;
mod data;
mod devices;
mod error;
mod faults;
mod history;
pub mod live;
mod media;
pub(crate) mod media_gen;
mod origin;
pub mod push;
mod render;
mod snapshots;
mod state;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::future::IntoFuture as _;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{delete, get, post, put};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use data::cameras::{EXTRA_FIRST_ID, MEDIA_DIR_FIRST_ID};
pub use data::home::{CABIN_LOCATION_ID, CHIME_ID, HOME_LOCATION_ID};
pub use faults::ENDPOINTS;
pub use state::{CameraInfo, SimEvent, SimEventKind, SimState};

/// E-mail of the demo account.
pub const DEMO_EMAIL: &str = "demo@ring-bridge.local";
/// Password of the demo account.
pub const DEMO_PASSWORD: &str = "demo-password";
/// The only 2FA code the simulator accepts (`2fa-code` header).
pub const DEMO_2FA_CODE: &str = "123456";

/// Builds extra routes (the live part's `GET /ws`) over the shared state.
pub type RouterHook = Arc<dyn Fn(Arc<SimState>) -> Router + Send + Sync>;

/// Simulator settings.
#[derive(Clone)]
pub struct SimOptions {
    /// Longest live session; the live part ends sessions after it. Default 600 s.
    pub session_cap: Duration,
    /// A directory of the user's own `.mp4` files; each becomes an extra camera
    /// (ids from [`MEDIA_DIR_FIRST_ID`], location Home) whose recordings are that
    /// file. `None`: only the seeded cameras.
    pub media_dir: Option<PathBuf>,
    /// Extra wired cameras (`sim --cameras N`, for benchmarks), ids from
    /// [`EXTRA_FIRST_ID`], each streaming the generated clip. Default 0.
    pub extra_cameras: usize,
    /// Lifetime of issued access tokens (`expires_in`). Default 3600 s.
    pub access_token_ttl: Duration,
    /// `X-Amz-Expires` of the signed recording URLs. Default 3600 s.
    pub recording_url_ttl: Duration,
    /// How long after a control-API motion/ding its recording turns `ready`
    /// (it is `pending` until then). Default 0: ready at once.
    pub recording_ready_delay: Duration,
    /// Seeded history events per camera. Default 30.
    pub seed_events_per_camera: usize,
    /// Extra routes merged into the server (tests; the live part is built in).
    pub extra_routes: Option<RouterHook>,
    /// The simulated cameras' live media (size, rate, GOP, ping timeout). Its
    /// `session_cap` is replaced by [`SimOptions::session_cap`].
    pub live: live::LiveSimOptions,
    /// Origin of the absolute URLs handed out (recordings, thumbnails), e.g.
    /// `https://ring.example:8443/` behind a TLS proxy (`sim --public-url`).
    /// `None`: from `Forwarded` / `X-Forwarded-Proto` / `Host` (see `origin`).
    pub public_url: Option<url::Url>,
    /// Whether clients API calls need a `POST /clients_api/session` for their
    /// `hardware_id` first (404 naming it otherwise), like Ring. Default true;
    /// switchable at run time with `POST /_sim/sessions`.
    pub require_session: bool,
    /// How long a requested snapshot (`POST /clients_api/snapshots/timestamps`)
    /// takes to be captured. Default 1 s; `POST /_sim/snapshots` changes it.
    pub snapshot_delay: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            session_cap: Duration::from_secs(600),
            media_dir: None,
            extra_cameras: 0,
            access_token_ttl: Duration::from_secs(3600),
            recording_url_ttl: Duration::from_secs(3600),
            recording_ready_delay: Duration::ZERO,
            seed_events_per_camera: 30,
            extra_routes: None,
            live: live::LiveSimOptions::default(),
            public_url: None,
            require_session: true,
            snapshot_delay: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for SimOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimOptions")
            .field("session_cap", &self.session_cap)
            .field("media_dir", &self.media_dir)
            .field("extra_cameras", &self.extra_cameras)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("recording_url_ttl", &self.recording_url_ttl)
            .field("recording_ready_delay", &self.recording_ready_delay)
            .field("seed_events_per_camera", &self.seed_events_per_camera)
            .field("public_url", &self.public_url)
            .field("require_session", &self.require_session)
            .field("snapshot_delay", &self.snapshot_delay)
            .field(
                "extra_routes",
                &self.extra_routes.as_ref().map(|_| "<hook>"),
            )
            .finish()
    }
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds `addr` (port 0 allowed) and serves until `cancel` fires. Media
    /// generation starts in the background; requests wait for it when needed.
    pub async fn start(
        opts: SimOptions,
        addr: SocketAddr,
        cancel: CancellationToken,
    ) -> anyhow::Result<SimHandle> {
        let media_cams = match &opts.media_dir {
            Some(dir) => scan_media_dir(dir).await?,
            None => Vec::new(),
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the Ring simulator to {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the simulator's address")?;
        let extra = opts.extra_routes.clone();
        let opts_live = opts.live.clone();
        let state = Arc::new(SimState::new(opts, media_cams, cancel.clone()));
        let warm_specs = state
            .lock()
            .cameras
            .values()
            .map(|c| (c.name.clone(), c.pattern, c.media_file.clone()))
            .collect();
        let mut live_opts = opts_live;
        live_opts.session_cap = state.options().session_cap;
        let live = {
            let (t, c) = (state.clone(), state.clone());
            live::LiveSim::new(
                live_opts,
                Box::new(move |ticket| t.take_ticket(ticket)),
                Box::new(move |id| c.camera_online(id)),
            )
        };
        {
            let l = live.clone();
            state.set_live_stats_provider(Box::new(move || l.stats()));
            let st = state.clone();
            live.set_camera_media(Box::new(move |id| st.camera(id).and_then(|c| c.media_file)));
            let st = state.clone();
            live.set_camera_video(Box::new(move |id| {
                st.camera(id).map(|c| c.video).unwrap_or_default()
            }));
        }
        let live_for_join = live.clone();
        // The simulator's own background tasks (push fan-out); joined below.
        let tasks = TaskTracker::new();
        let mut app = router(state.clone())
            .merge(push::router(state.clone(), &tasks))
            .merge(live.router())
            .merge(live_control_router(live.clone()));
        if let Some(hook) = extra {
            app = app.merge(hook(state.clone()));
        }
        let app = app
            .method_not_allowed_fallback(control::method_not_allowed)
            .fallback(control::not_found)
            .layer(tower_http::trace::TraceLayer::new_for_http());
        tracing::info!(%addr, "Ring simulator listening");
        let join = tokio::spawn(async move {
            // Generate media while serving; requests that need it wait for it.
            let warm_cancel = cancel.clone();
            let warm = async move {
                tokio::select! {
                    () = media_gen::prewarm(warm_specs) => {}
                    () = warm_cancel.cancelled() => {}
                }
            };
            let serve = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned());
            let (served, ()) = tokio::join!(serve.into_future(), warm);
            live_for_join.shutdown().await;
            tasks.close();
            tasks.wait().await;
            served.context("serving the Ring simulator")
        });
        Ok(SimHandle {
            addr,
            state,
            live,
            join,
        })
    }
}

/// A running simulator.
pub struct SimHandle {
    /// The bound address (the real port when started with port 0).
    pub addr: SocketAddr,
    /// The shared state (control it directly in tests, or over `/_sim/`).
    pub state: Arc<SimState>,
    /// The live-view part (signalling + camera peers).
    pub live: Arc<live::LiveSim>,
    join: JoinHandle<anyhow::Result<()>>,
}

impl SimHandle {
    /// `http://<addr>/`: the base URL for every Ring host.
    pub fn url(&self) -> url::Url {
        let s = format!("http://{}/", self.addr);
        url::Url::parse(&s).expect("http://<socket addr>/ is always a valid URL")
    }

    /// Mints a valid single-use refresh token (see [`SimState::bootstrap_refresh_token`]).
    pub fn bootstrap_refresh_token(&self) -> String {
        self.state.bootstrap_refresh_token()
    }

    /// Waits until the server has stopped (after the cancel token fired).
    pub async fn join(self) -> anyhow::Result<()> {
        self.join.await.context("simulator task panicked")?
    }
}

/// Every REST path of the simulator (Ring's hosts and `/_sim/`), without the
/// live part's `GET /ws` and without a fallback.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        // oauth.ring.com
        .route("/oauth/token", post(auth::token))
        // api.ring.com/clients_api
        .route("/clients_api/session", post(devices::session))
        .route("/clients_api/profile", get(devices::profile))
        .route("/clients_api/ring_devices", get(devices::ring_devices))
        .route(
            "/clients_api/device",
            axum::routing::patch(devices::push_register),
        )
        .route("/clients_api/dings/active", get(devices::dings_active))
        .route("/clients_api/dings/{id}/recording", get(media::recording))
        .route("/clients_api/dings/{id}/share/play", get(media::share_play))
        .route("/clients_api/doorbots/{id}", put(devices::doorbot_settings))
        .route(
            "/clients_api/doorbots/{id}/{action}",
            get(devices::doorbot_get)
                .put(devices::doorbot_put)
                .post(devices::doorbot_post),
        )
        .route(
            "/clients_api/locations/{loc}/events",
            get(history::location_events),
        )
        .route(
            "/clients_api/locations/{loc}/devices/{id}/events",
            get(history::device_events),
        )
        .route(
            "/clients_api/snapshots/timestamps",
            post(snapshots::timestamps),
        )
        .route(
            "/clients_api/snapshots/update_all",
            put(snapshots::update_all),
        )
        .route("/clients_api/snapshots/image/{id}", get(snapshots::image))
        .route("/clients_api/snapshots/uuid", get(snapshots::by_uuid))
        // api.ring.com/devices/v1 and evm
        .route("/devices/v1/locations", get(devices::locations))
        .route(
            "/devices/v1/devices/{id}/settings",
            get(devices::device_settings_get).patch(devices::device_settings_patch),
        )
        .route(
            "/groups/v1/locations/{loc}/groups",
            get(devices::location_groups),
        )
        .route("/evm/v2/history/devices", get(history::evm_devices))
        .route("/evm/v2/history/devices/{id}", get(history::evm_device))
        // app-snaps.ring.com
        .route("/snapshots/next/{id}", get(snapshots::next))
        // app API (prd-api-us.prd.rings.solutions / app.ring.com)
        .route(
            "/api/v1/clap/ticket/request/signalsocket",
            post(auth::ticket),
        )
        // the simulator's own media host and control API
        .route("/_sim/media/{dir}/{file}", get(media::media_object))
        .route("/_sim/cameras", post(control::add_camera))
        .route("/_sim/cameras/{id}", delete(control::remove_camera))
        .route("/_sim/cameras/{id}/video", post(control::set_video))
        .route("/_sim/cameras/{id}/{what}", post(control::trigger))
        .route(
            "/_sim/faults",
            post(control::add_faults).delete(control::clear_faults),
        )
        .route("/_sim/tokens/revoke", post(control::revoke_tokens))
        .route(
            "/_sim/sessions",
            post(control::set_sessions).delete(control::end_sessions),
        )
        .route("/_sim/snapshots", post(control::set_snapshots))
        .route("/_sim/state", get(control::state))
        .with_state(state)
}

/// Lists `dir`'s `.mp4` files, sorted by name, as `(camera name, path)`.
async fn scan_media_dir(dir: &std::path::Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut rd = tokio::fs::read_dir(dir)
        .await
        .with_context(|| format!("reading the simulator media directory {}", dir.display()))?;
    let mut out = Vec::new();
    while let Some(entry) = rd
        .next_entry()
        .await
        .context("listing the media directory")?
    {
        let path = entry.path();
        let is_mp4 = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("mp4"));
        if is_mp4 && path.is_file() {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().replace(['_', '-'], " "))
                .unwrap_or_else(|| "Camera".to_string());
            out.push((name, path));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// `POST /_sim/live/drop_signalling`: closes every signalling socket abruptly
/// (a network drop as the client sees it).
fn live_control_router(live: Arc<live::LiveSim>) -> Router {
    Router::new().route(
        "/_sim/live/drop_signalling",
        axum::routing::post(move || {
            let live = live.clone();
            async move {
                live.drop_signalling();
                axum::Json(serde_json::json!({ "dropped": true }))
            }
        }),
    )
}
