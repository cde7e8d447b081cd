//! [`RingClient`]: the production [`RingApi`] over Ring's REST API (or the
//! simulator, through [`RingHosts::simulator`]).
//!
//! Owns the options, the state directory set-up, interactive login and the thin
//! per-endpoint calls (devices, recordings, snapshots, commands, ticket). The
//! heavy lifting (headers, session, refresh on 401, retries) is in
//! `ring::request`; tokens live in `ring::auth`; parsing in `ring::devices` and
//! `ring::history`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::auth::{Auth, USER_AGENT};
use super::devices::{DeviceHealth, parse_health, parse_locations, parse_ring_devices};
use super::request::{Body, Call, Engine};
use super::state::{SeedOutcome, TokenStore};
use super::{
    AuthState, Camera, Error, ErrorInner, HistoryPage, HistoryQuery, Location, Profile,
    RetryPolicy, RingApi, RingHosts, Snapshot,
};
use crate::base::{CameraId, Secret};

/// Options of [`RingClient::new`].
#[derive(Clone, Debug)]
pub struct RingOptions {
    /// Where Ring lives ([`RingHosts::real`] or [`RingHosts::simulator`]).
    pub hosts: RingHosts,
    /// State directory: refresh token and hardware id (created 0700 if missing).
    pub state_dir: PathBuf,
    /// A refresh token from outside (the `RING_REFRESH_TOKEN` environment
    /// variable). Precedence: it is saved if the state dir has no token, or if
    /// it differs from the env value the state dir was last seeded from (a
    /// person pasted a new token). If it is the value the state dir was seeded
    /// from, the state dir wins: it holds that token or a newer rotation of it.
    pub refresh_token_override: Option<Secret<String>>,
    /// Name shown in Ring's Control Center → Authorized Client Devices.
    /// `None`: `ring-bridge-<first 5 characters of the hardware id>`.
    pub device_model: Option<String>,
    /// Timeout of one HTTP request (Ring's clients use 20 s).
    pub http_timeout: Duration,
    /// Retries, backoff, rate-limit bounds, session age, token renew margin.
    pub retry: RetryPolicy,
    /// Cancels every wait and in-flight call (returns `Cancelled`). A token
    /// refresh already sent to Ring still completes and is saved.
    pub cancel: CancellationToken,
}

impl RingOptions {
    /// Options with defaults: no override, derived device model, 20 s timeout,
    /// default [`RetryPolicy`], a fresh cancellation token.
    pub fn new(hosts: RingHosts, state_dir: PathBuf) -> Self {
        RingOptions {
            hosts,
            state_dir,
            refresh_token_override: None,
            device_model: None,
            http_timeout: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            cancel: CancellationToken::new(),
        }
    }
}

/// The Ring cloud client. Cheap to clone; share it as `Arc<dyn RingApi>`.
#[derive(Clone)]
pub struct RingClient {
    pub(super) engine: Engine,
    pub(super) hosts: Arc<RingHosts>,
}

/// `{url}` answers of the recording endpoints.
#[derive(Deserialize)]
struct UrlAnswer {
    #[serde(default)]
    url: Option<String>,
}

/// `{ticket}` answer of the signalling ticket endpoint.
#[derive(Deserialize)]
struct TicketAnswer {
    #[serde(default)]
    ticket: Option<String>,
}

fn decode(path: &Url, detail: impl Into<String>) -> Error {
    ErrorInner::Decode {
        path: path.path().to_owned(),
        detail: detail.into(),
    }
    .into()
}

impl RingClient {
    /// Opens the state directory (creating the hardware id on first run),
    /// applies [`RingOptions::refresh_token_override`] and builds the HTTP
    /// client. Does blocking file I/O: call once at start-up. Does not contact
    /// Ring. A corrupt token file does not fail this: the client starts in
    /// [`AuthState::ReauthRequired`] and a login moves the file aside.
    pub fn new(opts: RingOptions) -> Result<Self, Error> {
        let store = TokenStore::open(&opts.state_dir)?;
        let hardware_id = store.hardware_id()?;
        if let Some(env) = &opts.refresh_token_override {
            match store.seed_from_env(env)? {
                SeedOutcome::Seeded => {
                    tracing::info!("saved the Ring refresh token from the environment")
                }
                SeedOutcome::Replaced => {
                    tracing::info!(
                        "the environment has a new Ring refresh token; it replaces the saved one"
                    )
                }
                SeedOutcome::KeptStateDir => tracing::debug!(
                    "the environment's Ring refresh token was already used; the saved (rotated) one wins"
                ),
            }
        }
        let http = reqwest::Client::builder()
            .timeout(opts.http_timeout)
            .connect_timeout(opts.http_timeout.min(Duration::from_secs(10)))
            .user_agent(USER_AGENT)
            .build()
            .map_err(|source| ErrorInner::Transport {
                path: String::new(),
                source,
            })?;
        let device_model = opts.device_model.clone().unwrap_or_else(|| {
            format!(
                "ring-bridge-{}",
                hardware_id.get(..5).unwrap_or(&hardware_id)
            )
        });
        let auth = Auth::new(
            http.clone(),
            opts.hosts.oauth.clone(),
            hardware_id.clone(),
            store,
            opts.retry.clone(),
            opts.cancel.clone(),
        )?;
        let session_url = opts
            .hosts
            .clients_api
            .join("session")
            .map_err(|e| bad_url(&e))?;
        let engine = Engine::new(
            http,
            auth,
            session_url,
            hardware_id,
            device_model,
            opts.retry,
            opts.cancel,
        );
        Ok(RingClient {
            engine,
            hosts: Arc::new(opts.hosts),
        })
    }

