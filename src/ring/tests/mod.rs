//! Tests of [`RingClient`](super::RingClient) against small scripted Ring servers
//! (axum on `127.0.0.1:0`) that answer with `ring/testdata` bodies.
//!
//! Each [`Mock`] records every request and answers from a per-route queue of
//! scripted [`Reply`]s; the last reply of a queue repeats.

mod api_calls;
mod auth_flow;
mod sim_fidelity;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::state::{StoredToken, TokenStore};
use super::{RetryPolicy, RingClient, RingHosts, RingOptions};
use crate::base::Secret;

/// One scripted answer.
#[derive(Clone)]
pub(super) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    delay: Duration,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Reply {
    pub(super) fn json(status: u16, body: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: Bytes::copy_from_slice(body.as_bytes()),
            delay: Duration::ZERO,
            gate: None,
        }
    }

    pub(super) fn ok(body: &str) -> Self {
        Self::json(200, body)
    }

    pub(super) fn bytes(status: u16, content_type: &str, body: &[u8]) -> Self {
        Reply {
            status,
            headers: vec![("content-type", content_type.to_owned())],
            body: Bytes::copy_from_slice(body),
            delay: Duration::ZERO,
            gate: None,
        }
    }

    pub(super) fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.push((k, v.to_owned()));
        self
    }

    pub(super) fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Holds the answer until `gate` gets a permit.
    pub(super) fn gated(mut self, gate: &Arc<tokio::sync::Semaphore>) -> Self {
        self.gate = Some(gate.clone());
        self
    }

    /// A token answer with these tokens.
    pub(super) fn token(access: &str, refresh: &str, expires_in: u64) -> Self {
        Self::ok(
            &serde_json::json!({
                "access_token": access,
                "expires_in": expires_in,
                "refresh_token": refresh,
                "scope": "client",
                "token_type": "Bearer",
            })
            .to_string(),
        )
    }
}

/// One request the mock saw.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

impl Seen {
    pub(super) fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }

    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct MockState {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
}

/// A scripted Ring server.
pub(super) struct Mock {
    pub(super) base: Url,
    state: Arc<MockState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(st): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = format!("{method} {}", uri.path());
    st.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers,
        body,
    });
    let reply = {
        let mut script = st.script.lock().unwrap();
        match script.get_mut(&key) {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().cloned(),
            None => None,
        }
    };
    let Some(r) = reply else {
        return (StatusCode::NOT_FOUND, format!("no script for {key}")).into_response();
    };
    if let Some(g) = &r.gate {
        let _permit = g.acquire().await.unwrap();
    }
    if !r.delay.is_zero() {
        tokio::time::sleep(r.delay).await;
    }
    let mut resp = (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

impl Mock {
    /// Starts a server that already answers `POST clients_api/session`.
    pub(super) async fn start() -> Mock {
        let state = Arc::new(MockState::default());
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let m = Mock {
            base: Url::parse(&format!("http://{addr}/")).unwrap(),
            state,
            task,
        };
        m.script(
            "POST /clients_api/session",
            [Reply::ok(r#"{"profile":{"id":1,"email":"a@example.com"}}"#)],
        );
        m
    }

    /// Scripts the OAuth answers `token` and one device list (the usual start
    /// of a test that signs in and lists cameras).
    pub(super) fn sign_in_with(&self, token: impl IntoIterator<Item = Reply>) {
        self.script("POST /oauth/token", token);
        self.script("GET /clients_api/ring_devices", [Reply::ok(DEVICES)]);
    }

    /// Replaces the reply queue of `"METHOD /path"`.
    pub(super) fn script(&self, route: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .script
            .lock()
            .unwrap()
            .insert(route.to_owned(), replies.into_iter().collect());
    }

    /// Every request so far.
    pub(super) fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Requests to `path` so far.
    pub(super) fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    pub(super) fn count(&self, path: &str) -> usize {
        self.seen_at(path).len()
    }
}

/// A retry policy with test-sized delays (the `Retry-After` extra second is kept).
pub(super) fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        ..RetryPolicy::default()
    }
}

pub(super) fn options(mock: &Mock, dir: &Path) -> RingOptions {
    RingOptions {
        hosts: RingHosts::simulator(&mock.base),
        state_dir: dir.to_owned(),
        refresh_token_override: None,
        device_model: Some("ring-bridge-test".into()),
        http_timeout: Duration::from_secs(5),
        retry: fast_policy(),
        cancel: CancellationToken::new(),
    }
}

/// Saves refresh token `rt` (generation 1) in `dir`.
pub(super) fn seed(dir: &Path, rt: &str) {
    TokenStore::open(dir)
        .unwrap()
        .save_token(&StoredToken {
            refresh_token: Secret::new(rt.to_owned()),
            generation: 1,
            env_seed: None,
        })
        .unwrap();
}

/// A client over `mock` with refresh token `rt` saved in `dir`.
pub(super) fn client(mock: &Mock, dir: &Path, rt: &str) -> RingClient {
    seed(dir, rt);
    RingClient::new(options(mock, dir)).unwrap()
}

/// The saved refresh token.
pub(super) fn saved(dir: &Path) -> String {
    TokenStore::open(dir)
        .unwrap()
        .load_token()
        .unwrap()
        .unwrap()
        .refresh_token
        .expose()
        .clone()
}

/// Polls `cond` every 10 ms for up to 5 s.
pub(super) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) const DEVICES: &str = include_str!("../testdata/account_ring_devices.json");
