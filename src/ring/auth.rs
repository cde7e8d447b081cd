//! Ring OAuth (ring-api.md §1): the password grant with 2FA for interactive
//! login, the refresh grant with single-use token rotation, and the access token
//! every API call borrows.
//!
//! Invariants:
//! - one token operation at a time (a `tokio::sync::Mutex` held across the
//!   request): a single-use refresh token is never sent twice concurrently;
//! - the OAuth request, the save of the rotated token and the update of memory
//!   run in a spawned task, so dropping the caller's future (cancellation, a
//!   client timeout) cannot lose a token Ring already rotated;
//! - a rotated refresh token is saved before the access token that came with it
//!   is handed out;
//! - a rejected refresh token publishes [`AuthState::ReauthRequired`] and later
//!   calls fail fast without contacting Ring; the saved token is never deleted.
//!   While blocked, each call re-reads the state dir (a cheap local read), so a
//!   token saved by `ring-bridge auth` in another process is picked up.
//!
//! Never logs tokens, passwords or codes.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::{Mutex, OwnedMutexGuard, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::state::{StoredToken, TokenStore, fingerprint, unwrap_refresh_token};
use super::{AuthFailure, AuthState, Error, ErrorInner, RetryPolicy};
use crate::base::Secret;

/// `User-Agent` of every Ring call (ring-api.md §0).
pub(crate) const USER_AGENT: &str = "android:com.ringapp";
const CLIENT_ID: &str = "ring_official_android";

/// Why token use is blocked until something changes.
#[derive(Debug)]
enum Blocked {
    /// No token saved.
    NoToken,
    /// The token file is unreadable.
    Corrupt(Error),
    /// Ring rejected the token with this fingerprint.
    Rejected { fingerprint: String },
}

struct Access {
    token: Secret<String>,
    renew_at: Instant,
}

struct Tokens {
    refresh: Option<StoredToken>,
    /// `refresh` is saved on disk.
    persisted: bool,
    access: Option<Access>,
    blocked: Option<Blocked>,
}

/// The token answer of `POST oauth/token`.
struct TokenAnswer {
    access_token: String,
    expires_in: Option<f64>,
    refresh_token: Option<String>,
}

impl TokenAnswer {
    /// Parses the answer without ever echoing its content in an error.
    fn parse(body: &[u8]) -> Result<Self, Error> {
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            decode(format!(
                "not JSON ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let expires_in = match v.get("expires_in") {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Ok(TokenAnswer {
            access_token: text("access_token")
                .filter(|a| !a.is_empty())
                .ok_or_else(|| decode("no access_token".to_owned()))?,
            expires_in: expires_in.filter(|e: &f64| e.is_finite() && *e > 0.0),
            refresh_token: text("refresh_token"),
        })
    }
}

/// The error fields of an OAuth answer.
#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    tsv_state: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

struct Answer {
    status: StatusCode,
    www_authenticate: String,
    retry_after_s: Option<u64>,
    body: bytes::Bytes,
}

/// Shared authentication state; cheap to clone.
#[derive(Clone)]
pub(crate) struct Auth {
    http: reqwest::Client,
    oauth_url: Url,
    hardware_id: String,
    store: TokenStore,
    policy: RetryPolicy,
    cancel: CancellationToken,
    tokens: Arc<Mutex<Tokens>>,
    state: watch::Sender<AuthState>,
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    s.chars().take(200).collect()
}

fn reauth(reason: impl ToString) -> AuthState {
    AuthState::ReauthRequired {
        reason: reason.to_string(),
    }
}

impl Auth {
    /// Loads the saved token (if any) and starts in the matching state.
    pub(crate) fn new(
        http: reqwest::Client,
        oauth_url: Url,
        hardware_id: String,
        store: TokenStore,
        policy: RetryPolicy,
        cancel: CancellationToken,
    ) -> Result<Self, Error> {
        let (refresh, blocked, initial) = match store.load_token() {
            Ok(Some(t)) => (Some(t), None, AuthState::Unknown),
            Ok(None) => (
                None,
                Some(Blocked::NoToken),
                reauth(AuthFailure::NotLoggedIn),
            ),
            Err(e) if matches!(e.inner(), ErrorInner::StateCorrupt { .. }) => {
                let st = reauth(&e);
                (None, Some(Blocked::Corrupt(e)), st)
            }
            Err(e) => return Err(e),
        };
        Ok(Auth {
            http,
            oauth_url,
            hardware_id,
            store,
            policy,
            cancel,
            tokens: Arc::new(Mutex::new(Tokens {
                refresh,
                persisted: true,
                access: None,
                blocked,
            })),
            state: watch::channel(initial).0,
        })
    }