    /// The installation's stable hardware id (sent as `hardware_id`).
    pub fn hardware_id(&self) -> &str {
        &self.engine.hardware_id
    }

    /// The name shown in Ring's Control Center.
    pub fn device_model(&self) -> &str {
        &self.engine.device_model
    }

    /// The hosts this client talks to.
    pub fn hosts(&self) -> &RingHosts {
        &self.hosts
    }

    /// Interactive login with the password grant (ring-api.md §1.2), for
    /// `ring-bridge auth` and the console. Call first without `code`: Ring
    /// usually answers [`ErrorInner::TwoFactorRequired`] (`tsv_state`, masked
    /// phone) and sends a code; call again with it. Errors:
    /// `Auth(BadCredentials)` (401), `Auth(WrongCode)`,
    /// `Auth(TooManyCodeRequests)`. On success the refresh token is saved
    /// (a corrupt token file is moved aside, never deleted), the state becomes
    /// [`AuthState::Authenticated`] and API calls resume.
    pub async fn login_password(
        &self,
        email: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<(), Error> {
        self.engine.auth.login_password(email, password, code).await
    }

    /// Installs a refresh token obtained elsewhere (e.g. pasted into the
    /// console; ring-client-api's base64 `{rt, hid}` wrapper is unwrapped),
    /// saves it and checks it with one refresh grant, whose rotated token is
    /// saved in turn. Fails with `Auth(RefreshRejected)` if Ring refuses it.
    pub async fn login_refresh_token(&self, token: Secret<String>) -> Result<(), Error> {
        self.engine.auth.login_refresh_token(token).await
    }

    /// Unlinks the account: deletes the saved refresh token and forgets the
    /// tokens in memory; calls then fail with `Auth(NotLoggedIn)` until the next
    /// login. Ring itself is not told (it has no revoke endpoint; a person removes
    /// the client under Control Center → Authorized Client Devices). Returns
    /// whether a token was saved.
    pub async fn logout(&self) -> Result<bool, Error> {
        self.engine.auth.logout().await
    }

    /// The signed-in user (`GET clients_api/profile`): e-mail and name.
    pub async fn profile(&self) -> Result<Profile, Error> {
        let url = self.clients_url("profile")?;
        let v: Value = self.engine.json(&Call::get(url.clone())).await?;
        let p = v.get("profile").unwrap_or(&v);
        let text = |k: &str| {
            p.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let email = text("email").ok_or_else(|| decode(&url, "no `profile.email`"))?;
        let name = [text("first_name"), text("last_name")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Profile {
            email: email.to_owned(),
            name: Some(name).filter(|n| !n.is_empty()),
        })
    }

    /// Creates a new session now (ring-api.md §1.5). The client also does this
    /// by itself before the first call, when the session is older than
    /// [`RetryPolicy::session_max_age`] (checked on each call) and when Ring
    /// says it lost it. Long-running callers that make no calls (push
    /// listeners) call this every 12 h.
    pub async fn refresh_session(&self) -> Result<(), Error> {
        self.engine.drop_session(None).await;
        self.engine.ensure_session().await.map(|_| ())
    }

    /// A camera's health (`doorbots/{id}/health`): Wi-Fi signal and name,
    /// battery, firmware. One request per call: poll sparingly.
    pub async fn camera_health(&self, camera_id: CameraId) -> Result<DeviceHealth, Error> {
        let url = self.clients_url(&format!("doorbots/{camera_id}/health"))?;
        let v: Value = self.engine.json(&Call::get(url).camera(camera_id)).await?;
        Ok(parse_health(&v))
    }

    pub(super) fn clients_url(&self, path: &str) -> Result<Url, Error> {
        self.hosts.clients_api.join(path).map_err(|e| bad_url(&e))
    }

    pub(super) fn bad_url(&self, e: url::ParseError) -> Error {
        bad_url(&e)
    }

    async fn put_null(&self, camera_id: CameraId, path: &str) -> Result<(), Error> {
        let url = self.clients_url(&format!("doorbots/{camera_id}/{path}"))?;
        self.engine
            .send(&Call::with(Method::PUT, url, Body::Null).camera(camera_id))
            .await
            .map(|_| ())
    }

    async fn recording_from(&self, url: Url) -> Result<Url, Error> {
        let a: UrlAnswer = self.engine.json(&Call::get(url.clone())).await?;
        let raw = a
            .url
            .filter(|u| !u.is_empty())
            .ok_or_else(|| decode(&url, "no `url` in the answer"))?;
        Url::parse(&raw).map_err(|e| decode(&url, format!("bad recording URL: {e}")))
    }
}

fn bad_url(e: &url::ParseError) -> Error {
    ErrorInner::InvalidId {
        what: "URL path",
        value: e.to_string(),
    }
    .into()
}

#[async_trait::async_trait]
impl RingApi for RingClient {
    async fn cameras(&self) -> Result<Vec<Camera>, Error> {
        let v: Value = self
            .engine
            .json(&Call::get(self.clients_url("ring_devices")?))
            .await?;
        Ok(parse_ring_devices(&v))
    }

    async fn locations(&self) -> Result<Vec<Location>, Error> {
        let url = self
            .hosts
            .devices_api
            .join("locations")
            .map_err(|e| bad_url(&e))?;
        let v: Value = self.engine.json(&Call::get(url)).await?;
        Ok(parse_locations(&v))
    }

    async fn history(
        &self,
        camera_id: CameraId,
        query: HistoryQuery,
    ) -> Result<HistoryPage, Error> {
        self.legacy_history(camera_id, query).await
    }

    /// `dings/{id}/share/play?disable_redirect=true`, falling back to
    /// `dings/{id}/recording?disable_redirect=true` when that is refused (4xx)
    /// or has no URL (ring-api.md §4).
    async fn recording_url(&self, ding_id: &str) -> Result<Url, Error> {
        if ding_id.is_empty() || !ding_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ErrorInner::InvalidId {
                what: "ding id",
                value: ding_id.to_owned(),
            }
            .into());
        }
        let mut play = self.clients_url(&format!("dings/{ding_id}/share/play"))?;
        play.set_query(Some("disable_redirect=true"));
        match self.recording_from(play).await {
            Ok(u) => Ok(u),
            Err(e)
                if matches!(
                    e.inner(),
                    ErrorInner::Decode { .. }
                        | ErrorInner::Status {
                            status: 400..=499,
                            ..
                        }
                ) =>
            {
                tracing::debug!(err = %e, "share/play failed; trying the recording endpoint");
                let mut rec = self.clients_url(&format!("dings/{ding_id}/recording"))?;
                rec.set_query(Some("disable_redirect=true"));
                self.recording_from(rec).await
            }
            Err(e) => Err(e),
        }
    }

