//! The request engine every Ring API call goes through: common headers
//! (ring-api.md §0), the session (§1.5), 401 → refresh once and retry (§8),
//! 404 naming our hardware id → new session, 404 `errors:[70xx]` → device
//! unavailable, 429 → `Retry-After`, 5xx/transport → bounded jittered backoff
//! (§1.6). Every wait is raced against the client's cancellation token.
//!
//! Logs method, path, camera and status at debug level; never headers.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use url::Url;

use super::auth::{Auth, USER_AGENT};
use super::{AuthFailure, Error, ErrorInner, RetryPolicy};

use crate::base::CameraId;

/// The body of a call.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// No body.
    Empty,
    /// JSON `null`: Ring wants it on PUTs without payload (ring-api.md §0).
    Null,
    /// A JSON document.
    Json(serde_json::Value),
}

/// One API call.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Body,
    pub(crate) accept: &'static str,
    pub(crate) camera: Option<CameraId>,
}

impl Call {
    /// A `GET` of JSON.
    pub(crate) fn get(url: Url) -> Self {
        Call {
            method: Method::GET,
            url,
            body: Body::Empty,
            accept: "application/json",
            camera: None,
        }
    }

    /// A call with `method` and `body`.
    pub(crate) fn with(method: Method, url: Url, body: Body) -> Self {
        Call {
            method,
            body,
            ..Call::get(url)
        }
    }

    /// Tags the call with a camera id (for logs).
    pub(crate) fn camera(mut self, id: CameraId) -> Self {
        self.camera = Some(id);
        self
    }
}

#[derive(Default)]
struct SessionState {
    created: Option<Instant>,
    generation: u64,
    /// No session creation before this (a long `Retry-After`).
    blocked_until: Option<Instant>,
}

/// Sends calls; cheap to clone.
#[derive(Clone)]
pub(crate) struct Engine {
    pub(crate) http: reqwest::Client,
    pub(crate) auth: Auth,
    pub(crate) session_url: Url,
    pub(crate) hardware_id: String,
    pub(crate) device_model: String,
    pub(crate) policy: RetryPolicy,
    pub(crate) cancel: CancellationToken,
    session: Arc<Mutex<SessionState>>,
}

fn status_err(path: &str, status: StatusCode, body: &[u8]) -> Error {
    ErrorInner::Status {
        path: path.to_owned(),
        status: status.as_u16(),
        body: String::from_utf8_lossy(body).chars().take(300).collect(),
    }
    .into()
}

/// A 70xx code from a 404 body `{"errors":[7019]}` (numbers, numeric strings or
/// `{code}` objects).
fn device_error_code(body: &serde_json::Value) -> Option<u32> {
    body.get("errors")?.as_array()?.iter().find_map(|e| {
        let n = match e {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            serde_json::Value::Object(o) => o.get("code").and_then(serde_json::Value::as_u64),
            _ => None,
        }?;
        u32::try_from(n).ok().filter(|c| (7000..8000).contains(c))
    })
}

impl Engine {
    pub(crate) fn new(
        http: reqwest::Client,
        auth: Auth,
        session_url: Url,
        hardware_id: String,
        device_model: String,
        policy: RetryPolicy,
        cancel: CancellationToken,
    ) -> Self {
        Engine {
            http,
            auth,
            session_url,
            hardware_id,
            device_model,
            policy,
            cancel,
            session: Arc::default(),
        }
    }

    /// Sleeps `d`, or fails with `Cancelled` when the client is cancelled.
    pub(crate) async fn sleep(&self, d: Duration) -> Result<(), Error> {
        tokio::select! {
            () = self.cancel.cancelled() => Err(ErrorInner::Cancelled.into()),
            () = tokio::time::sleep(d) => Ok(()),
        }
    }

    /// Sends `call` and returns the successful (2xx) response.
    pub(crate) async fn send(&self, call: &Call) -> Result<reqwest::Response, Error> {
        let span = tracing::debug_span!(
            "ring_call",
            method = %call.method,
            path = %call.url.path(),
            camera = call.camera.map(tracing::field::display),
            status = tracing::field::Empty,
        );
        self.send_inner(call, false).instrument(span).await
    }

    /// Sends `call` and parses its JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: &Call) -> Result<T, Error> {
        let path = call.url.path().to_owned();
        let resp = self.send(call).await?;
        let body = resp.bytes().await.map_err(|source| ErrorInner::Transport {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&body).map_err(|e| {
            ErrorInner::Decode {
                path,
                detail: e.to_string(),
            }
            .into()
        })
    }

    /// Makes sure a session younger than `session_max_age` exists; returns its
    /// generation.
    pub(crate) async fn ensure_session(&self) -> Result<u64, Error> {
        let mut s = self.session.lock().await;
        let now = Instant::now();
        if let Some(c) = s.created
            && now.duration_since(c) < self.policy.session_max_age
        {
            return Ok(s.generation);
        }
        if let Some(until) = s.blocked_until
            && now < until
        {
            return Err(ErrorInner::RateLimited {
                path: self.session_url.path().to_owned(),
                retry_after_s: until.duration_since(now).as_secs().max(1),
            }
            .into());
        }
        let call = Call::with(
            Method::POST,
            self.session_url.clone(),
            Body::Json(serde_json::json!({
                "device": {
                    "hardware_id": self.hardware_id,
                    "metadata": { "api_version": 11, "device_model": self.device_model },
                    "os": "android",
                }
            })),
        );
        let span = tracing::debug_span!("ring_session", path = %self.session_url.path(), status = tracing::field::Empty);
        // Boxed: send_inner calls ensure_session, which calls send_inner.
        match Box::pin(self.send_inner(&call, true))
            .instrument(span)
            .await
        {
            Ok(_) => {
                s.created = Some(Instant::now());
                s.generation += 1;
                s.blocked_until = None;
                tracing::debug!(generation = s.generation, "Ring session created");
                Ok(s.generation)
            }
            Err(e) => {
                if let ErrorInner::RateLimited { retry_after_s, .. } = e.inner() {
                    s.blocked_until = Some(Instant::now() + Duration::from_secs(*retry_after_s));
                }
                Err(e)
            }
        }
    }

