//! [`RingClient`] against the real simulator (over a socket) for what real Ring
//! does and the simulator now models: sessions required per hardware id (and
//! purged), `https` recording URLs on another host, and the requested snapshot
//! cycle when `snapshots/next` is refused.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{fast_policy, seed};
use crate::base::CameraId;
use crate::base::ResultExt as _;
use crate::ring::{RingApi, RingClient, RingHosts, RingOptions};
use crate::sim::{SimHandle, SimOptions, Simulator};

struct Harness {
    sim: SimHandle,
    cancel: CancellationToken,
    client: RingClient,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(opts: SimOptions) -> Harness {
        let cancel = CancellationToken::new();
        let sim = Simulator::start(opts, "127.0.0.1:0".parse().unwrap(), cancel.clone())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path(), &sim.bootstrap_refresh_token());
        let client = RingClient::new(RingOptions {
            hosts: RingHosts::simulator(&sim.url()),
            state_dir: dir.path().to_owned(),
            refresh_token_override: None,
            device_model: Some("ring-bridge-test".into()),
            http_timeout: Duration::from_secs(10),
            retry: fast_policy(),
            cancel: cancel.child_token(),
        })
        .unwrap();
        Harness {
            sim,
            cancel,
            client,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: serde_json::Value) {
        let r = self
            .http
            .request(
                method,
                format!("{}{}", self.sim.url(), path.trim_start_matches('/')),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }

    async fn sim_state(&self) -> serde_json::Value {
        let url = format!("{}_sim/state", self.sim.url());
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.sim.join().await.unwrap();
    }
}

#[tokio::test]
async fn sessions_are_created_and_recreated_when_ring_purges_them() {
    let h = Harness::start(SimOptions::default()).await;
    assert!(h.sim.state.options().require_session);
    let cams = h.client.cameras().await.unwrap();
    assert!(cams.iter().any(|c| c.id == CameraId::new(10001)));
    assert_eq!(h.sim_state().await["sessions_created"], 1);
    // Ring forgets the session: the next clients API call answers 404 naming
    // our hardware id; the client makes a new session and retries once.
    h.control(reqwest::Method::DELETE, "/_sim/sessions", json!(null))
        .await;
    let health = h.client.cameras().await.unwrap();
    assert_eq!(health.len(), cams.len());
    let st = h.sim_state().await;
    assert_eq!(st["sessions_created"], 2);
    assert_eq!(st["requests"]["ring_devices"], 3, "one failed, one retried");
    h.stop().await;
}

#[tokio::test]
async fn recording_urls_may_be_https_on_another_host() {
    let h = Harness::start(SimOptions {
        public_url: Some("https://media.ring.example:8443/".parse().unwrap()),
        ..SimOptions::default()
    })
    .await;
    let page = h
        .client
        .history(
            CameraId::new(10001),
            crate::ring::HistoryQuery {
                limit: 10,
                older_than: None,
            },
        )
        .await
        .unwrap();
    let ev = page
        .events
        .iter()
        .find(|e| e.playable())
        .expect("a playable event");
    let url = h.client.recording_url(&ev.id).await.unwrap();
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.host_str(), Some("media.ring.example"));
    assert_eq!(url.port(), Some(8443));
    // The signed URL is intact: served on the simulator's own origin it is the MP4.
    let local = format!(
        "{}{}?{}",
        h.sim.url(),
        url.path().trim_start_matches('/'),
        url.query().unwrap()
    );
    let mp4 = h.http.get(local).send().await.unwrap();
    assert_eq!(mp4.status(), 200);
    assert_eq!(&mp4.bytes().await.unwrap()[4..8], b"ftyp");
    h.stop().await;
}

#[tokio::test]
async fn refused_snapshot_host_falls_back_to_the_request_cycle() {
    let h = Harness::start(SimOptions {
        snapshot_delay: Duration::from_millis(400),
        ..SimOptions::default()
    })
    .await;
    // app-snaps refuses once (`snapshots/next` is the first snapshot call).
    h.control(
        reqwest::Method::POST,
        "/_sim/faults",
        json!({"endpoint": "snapshot", "status": 403, "count": 1}),
    )
    .await;
    let requested = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let snap = h.client.snapshot(CameraId::new(10001)).await.unwrap();
    assert!(snap.jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
    let at = snap.captured_at_ms.expect("capture time");
    assert!(
        at >= requested + 400,
        "a fresh capture ({at}), not the old one (requested at {requested})"
    );
    // next (403), timestamps (request), at least one poll, image.
    let n = h.sim_state().await["requests"]["snapshot"]
        .as_u64()
        .unwrap();
    assert!(n >= 4, "{n} snapshot requests");
    // An offline camera fails at once, without the cycle.
    let e = h.client.snapshot(CameraId::new(10005)).await.unwrap_err();
    assert_eq!(e.kind(), crate::base::ErrorKind::Unavailable, "{e}");
    assert_eq!(
        h.sim_state().await["requests"]["snapshot"].as_u64(),
        Some(n + 1)
    );
    h.stop().await;
}