    /// A receiver of the authentication state.
    pub(crate) fn subscribe(&self) -> watch::Receiver<AuthState> {
        self.state.subscribe()
    }

    fn publish(&self, st: AuthState) {
        self.state.send_if_modified(|cur| {
            if *cur == st {
                false
            } else {
                *cur = st;
                true
            }
        });
    }

    /// A valid access token: the held one, or a freshly refreshed one.
    /// Fails fast with `Auth(NotLoggedIn | RefreshRejected)` or `StateCorrupt`
    /// while a person must log in.
    pub(crate) async fn access_token(&self) -> Result<Secret<String>, Error> {
        let mut g = self.tokens.clone().lock_owned().await;
        if g.blocked.is_some() {
            self.try_unblock(&mut g).await?;
        }
        if !g.persisted {
            self.persist(&mut g).await?;
        }
        if let Some(a) = &g.access
            && Instant::now() < a.renew_at
        {
            return Ok(a.token.clone());
        }
        let me = self.clone();
        let task = tokio::spawn(async move { me.refresh_locked(g).await });
        join(task).await
    }

    /// Forgets the access token `used` (Ring answered 401 to it), so the next
    /// [`Auth::access_token`] refreshes. A no-op if another caller already
    /// replaced it.
    pub(crate) async fn invalidate(&self, used: &Secret<String>) {
        let mut g = self.tokens.lock().await;
        if g.access.as_ref().is_some_and(|a| a.token == *used) {
            g.access = None;
        }
    }

    /// While blocked: re-reads the state dir and resumes with a token that was
    /// not rejected yet; otherwise fails fast, without contacting Ring.
    async fn try_unblock(&self, g: &mut Tokens) -> Result<(), Error> {
        let store = self.store.clone();
        let loaded = tokio::task::spawn_blocking(move || store.load_token())
            .await
            .map_err(|_| Error::from(ErrorInner::Cancelled))?;
        let fresh = match (loaded, &g.blocked) {
            (Ok(Some(t)), Some(Blocked::Rejected { fingerprint: fp }))
                if fingerprint(&t.refresh_token) == *fp =>
            {
                None
            }
            (Ok(Some(t)), _) => Some(t),
            (Ok(None), _) => None,
            (Err(e), _) => return Err(e),
        };
        match (fresh, &g.blocked) {
            (Some(t), _) => {
                tracing::info!("found a new Ring refresh token in the state directory");
                g.refresh = Some(t);
                g.persisted = true;
                g.access = None;
                g.blocked = None;
                Ok(())
            }
            (None, Some(Blocked::Rejected { .. })) => {
                Err(ErrorInner::Auth(AuthFailure::RefreshRejected).into())
            }
            (None, Some(Blocked::Corrupt(e))) => Err(e.clone()),
            (None, _) => Err(ErrorInner::Auth(AuthFailure::NotLoggedIn).into()),
        }
    }

    async fn persist(&self, g: &mut Tokens) -> Result<(), Error> {
        let Some(t) = g.refresh.clone() else {
            return Ok(());
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.save_token(&t))
            .await
            .map_err(|_| Error::from(ErrorInner::Cancelled))??;
        g.persisted = true;
        Ok(())
    }

