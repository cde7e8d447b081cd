//! [`Account`]: the linked Ring account as the console sees it (`/api/auth`):
//! its status, a login with 2FA (through [`super::login`], the same path as
//! `ring-bridge auth`) and unlinking. A successful login or unlink asks for an
//! in-process restart ([`super::restart`]) so every component starts over with
//! the new account.
//!
//! Which client logs in: in Ring and simulator mode the running client, so the
//! token lock serializes the login with refreshes in flight (a rotation of the
//! old token can never overwrite the new one); in demo mode a separate client on
//! the configured state directory and [`super::login::login_hosts`] (the real
//! Ring), created on the first login.
//!
//! Never stores or logs the password or the code.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::login::{Credentials, LoginStep, login, login_client};
use super::restart::{Restart, RestartReason};
use crate::base::login_limit::LoginLimiter;
use crate::base::{ErrorKind, ResultExt};
use crate::config::Config;
use crate::ring::state::TokenStore;
use crate::ring::{AuthState, Profile, RingApi, RingClient};

/// Where the running daemon gets its Ring from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RingMode {
    /// The real Ring cloud.
    Ring,
    /// A simulator the user runs (`RING_SIMULATOR_URL`).
    Simulator,
    /// The built-in simulator: no account linked.
    Demo,
}

/// Where the refresh token in use came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// Saved in the state directory by a login (console or `ring-bridge auth`).
    StateDir,
    /// `RING_REFRESH_TOKEN` or `ring.refresh_token` in the config file.
    Environment,
}

/// `GET /api/auth`.
#[derive(Clone, Debug, Serialize)]
pub struct AccountStatus {
    /// The running mode.
    pub mode: RingMode,
    /// Where a console login goes: `ring` or `simulator`.
    pub login_target: RingMode,
    /// A Ring (or simulator) account is linked: a refresh token is saved. False
    /// in demo mode.
    pub linked: bool,
    /// The client's authentication state (`authenticated`, `unknown`,
    /// `reauth_required` with `reason`), as `GET /api/ring/auth`.
    #[serde(flatten)]
    pub auth: AuthState,
    /// The signed-in user, when known.
    pub account: Option<Profile>,
    /// Where the token came from; `None` when not linked.
    pub token_source: Option<TokenSource>,
    /// Whether `POST /api/auth/logout` would unlink.
    pub can_unlink: bool,
}

/// `POST /api/auth/login` that did not fail.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginAnswer {
    /// Linked; the daemon restarts with the account.
    Linked {
        /// The signed-in user, when Ring said.
        account: Option<Profile>,
    },
    /// Ring sent a verification code; send the same credentials plus `code`.
    #[serde(rename = "2fa_required")]
    CodeRequired {
        /// For the person (where the code was sent).
        message: String,
        /// `sms`, `email` or `totp`.
        tsv_state: String,
        /// Masked destination, when Ring says.
        phone: Option<String>,
    },
}

