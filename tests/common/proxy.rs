//! A tiny reverse proxy that behaves like Home Assistant's ingress: it serves
//! `/api/hassio_ingress/<token>/…` by forwarding to the upstream's `/…` with
//! `X-Ingress-Path: /api/hassio_ingress/<token>`, streaming answers (the log
//! stream is server-sent events). It records every forwarded request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// A running ingress proxy.
pub struct IngressProxy {
    addr: SocketAddr,
    token: String,
    seen: Arc<Mutex<Vec<String>>>,
    cancel: CancellationToken,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    prefix: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<String>>>,
}

impl IngressProxy {
    /// Starts the proxy on 127.0.0.1:0 in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> IngressProxy {
        let token = format!("t{:016x}", rand::random::<u64>());
        let prefix = format!("/api/hassio_ingress/{token}");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            prefix: prefix.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            seen: seen.clone(),
        };
        let app = Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        });
        IngressProxy {
            addr,
            token,
            seen,
            cancel,
        }
    }

    /// The console's URL through the proxy (with the trailing slash Home
    /// Assistant uses).
    pub fn console_url(&self) -> String {
        format!("http://{}/api/hassio_ingress/{}/", self.addr, self.token)
    }

    /// `METHOD /path?query` of every request forwarded so far (upstream paths).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for IngressProxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Headers that belong to one hop and are not forwarded.
const HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        if !HOP.contains(&k.as_str()) {
            to.append(k.clone(), v.clone());
        }
    }
}

async fn forward(State(s): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path == s.prefix {
        return Redirect::permanent(&format!("{}/", s.prefix)).into_response();
    }
    let Some(rest) = path.strip_prefix(&s.prefix) else {
        return (StatusCode::NOT_FOUND, "not an ingress path").into_response();
    };
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let target = format!("{}{rest}{query}", s.upstream);
    s.seen
        .lock()
        .unwrap()
        .push(format!("{} {rest}{query}", req.method()));

    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body").into_response(),
    };
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    headers.insert("x-ingress-path", s.prefix.parse().unwrap());
    let upstream = s
        .client
        .request(parts.method, &target)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut resp = Response::builder().status(upstream.status());
    if let Some(h) = resp.headers_mut() {
        copy_headers(upstream.headers(), h);
    }
    let stream = upstream
        .bytes_stream()
        .map(|r| r.map_err(std::io::Error::other));
    resp.body(Body::from_stream(stream)).unwrap()
}