    /// The refresh grant, run in its own task while holding the token lock.
    async fn refresh_locked(
        &self,
        mut g: OwnedMutexGuard<Tokens>,
    ) -> Result<Secret<String>, Error> {
        let Some(current) = g.refresh.clone() else {
            return Err(ErrorInner::Auth(AuthFailure::NotLoggedIn).into());
        };
        tracing::debug!("refreshing the Ring access token");
        let body = serde_json::json!({
            "client_id": CLIENT_ID,
            "scope": "client",
            "grant_type": "refresh_token",
            "refresh_token": current.refresh_token.expose(),
        });
        let ans = self.post_with_retries(&body, None).await?;
        if ans.status.is_success() {
            let tok = TokenAnswer::parse(&ans.body)?;
            return self.accept(&mut g, &current, tok, false).await;
        }
        let err: OAuthError = serde_json::from_slice(&ans.body).unwrap_or_default();
        let rejected =
            ans.status == StatusCode::UNAUTHORIZED || err.error.as_deref() == Some("invalid_grant");
        if rejected {
            tracing::warn!(
                status = ans.status.as_u16(),
                "Ring rejected the refresh token; log in again"
            );
            g.access = None;
            g.blocked = Some(Blocked::Rejected {
                fingerprint: fingerprint(&current.refresh_token),
            });
            self.publish(reauth(AuthFailure::RefreshRejected));
            return Err(ErrorInner::Auth(AuthFailure::RefreshRejected).into());
        }
        if ans.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ErrorInner::RateLimited {
                path: self.oauth_url.path().to_owned(),
                retry_after_s: ans.retry_after_s.unwrap_or(60),
            }
            .into());
        }
        Err(self.unexpected(&ans))
    }

    /// Saves the rotated token, then installs the access token.
    async fn accept(
        &self,
        g: &mut Tokens,
        current: &StoredToken,
        tok: TokenAnswer,
        fresh_login: bool,
    ) -> Result<Secret<String>, Error> {
        let access = Secret::new(tok.access_token);
        let ttl =
            Duration::from_secs_f64(tok.expires_in.unwrap_or(3600.0).clamp(0.0, 86400.0 * 365.0));
        g.access = Some(Access {
            token: access.clone(),
            renew_at: Instant::now() + ttl.saturating_sub(self.policy.token_renew_margin),
        });
        match tok.refresh_token.filter(|r| !r.is_empty()) {
            Some(r) if fresh_login || r != *current.refresh_token.expose() => {
                g.refresh = Some(current.successor(Secret::new(r)));
                g.persisted = false;
            }
            _ => {}
        }
        g.blocked = None;
        if !g.persisted {
            self.persist(g).await?;
            if let Some(t) = &g.refresh {
                tracing::info!(
                    generation = t.generation,
                    "saved the rotated Ring refresh token"
                );
            }
        }
        self.publish(AuthState::Authenticated);
        Ok(access)
    }

    fn unexpected(&self, ans: &Answer) -> Error {
        ErrorInner::Auth(AuthFailure::Unexpected {
            status: ans.status.as_u16(),
            body: snippet(&ans.body),
        })
        .into()
    }

    /// `POST oauth/token`, retrying connect errors and 5xx (where Ring cannot
    /// have rotated the token) with backoff. Timeouts are not retried.
    async fn post_with_retries(
        &self,
        body: &serde_json::Value,
        code: Option<&str>,
    ) -> Result<Answer, Error> {
        let mut attempt = 0;
        loop {
            let res = self.post(body, code).await;
            let retry = match &res {
                Err(e) => {
                    matches!(e.inner(), ErrorInner::Transport { source, .. } if source.is_connect())
                }
                Ok(a) => a.status.is_server_error(),
            };
            attempt += 1;
            if !retry || attempt >= self.policy.max_attempts {
                return res;
            }
            tokio::select! {
                () = self.cancel.cancelled() => return Err(ErrorInner::Cancelled.into()),
                () = tokio::time::sleep(self.policy.backoff(attempt - 1)) => {}
            }
        }
    }

    async fn post(&self, body: &serde_json::Value, code: Option<&str>) -> Result<Answer, Error> {
        let path = self.oauth_url.path().to_owned();
        let transport = |source| ErrorInner::Transport {
            path: path.clone(),
            source,
        };
        let resp = self
            .http
            .post(self.oauth_url.clone())
            .header("hardware_id", &self.hardware_id)
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .header("2fa-support", "true")
            .header("2fa-code", code.unwrap_or(""))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let www_authenticate = header(reqwest::header::WWW_AUTHENTICATE).unwrap_or_default();
        let retry_after_s =
            header(reqwest::header::RETRY_AFTER).and_then(|v| v.trim().parse().ok());
        tracing::debug!(path = %path, status = status.as_u16(), "Ring OAuth answered");
        let body = resp.bytes().await.map_err(transport)?;
        Ok(Answer {
            status,
            www_authenticate,
            retry_after_s,
            body,
        })
    }

    /// The password grant (ring-api.md §1.2). On success the refresh token is
    /// saved (replacing any saved one) and calls resume. Without `code` Ring
    /// usually answers [`ErrorInner::TwoFactorRequired`]; call again with the code.
    pub(crate) async fn login_password(
        &self,
        email: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<(), Error> {
        let body = serde_json::json!({
            "client_id": CLIENT_ID,
            "scope": "client",
            "grant_type": "password",
            "username": email,
            "password": password,
        });
        let code = code.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
        let me = self.clone();
        let task = tokio::spawn(async move {
            let mut g = me.tokens.clone().lock_owned().await;
            let ans = me.post_with_retries(&body, code.as_deref()).await?;
            if ans.status.is_success() {
                let tok = TokenAnswer::parse(&ans.body)?;
                if tok.refresh_token.as_deref().is_none_or(str::is_empty) {
                    return Err(decode("login answer has no refresh_token".to_owned()));
                }
                let base = me.base_for_new_token().await?;
                me.accept(&mut g, &base, tok, true).await?;
                tracing::info!("logged in to Ring");
                return Ok(());
            }
            Err(me.classify_login_failure(&ans))
        });
        join(task).await
    }

    /// Installs a refresh token obtained elsewhere (e.g. pasted into the console)
    /// and checks it with one refresh grant.
    pub(crate) async fn login_refresh_token(&self, token: Secret<String>) -> Result<(), Error> {
        let token = unwrap_refresh_token(&token);
        if token.expose().is_empty() {
            return Err(ErrorInner::Auth(AuthFailure::NotLoggedIn).into());
        }
        {
            let mut g = self.tokens.lock().await;
            let base = self.base_for_new_token().await?;
            g.refresh = Some(base.successor(token));
            g.persisted = false;
            g.access = None;
            g.blocked = None;
            self.persist(&mut g).await?;
        }
        self.access_token().await.map(|_| ())
    }

    /// Unlinks the account: deletes the saved token (under the token lock, so no
    /// refresh in flight can save it again), forgets the tokens in memory and
    /// publishes `ReauthRequired(NotLoggedIn)`. Returns whether a token was saved.
    pub(crate) async fn logout(&self) -> Result<bool, Error> {
        let mut g = self.tokens.lock().await;
        let store = self.store.clone();
        let existed = tokio::task::spawn_blocking(move || store.delete_token())
            .await
            .map_err(|_| Error::from(ErrorInner::Cancelled))??;
        g.refresh = None;
        g.persisted = true;
        g.access = None;
        g.blocked = Some(Blocked::NoToken);
        self.publish(reauth(AuthFailure::NotLoggedIn));
        tracing::info!("unlinked the Ring account: the saved refresh token is deleted");
        Ok(existed)
    }

    /// The saved token a new login replaces (for its generation and env seed).
    /// A corrupt file is moved aside first, never deleted.
    async fn base_for_new_token(&self) -> Result<StoredToken, Error> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || match store.load_token() {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Ok(StoredToken {
                refresh_token: Secret::default(),
                generation: 0,
                env_seed: None,
            }),
            Err(e) if matches!(e.inner(), ErrorInner::StateCorrupt { .. }) => {
                let aside = store.quarantine_token()?;
                tracing::warn!(aside = %aside.display(), "moved the corrupt token file aside");
                Ok(StoredToken {
                    refresh_token: Secret::default(),
                    generation: 0,
                    env_seed: None,
                })
            }
            Err(e) => Err(e),
        })
        .await
        .map_err(|_| Error::from(ErrorInner::Cancelled))?
    }

    fn classify_login_failure(&self, ans: &Answer) -> Error {
        let err: OAuthError = serde_json::from_slice(&ans.body).unwrap_or_default();
        let text = format!(
            "{} {}",
            err.error.as_deref().unwrap_or(""),
            err.error_description.as_deref().unwrap_or("")
        );
        if text.to_ascii_lowercase().contains("too many requests") {
            return ErrorInner::Auth(AuthFailure::TooManyCodeRequests).into();
        }
        match ans.status {
            StatusCode::PRECONDITION_FAILED => ErrorInner::TwoFactorRequired {
                tsv_state: err.tsv_state.unwrap_or_else(|| "sms".to_owned()),
                phone: err.phone,
            }
            .into(),
            StatusCode::BAD_REQUEST
                if text.contains("Verification Code")
                    || ans.www_authenticate.contains("Verification Code") =>
            {
                ErrorInner::Auth(AuthFailure::WrongCode).into()
            }
            StatusCode::UNAUTHORIZED => ErrorInner::Auth(AuthFailure::BadCredentials).into(),
            StatusCode::TOO_MANY_REQUESTS => ErrorInner::RateLimited {
                path: self.oauth_url.path().to_owned(),
                retry_after_s: ans.retry_after_s.unwrap_or(60),
            }
            .into(),
            _ => self.unexpected(ans),
        }
    }
}

fn decode(detail: String) -> Error {
    ErrorInner::Decode {
        path: "oauth/token".to_owned(),
        detail,
    }
    .into()
}

/// Awaits a token task. Dropping the returned future leaves the task running.
async fn join<T>(task: tokio::task::JoinHandle<Result<T, Error>>) -> Result<T, Error> {
    match task.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(ErrorInner::Cancelled.into()),
    }
}
