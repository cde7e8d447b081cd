//! The HTTP side: REST API (`docs/API.md`), WHEP, health and metrics, the
//! browser console (`console`, assets embedded from `assets/`) and its log
//! stream (`logs`).
//!
//! Handlers only read the camera [`Directory`] and call [`RingApi`]; they never
//! block on Ring for the camera list.

pub mod access;
mod announce;
mod api;
mod auth;
mod console;
pub mod error;
pub mod guard;
mod live;
mod logs;
pub mod metrics;
mod replay;
mod serve;
mod whep;

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio_util::sync::CancellationToken;

use crate::base::logbuf::LogBuffer;
use crate::cameras::{Directory, Urls};
use crate::ring::RingApi;

pub use error::ApiError;
pub use metrics::Metrics;
pub use serve::ServeOptions;

/// What handlers share.
#[derive(Clone)]
pub struct WebState {
    /// The Ring cloud.
    pub ring: Arc<dyn RingApi>,
    /// Cached camera list.
    pub directory: Directory,
    /// Request counters.
    pub metrics: Arc<Metrics>,
    /// Public URL builder.
    pub urls: Urls,
    /// The media hub (stream status, viewers).
    pub hub: crate::media::Hub,
    /// Bounded stream holds for `live/start`.
    pub keeper: crate::media::Keeper,
    /// Which recording each camera's RTSP event stream plays.
    pub replay: crate::events::replay::Replay,
    /// Recent server log lines for `/api/logs` (the console's Logs tab).
    pub logs: LogBuffer,
    /// Browser viewers (WHEP) and talkback.
    pub whep: crate::webrtc::WhepServer,
    /// Announcements on camera speakers (`POST …/announce`).
    pub announce: crate::announce::Announcer,
    /// Who may use the console and API.
    pub access: Arc<access::Access>,
    /// The linked Ring account: status, console login, unlink (`/api/auth`).
    pub account: crate::cameras::Account,
    /// Parts that cannot work because GStreamer elements are missing
    /// (`/healthz` `degraded`, the console banner).
    pub degraded: Arc<Vec<crate::codec::elements::Degraded>>,
    /// The push listener's status (`/healthz` `push`).
    pub push: tokio::sync::watch::Receiver<crate::events::push::PushStatus>,
    /// Host allow-list and cross-site checks, before access control.
    pub guard: Arc<guard::Guard>,
    /// Largest request body in bytes (`limits.http_max_body_bytes`).
    pub max_body_bytes: usize,
}

/// Fires when the server begins its graceful shutdown. [`serve`] adds it as a
/// request extension; long-lived responses (the log stream) end on it so they
/// never hold up shutdown.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(pub CancellationToken);

/// The axum application.
pub fn router(state: WebState) -> Router {
    Router::new()
        .merge(console::routes())
        .merge(logs::routes())
        .merge(live::routes())
        .merge(replay::routes())
        .merge(whep::routes())
        .merge(announce::routes())
        .merge(auth::routes())
        .merge(api::routes())
        .layer(middleware::from_fn_with_state(
            state.access.clone(),
            access::enforce,
        ))
        .layer(middleware::from_fn_with_state(
            state.guard.clone(),
            guard::enforce,
        ))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// The `method` label: the standard methods, anything else `other`, so a client
/// inventing methods cannot create series.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts requests by method label, route template (never the raw path) and
/// status: the number of series is bounded by the router, not by clients.
async fn count_requests(State(st): State<WebState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = method_label(req.method());
    let resp = next.run(req).await;
    st.metrics.inc(
        "ringbridge_http_requests_total",
        format!(
            "method=\"{method}\",route=\"{route}\",status=\"{}\"",
            resp.status().as_u16()
        ),
    );
    resp
}

/// Serves `app` on an already bound listener until `cancel` fires, with the
/// connection limits of `opts`. Handlers see `cancel` as the [`Shutdown`]
/// extension and the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    opts: ServeOptions,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let app = app.layer(Extension(Shutdown(cancel.clone())));
    serve::run(listener, app, opts, cancel).await
}
