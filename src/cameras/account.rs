//! [`Account`]: the linked Ring account as the console sees it (`/api/auth`):
//! its status, a login with 2FA (through [`super::login`], the same path as
//! `ring-bridge auth`) and unlinking. A successful login or unlink is announced
//! as an [`AccountChange`] on a `watch` channel; the daemon (`app`) turns it
//! into an in-process restart so every component starts over with the new
//! account. This module knows nothing of the configuration file or of restarts:
//! it takes [`AccountOptions`].
//!
//! Which client logs in: in Ring and simulator mode the running client, so the
//! token lock serializes the login with refreshes in flight (a rotation of the
//! old token can never overwrite the new one); in demo mode a separate client
//! built from [`AccountOptions::login`] (the configured state directory and the
//! real Ring, or the user's simulator), created on the first login.
//!
//! Never stores or logs the password or the code.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use super::login::{Credentials, LoginStep, login, login_client};
use crate::base::login_limit::LoginLimiter;
use crate::base::{ErrorKind, ResultExt};
use crate::ring::client::RingOptions;
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

/// A console login or unlink that took effect: the daemon should start over
/// with the new account state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountChange {
    /// A Ring account was linked (its token is saved).
    Linked,
    /// The Ring account was unlinked (its token is deleted).
    Unlinked,
}

/// How the account service behaves (the daemon maps its configuration here).
#[derive(Clone, Debug)]
pub struct AccountOptions {
    /// The running mode.
    pub mode: RingMode,
    /// Where a console login goes: [`RingMode::Ring`] or [`RingMode::Simulator`].
    pub login_target: RingMode,
    /// The refresh token comes from the environment or the config file
    /// (`RING_REFRESH_TOKEN`, `ring.refresh_token`): unlinking is refused.
    pub token_from_env: bool,
    /// The login client of demo mode: the login target's hosts, the configured
    /// state directory (never the demo one), the device name. Its `state_dir`
    /// is also where a saved token is looked for.
    pub login: RingOptions,
}

/// What [`Account`] holds.
struct Deps {
    opts: AccountOptions,
    client: RingClient,
    limiter: Arc<LoginLimiter>,
    changes: watch::Sender<Option<AccountChange>>,
}

struct ProfileCache {
    profile: Option<Profile>,
    /// Last failed fetch; no new one for a minute.
    failed_at: Option<Instant>,
}

struct Inner {
    deps: Deps,
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
    /// The account service of one daemon run over the running `client`,
    /// limiting console logins with `limiter` (which outlives the run). The
    /// receiver turns `Some` at the first login or unlink that took effect.
    pub fn new(
        opts: AccountOptions,
        client: RingClient,
        limiter: Arc<LoginLimiter>,
    ) -> (Self, watch::Receiver<Option<AccountChange>>) {
        let (changes, rx) = watch::channel(None);
        let account = Account {
            inner: Arc::new(Inner {
                deps: Deps {
                    opts,
                    client,
                    limiter,
                    changes,
                },
                busy: Mutex::new(None),
                profile: Mutex::new(ProfileCache {
                    profile: None,
                    failed_at: None,
                }),
            }),
        };
        (account, rx)
    }

    /// Where the token in use comes from (a local file read; an unreadable
    /// token file counts as saved, like at start-up).
    async fn token_source(&self) -> Option<TokenSource> {
        let o = &self.inner.deps.opts;
        if o.mode == RingMode::Demo {
            return None;
        }
        if o.token_from_env {
            return Some(TokenSource::Environment);
        }
        let dir = o.login.state_dir.clone();
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
            mode: d.opts.mode,
            login_target: d.opts.login_target,
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
    /// saved and [`AccountChange::Linked`] announced; the answer still reaches
    /// the caller.
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
        let client = if d.opts.mode == RingMode::Demo {
            if busy.is_none() {
                let opts = d.opts.login.clone();
                let c = tokio::task::spawn_blocking(move || login_client(&opts))
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
                d.changes.send_replace(Some(AccountChange::Linked));
                Ok(LoginAnswer::Linked { account })
            }
        }
    }

    /// Unlinks: deletes the saved token and announces
    /// [`AccountChange::Unlinked`]. Refused in demo mode and when the token
    /// comes from the environment or config file.
    pub async fn unlink(&self) -> Result<(), AccountError> {
        let d = &self.inner.deps;
        let _busy = self.inner.busy.lock().await;
        match self.token_source().await {
            None => return Err(AccountError::NotLinked),
            Some(TokenSource::Environment) => return Err(AccountError::TokenFromEnvironment),
            Some(TokenSource::StateDir) => {}
        }
        d.client.logout().await?;
        d.changes.send_replace(Some(AccountChange::Unlinked));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::login_limit::LoginLimits;
    use crate::ring::RingHosts;

    fn account(dir: &std::path::Path, mode: RingMode, token_from_env: bool) -> Account {
        let url = url::Url::parse("http://127.0.0.1:9/").expect("static URL");
        let login = RingOptions::new(RingHosts::simulator(&url), dir.to_path_buf());
        let client = RingClient::new(login.clone()).expect("client on a temp dir");
        let opts = AccountOptions {
            mode,
            login_target: RingMode::Simulator,
            token_from_env,
            login,
        };
        let limiter = Arc::new(LoginLimiter::new(LoginLimits::default()));
        let (account, changes) = Account::new(opts, client, limiter);
        assert_eq!(*changes.borrow(), None);
        account
    }

    #[tokio::test]
    async fn status_and_unlink_follow_the_options() {
        let dir = tempfile::tempdir().expect("temp dir");
        let demo = account(dir.path(), RingMode::Demo, false);
        let st = demo.status().await;
        assert_eq!(
            (st.mode, st.login_target),
            (RingMode::Demo, RingMode::Simulator)
        );
        assert!(!st.linked && !st.can_unlink);
        assert!(matches!(demo.unlink().await, Err(AccountError::NotLinked)));

        let env = account(dir.path(), RingMode::Ring, true);
        assert_eq!(env.token_source().await, Some(TokenSource::Environment));
        assert!(matches!(
            env.unlink().await,
            Err(AccountError::TokenFromEnvironment)
        ));

        let plain = account(dir.path(), RingMode::Simulator, false);
        assert_eq!(plain.token_source().await, None);
        assert!(matches!(plain.unlink().await, Err(AccountError::NotLinked)));
    }
}
