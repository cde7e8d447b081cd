//! Simulator tests over real sockets, by topic: authentication, session and
//! `ring_devices` (`auth.rs`); device commands, faults and the control API
//! (`control.rs`); what real clients meet behind a proxy (`fidelity.rs`);
//! history, recordings and snapshots (`media.rs`). This file holds the shared
//! [`TestSim`] helper.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;

mod auth;
mod control;
mod fidelity;
mod media;

/// The hardware id [`TestSim`] logs in with and creates its session for.
pub(super) const HARDWARE_ID: &str = "test-hardware-id";

/// A simulator on 127.0.0.1:0 with a logged-in HTTP client (with a session when
/// the simulator requires one).
pub(super) struct TestSim {
    pub handle: SimHandle,
    pub cancel: CancellationToken,
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl TestSim {
    pub async fn start() -> TestSim {
        TestSim::start_with(SimOptions::default()).await
    }

    pub async fn start_with(opts: SimOptions) -> TestSim {
        let cancel = CancellationToken::new();
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let handle = Simulator::start(opts, addr, cancel.clone())
            .await
            .expect("start");
        let base = handle.url().to_string().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let mut sim = TestSim {
            handle,
            cancel,
            http,
            base,
            token: String::new(),
        };
        let rt = sim.handle.bootstrap_refresh_token();
        let (status, body) = sim
            .oauth_json(
                json!({"grant_type": "refresh_token", "refresh_token": rt}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        sim.token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        if sim.handle.state.options().require_session {
            let (s, b) = sim
                .call(
                    reqwest::Method::POST,
                    "/clients_api/session",
                    Some(json!({"device": {"hardware_id": HARDWARE_ID}})),
                )
                .await;
            assert_eq!(s, 200, "{b}");
        }
        sim
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A token request as dgreif sends it: JSON with `client_id` (added when
    /// `body` has none) and the `hardware_id` header.
    pub async fn oauth_json(&self, mut body: Value, code: Option<&str>) -> (StatusCode, Value) {
        if body.get("client_id").is_none() {
            body["client_id"] = json!("ring_official_android");
        }
        let mut req = self
            .http
            .post(self.url("/oauth/token"))
            .header("hardware_id", HARDWARE_ID)
            .json(&body);
        if let Some(c) = code {
            req = req.header("2fa-code", c);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Sends an authenticated request and returns status and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header("hardware_id", HARDWARE_ID);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// An authenticated GET, the raw response (bodies that are not JSON).
    pub async fn fetch(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .header("hardware_id", HARDWARE_ID)
            .send()
            .await
            .expect("send")
    }

    /// An unauthenticated control call.
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn sim_state(&self) -> Value {
        self.control(reqwest::Method::GET, "/_sim/state", None)
            .await
            .1
    }

    pub async fn camera(&self, id: u64) -> Value {
        let (_, devices) = self.get("/clients_api/ring_devices").await;
        ["doorbots", "authorized_doorbots", "stickup_cams"]
            .iter()
            .flat_map(|k| devices[*k].as_array().cloned().unwrap_or_default())
            .find(|c| c["id"] == json!(id))
            .expect("camera listed")
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        // Generous: under load the simulator may be mid-way through encoding a clip.
        tokio::time::timeout(Duration::from_secs(60), self.handle.join())
            .await
            .expect("stops in time")
            .expect("clean stop");
    }
}