    /// `GET {snapshots}snapshots/next/{id}`; when that host refuses or fails,
    /// the clients API's request/poll cycle (`ring::snapshots`, ring-api.md §5).
    /// A camera that is offline (404 `errors:[7019]`) fails at once.
    async fn snapshot(&self, camera_id: CameraId) -> Result<Snapshot, Error> {
        self.snapshot_with_fallback(camera_id).await
    }

    async fn set_light(&self, camera_id: CameraId, on: bool) -> Result<(), Error> {
        let path = if on {
            "floodlight_light_on"
        } else {
            "floodlight_light_off"
        };
        self.put_null(camera_id, path).await
    }

    async fn set_siren(&self, camera_id: CameraId, on: bool) -> Result<(), Error> {
        self.put_null(camera_id, if on { "siren_on" } else { "siren_off" })
            .await
    }

    async fn set_motion_detection(&self, camera_id: CameraId, on: bool) -> Result<(), Error> {
        let url = self
            .hosts
            .devices_api
            .join(&format!("devices/{camera_id}/settings"))
            .map_err(|e| bad_url(&e))?;
        let body = serde_json::json!({ "motion_settings": { "motion_detection_enabled": on } });
        self.engine
            .send(&Call::with(Method::PATCH, url, Body::Json(body)).camera(camera_id))
            .await
            .map(|_| ())
    }

    async fn live_ticket(&self) -> Result<String, Error> {
        let url = self
            .hosts
            .app_api
            .join("clap/ticket/request/signalsocket")
            .map_err(|e| bad_url(&e))?;
        let a: TicketAnswer = self
            .engine
            .json(&Call::with(Method::POST, url.clone(), Body::Empty))
            .await?;
        a.ticket
            .filter(|t| !t.is_empty())
            .ok_or_else(|| decode(&url, "no `ticket` in the answer"))
    }

    fn auth_state(&self) -> tokio::sync::watch::Receiver<AuthState> {
        self.engine.auth.subscribe()
    }
}