    /// Forgets session `generation` so the next call creates a new one.
    pub(crate) async fn drop_session(&self, generation: Option<u64>) {
        let mut s = self.session.lock().await;
        if generation.is_none_or(|g| g == s.generation) {
            s.created = None;
        }
    }

    async fn send_inner(&self, call: &Call, is_session: bool) -> Result<reqwest::Response, Error> {
        let path = call.url.path();
        let mut attempt: u32 = 0;
        let mut auth_retried = false;
        let mut session_retried = false;
        loop {
            if self.cancel.is_cancelled() {
                return Err(ErrorInner::Cancelled.into());
            }
            let session = if is_session {
                None
            } else {
                Some(self.ensure_session().await?)
            };
            let token = self.auth.access_token().await?;
            let mut req = self
                .http
                .request(call.method.clone(), call.url.clone())
                .bearer_auth(token.expose())
                .header("hardware_id", &self.hardware_id)
                .header(reqwest::header::USER_AGENT, USER_AGENT)
                .header(reqwest::header::ACCEPT, call.accept);
            req = match &call.body {
                // Ring's clients send the JSON content type on every JSON call.
                Body::Empty if call.accept == "application/json" => {
                    req.header(reqwest::header::CONTENT_TYPE, "application/json")
                }
                Body::Empty => req,
                Body::Null => req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body("null"),
                Body::Json(v) => req.json(v),
            };
            let res = tokio::select! {
                () = self.cancel.cancelled() => return Err(ErrorInner::Cancelled.into()),
                r = req.send() => r,
            };
            attempt += 1;
            let more = attempt < self.policy.max_attempts;
            let resp = match res {
                Ok(r) => r,
                Err(source) => {
                    let transient =
                        source.is_connect() || source.is_timeout() || source.is_request();
                    if transient && more {
                        tracing::debug!(attempt, err = %source, "Ring call failed; retrying");
                        self.sleep(self.policy.backoff(attempt - 1)).await?;
                        continue;
                    }
                    return Err(ErrorInner::Transport {
                        path: path.to_owned(),
                        source,
                    }
                    .into());
                }
            };
            let status = resp.status();
            tracing::Span::current().record("status", status.as_u16());
            tracing::debug!(status = status.as_u16(), attempt, "Ring answered");
            if status.is_success() {
                return Ok(resp);
            }
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = resp.bytes().await.unwrap_or_default();
            match status {
                StatusCode::UNAUTHORIZED if !auth_retried => {
                    auth_retried = true;
                    attempt -= 1;
                    self.auth.invalidate(&token).await;
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(ErrorInner::Auth(AuthFailure::AccessRejected {
                        path: path.to_owned(),
                    })
                    .into());
                }
                StatusCode::NOT_FOUND => {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let names_us = v
                        .get("error")
                        .and_then(|e| e.as_str())
                        .is_some_and(|e| e.contains(&self.hardware_id));
                    if names_us && !is_session && !session_retried {
                        tracing::debug!("Ring lost our session; creating a new one");
                        session_retried = true;
                        attempt -= 1;
                        self.drop_session(session).await;
                        continue;
                    }
                    if let Some(code) = device_error_code(&v) {
                        return Err(ErrorInner::DeviceUnavailable {
                            path: path.to_owned(),
                            code,
                        }
                        .into());
                    }
                    return Err(status_err(path, status, &body));
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    let default = if is_session {
                        self.policy.session_retry_after_default
                    } else {
                        self.policy.retry_after_default
                    };
                    let wait = retry_after.map_or(default, Duration::from_secs)
                        + self.policy.retry_after_extra;
                    if more && wait <= self.policy.max_rate_limit_wait {
                        tracing::info!(wait_s = wait.as_secs_f32(), "Ring rate-limited; waiting");
                        self.sleep(wait).await?;
                        continue;
                    }
                    return Err(ErrorInner::RateLimited {
                        path: path.to_owned(),
                        retry_after_s: wait.as_secs_f64().ceil() as u64,
                    }
                    .into());
                }
                s if s.is_server_error() && more => {
                    tracing::debug!(attempt, "Ring server error; retrying");
                    self.sleep(self.policy.backoff(attempt - 1)).await?;
                }
                _ => return Err(status_err(path, status, &body)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_codes() {
        let v = serde_json::json!({"errors": [7019]});
        assert_eq!(device_error_code(&v), Some(7019));
        let v = serde_json::json!({"errors": ["7050"]});
        assert_eq!(device_error_code(&v), Some(7050));
        let v = serde_json::json!({"errors": [{"code": 7063}]});
        assert_eq!(device_error_code(&v), Some(7063));
        let v = serde_json::json!({"error": "not found"});
        assert_eq!(device_error_code(&v), None);
    }
}