/// Why a console login or unlink failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Too many attempts from this client or overall.
    #[error("too many login attempts; try again in {} s", .retry_after.as_secs())]
    RateLimited {
        /// When a retry can succeed.
        retry_after: Duration,
    },
    /// The token comes from the environment or config file; a console unlink
    /// would be undone at the next start.
    #[error(
        "the Ring token comes from RING_REFRESH_TOKEN (or ring.refresh_token in the config file); \
         remove it there and restart ring-bridge to unlink"
    )]
    TokenFromEnvironment,
    /// No account is linked (demo mode, or no token saved).
    #[error("no Ring account is linked")]
    NotLinked,
    /// The state directory could not be opened for the login client.
    #[error("opening the state directory: {0}")]
    State(#[source] crate::ring::Error),
    /// Ring (or the simulator) said no or could not be reached.
    #[error(transparent)]
    Ring(#[from] crate::ring::Error),
}

impl ResultExt for AccountError {
    fn kind(&self) -> ErrorKind {
        match self {
            AccountError::RateLimited { .. } => ErrorKind::ResourceExhausted,
            AccountError::TokenFromEnvironment | AccountError::NotLinked => {
                ErrorKind::FailedPrecondition
            }
            AccountError::State(_) => ErrorKind::Internal,
            AccountError::Ring(e) => e.kind(),
        }
    }
}

/// What [`Account::new`] needs from the daemon's start-up.
pub struct AccountDeps {
    /// The running mode.
    pub mode: RingMode,
    /// The configuration (login target and state directory).
    pub cfg: Config,
    /// The running Ring client.
    pub client: RingClient,
    /// Console login attempts (outlives the run).
    pub limiter: Arc<LoginLimiter>,
    /// Ends the run after a login or unlink.
    pub restart: Restart,
}

struct ProfileCache {
    profile: Option<Profile>,
    /// Last failed fetch; no new one for a minute.
    failed_at: Option<Instant>,
}

struct Inner {
    deps: AccountDeps,
    /// One login or unlink at a time; holds the demo mode's login client.
    busy: Mutex<Option<RingClient>>,
    profile: Mutex<ProfileCache>,
}

/// The console's view of the Ring account; cheap to clone.
#[derive(Clone)]
pub struct Account {
    inner: Arc<Inner>,
}

/// Longest a status request waits for Ring's profile answer.
const PROFILE_TIMEOUT: Duration = Duration::from_secs(5);

impl Account {
    /// The account service of one daemon run.
    pub fn new(deps: AccountDeps) -> Self {
        Account {
            inner: Arc::new(Inner {
                deps,
                busy: Mutex::new(None),
                profile: Mutex::new(ProfileCache {
                    profile: None,
                    failed_at: None,
                }),
            }),
        }
    }

    /// Where the token in use comes from (a local file read; an unreadable
    /// token file counts as saved, like at start-up).
    async fn token_source(&self) -> Option<TokenSource> {
        let d = &self.inner.deps;
        if d.mode == RingMode::Demo {
            return None;
        }
        if d.cfg.ring.refresh_token.is_some() {
            return Some(TokenSource::Environment);
        }
        let dir = d.cfg.ring.state_dir.clone();
        let saved = tokio::task::spawn_blocking(move || TokenStore::has_saved_token(&dir))
            .await
            .unwrap_or(true);
        saved.then_some(TokenSource::StateDir)
    }

    /// The status for `GET /api/auth`. Asks Ring for the profile once per run
    /// (bounded wait; cached).
    pub async fn status(&self) -> AccountStatus {
        let d = &self.inner.deps;
        let auth = d.client.auth_state().borrow().clone();
        let token_source = self.token_source().await;
        let linked = token_source.is_some();
        let account = if linked && !matches!(auth, AuthState::ReauthRequired { .. }) {
            self.profile().await
        } else {
            None
        };
        AccountStatus {
            mode: d.mode,
            login_target: if d.cfg.ring.simulator_url.is_some() {
                RingMode::Simulator
            } else {
                RingMode::Ring
            },
            linked,
            auth,
            account,
            can_unlink: token_source == Some(TokenSource::StateDir),
            token_source,
        }
    }

    async fn profile(&self) -> Option<Profile> {
        let mut c = self.inner.profile.lock().await;
        if c.profile.is_none()
            && c.failed_at
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            match tokio::time::timeout(PROFILE_TIMEOUT, self.inner.deps.client.profile()).await {
                Ok(Ok(p)) => c.profile = Some(p),
                Ok(Err(e)) => {
                    tracing::debug!(err = %e, "cannot read the Ring profile");
                    c.failed_at = Some(Instant::now());
                }
                Err(_) => c.failed_at = Some(Instant::now()),
            }
        }
        c.profile.clone()
    }

    /// One login step from client `ip` (rate limited). On `Linked` the token is
    /// saved and a restart is requested; the answer still reaches the caller.
    pub async fn login(
        &self,
        ip: IpAddr,
        creds: &Credentials,
    ) -> Result<LoginAnswer, AccountError> {
        let d = &self.inner.deps;
        d.limiter
            .try_acquire(ip)
            .map_err(|retry_after| AccountError::RateLimited { retry_after })?;
        let mut busy = self.inner.busy.lock().await;
        let client = if d.mode == RingMode::Demo {
            if busy.is_none() {
                let cfg = d.cfg.clone();
                let c = tokio::task::spawn_blocking(move || login_client(&cfg))
                    .await
                    .map_err(|_| AccountError::Ring(crate::ring::ErrorInner::Cancelled.into()))?
                    .map_err(AccountError::State)?;
                *busy = Some(c);
            }
            busy.clone().expect("set above")
        } else {
            d.client.clone()
        };
        match login(&client, creds).await? {
            LoginStep::CodeRequired {
                message,
                tsv_state,
                phone,
            } => Ok(LoginAnswer::CodeRequired {
                message,
                tsv_state,
                phone,
            }),
            LoginStep::Linked => {
                let account = tokio::time::timeout(PROFILE_TIMEOUT, client.profile())
                    .await
                    .ok()
                    .and_then(Result::ok);
                tracing::info!(
                    account = account.as_ref().map_or("?", |p| p.email.as_str()),
                    "Ring account linked from the console; restarting with it"
                );
                d.restart.request(RestartReason::Linked);
                Ok(LoginAnswer::Linked { account })
            }
        }
    }

    /// Unlinks: deletes the saved token and restarts. Refused in demo mode and
    /// when the token comes from the environment or config file.
    pub async fn unlink(&self) -> Result<(), AccountError> {
        let d = &self.inner.deps;
        let _busy = self.inner.busy.lock().await;
        match self.token_source().await {
            None => return Err(AccountError::NotLinked),
            Some(TokenSource::Environment) => return Err(AccountError::TokenFromEnvironment),
            Some(TokenSource::StateDir) => {}
        }
        d.client.logout().await?;
        d.restart.request(RestartReason::Unlinked);
        Ok(())
    }
}
