//! Simulator tests for what the real clients (ring-client-api, python-ring-doorbell)
//! meet behind a TLS reverse proxy: forwarded origins and `--public-url`,
//! `share/play` without `disable_redirect`, location groups, the requested
//! snapshot cycle, required sessions, OAuth strictness and the `/_sim/` switches.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{HARDWARE_ID, TestSim};
use crate::sim::*;

/// The id of a `ready` recording of camera 10001.
async fn ready_ding(sim: &TestSim) -> u64 {
    let (_, hist) = sim
        .get("/clients_api/doorbots/10001/history?limit=30")
        .await;
    hist.as_array()
        .expect("array")
        .iter()
        .find(|e| e["recording"]["status"] == "ready")
        .and_then(|e| e["id"].as_u64())
        .expect("a ready recording")
}

/// `GET path` as a proxy would forward it, with extra headers.
async fn get_with(sim: &TestSim, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut req = sim
        .http
        .get(sim.url(path))
        .bearer_auth(&sim.token)
        .header("hardware_id", HARDWARE_ID);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn urls_follow_the_proxy_and_share_play_answers_json() {
    let sim = TestSim::start().await;
    let ding = ready_ding(&sim).await;
    let path = format!("/clients_api/dings/{ding}/share/play");

    // A TLS proxy: Host is Ring's, X-Forwarded-Proto says https.
    let (s, b) = get_with(
        &sim,
        &path,
        &[("host", "api.ring.com"), ("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(s, 200, "share/play without disable_redirect is JSON: {b}");
    let url = b["url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!(
            "https://api.ring.com/_sim/media/recordings/{ding}.mp4?X-Amz-"
        )),
        "{url}"
    );
    // RFC 7239 Forwarded wins over X-Forwarded-*.
    let (_, b) = get_with(
        &sim,
        &format!("{path}?disable_redirect=true"),
        &[
            (
                "forwarded",
                "for=10.0.0.1;proto=https;host=\"ring.example:8443\"",
            ),
            ("x-forwarded-proto", "http"),
        ],
    )
    .await;
    assert!(
        b["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://ring.example:8443/_sim/media/")),
        "{b}"
    );
    // The evm timeline's signed URLs follow too; garbage is ignored.
    let (_, b) = get_with(
        &sim,
        "/evm/v2/history/devices/10001?limit=5",
        &[("x-forwarded-proto", "gopher"), ("x-forwarded-host", "a/b")],
    )
    .await;
    let media = b["items"][0]["visualizations"]["cloud_media_visualization"]["media"][0]["url"]
        .as_str()
        .expect("media url");
    assert!(
        media.starts_with(&format!("{}/_sim/media/", sim.base)),
        "{media}"
    );

    // `recording` keeps its redirect.
    let resp = sim
        .fetch(&format!("/clients_api/dings/{ding}/recording"))
        .await;
    assert_eq!(resp.status(), 302);
    sim.stop().await;

    // --public-url overrides everything, and its URLs still verify.
    let opts = SimOptions {
        public_url: Some("https://ring.example/".parse().expect("url")),
        ..SimOptions::default()
    };
    let sim = TestSim::start_with(opts).await;
    let ding = ready_ding(&sim).await;
    let (_, b) = get_with(
        &sim,
        &format!("/clients_api/dings/{ding}/share/play"),
        &[("x-forwarded-proto", "http")],
    )
    .await;
    let url = b["url"].as_str().expect("url");
    assert!(url.starts_with("https://ring.example/_sim/media/"), "{url}");
    let local = url.replace("https://ring.example", &sim.base);
    let mp4 = sim.http.get(&local).send().await.expect("send");
    assert_eq!(mp4.status(), 200);
    assert_eq!(&mp4.bytes().await.expect("bytes")[4..8], b"ftyp");
    sim.stop().await;
}

#[tokio::test]
async fn location_groups() {
    let sim = TestSim::start().await;
    let (s, b) = sim
        .get(&format!("/groups/v1/locations/{HOME_LOCATION_ID}/groups"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(b, json!({"device_groups": []}));
    assert_eq!(sim.get("/groups/v1/locations/nope/groups").await.0, 404);
    let r = sim
        .http
        .get(sim.url(&format!("/groups/v1/locations/{HOME_LOCATION_ID}/groups")));
    assert_eq!(r.send().await.expect("send").status(), 401);
    assert_eq!(sim.sim_state().await["requests"]["groups"], 3);
    sim.stop().await;
}

/// python-ring-doorbell's snapshot cycle: request, poll until newer, fetch.
#[tokio::test]
async fn requested_snapshots_arrive_after_the_delay() {
    let sim = TestSim::start_with(SimOptions {
        snapshot_delay: Duration::from_millis(300),
        ..SimOptions::default()
    })
    .await;
    let ts = |b: &Value| b["timestamps"][0]["timestamp"].as_i64().expect("timestamp");
    let ids = json!({"doorbot_ids": [10001]});
    let post = reqwest::Method::POST;
    let path = "/clients_api/snapshots/timestamps";
    let requested = clock::now_ms();
    let (s, first) = sim.call(post.clone(), path, Some(ids.clone())).await;
    assert_eq!(s, 200);
    assert!(ts(&first) < requested, "not captured yet: {first}");
    let fresh = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (_, b) = sim.call(post.clone(), path, Some(ids.clone())).await;
            if ts(&b) >= requested {
                return ts(&b);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the requested capture finishes");
    assert!(
        fresh >= requested + 300,
        "took the delay: {fresh} vs {requested}"
    );
    let img = sim.fetch("/clients_api/snapshots/image/10001").await;
    assert_eq!(img.status(), 200);
    assert_eq!(img.headers()["x-time-millis"], fresh.to_string());

    // Offline cameras never capture; the delay is switchable.
    let (_, b) = sim
        .call(post.clone(), path, Some(json!({"doorbot_ids": [10005]})))
        .await;
    let garage = ts(&b);
    let (s, b) = sim
        .control(
            post.clone(),
            "/_sim/snapshots",
            Some(json!({"delay_ms": 0})),
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!({"delay_ms": 0})));
    let (_, b) = sim
        .call(
            post.clone(),
            path,
            Some(json!({"doorbot_ids": [10005, 10003]})),
        )
        .await;
    assert_eq!(b["timestamps"][0]["timestamp"].as_i64(), Some(garage));
    assert!(b["timestamps"][1]["timestamp"].as_i64() >= Some(requested + 300));
    assert_eq!(
        sim.control(post, "/_sim/snapshots", Some(json!({"delay_ms": 60001})))
            .await
            .0,
        400
    );
    assert_eq!(sim.sim_state().await["snapshot_delay_ms"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn clients_api_needs_a_session_per_hardware_id() {
    let sim = TestSim::start().await;
    let as_hid = |hid: &'static str| {
        sim.http
            .get(sim.url("/clients_api/ring_devices"))
            .bearer_auth(&sim.token)
            .header("hardware_id", hid)
    };
    let resp = as_hid("new-hardware").send().await.expect("send");
    assert_eq!(resp.status(), 404);
    let b: Value = resp.json().await.expect("json");
    assert_eq!(
        b,
        json!({"error": "Session not found for hardware_id new-hardware"})
    );
    // No hardware_id at all: no session either.
    let resp = sim
        .http
        .get(sim.url("/clients_api/profile"))
        .bearer_auth(&sim.token)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    // A bad token is still 401 first.
    let resp = sim
        .http
        .get(sim.url("/clients_api/ring_devices"))
        .bearer_auth("made-up")
        .header("hardware_id", "new-hardware")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    // Paths outside clients_api need no session.
    let resp = sim
        .http
        .get(sim.url("/devices/v1/locations"))
        .bearer_auth(&sim.token)
        .header("hardware_id", "new-hardware")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    // Creating the session fixes it, as ring-client-api does.
    let (s, _) = sim
        .http
        .post(sim.url("/clients_api/session"))
        .bearer_auth(&sim.token)
        .header("hardware_id", "new-hardware")
        .json(&json!({"device": {"hardware_id": "new-hardware", "os": "android"}}))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .expect("send");
    assert_eq!(s, 200);
    assert_eq!(
        as_hid("new-hardware").send().await.expect("send").status(),
        200
    );

    // Ring purging sessions; then the rule switched off.
    let del = reqwest::Method::DELETE;
    let (_, b) = sim.control(del, "/_sim/sessions", None).await;
    assert_eq!(b, json!({"ended": 2}));
    assert_eq!(sim.get("/clients_api/profile").await.0, 404);
    let (_, b) = sim
        .control(
            reqwest::Method::POST,
            "/_sim/sessions",
            Some(json!({"required": false})),
        )
        .await;
    assert_eq!(b, json!({"required": false, "sessions": 0}));
    assert_eq!(sim.get("/clients_api/profile").await.0, 200);
    assert_eq!(as_hid("other").send().await.expect("send").status(), 200);
    let st = sim.sim_state().await;
    assert_eq!(st["sessions_required"], false);
    assert_eq!(st["sessions_created"], 2);
    sim.stop().await;
}

#[tokio::test]
async fn token_endpoint_refuses_what_ring_refuses() {
    let sim = TestSim::start().await;
    let post = |body: String, ctype: &'static str| {
        sim.http
            .post(sim.url("/oauth/token"))
            .header("hardware_id", HARDWARE_ID)
            .header("content-type", ctype)
            .body(body)
    };
    let grant = |client: &str, scope: &str| {
        json!({"grant_type": "password", "username": DEMO_EMAIL, "password": DEMO_PASSWORD,
               "client_id": client, "scope": scope})
        .to_string()
    };
    let status_error = |r: reqwest::Response| async move {
        let s = r.status().as_u16();
        let b: Value = r.json().await.expect("json");
        (s, b["error"].as_str().unwrap_or_default().to_owned())
    };
    // JSON as text/plain.
    let r = post(grant("ring_official_android", "client"), "text/plain")
        .send()
        .await
        .expect("send");
    assert_eq!(status_error(r).await, (400, "invalid_request".into()));
    // Unknown client, unknown scope.
    let r = post(grant("bogus", "client"), "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(status_error(r).await, (401, "invalid_client".into()));
    let r = post(grant("ring_official_android", "admin"), "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(status_error(r).await, (400, "invalid_scope".into()));
    // No client id anywhere.
    let r = post(
        json!({"grant_type": "password", "username": DEMO_EMAIL, "password": DEMO_PASSWORD})
            .to_string(),
        "application/json; charset=utf-8",
    )
    .send()
    .await
    .expect("send");
    assert_eq!(status_error(r).await, (401, "invalid_client".into()));
    // A wrong HTTP Basic client next to the right body one.
    let r = post(grant("ring_official_android", "client"), "application/json")
        .basic_auth("bogus", Some(""))
        .send()
        .await
        .expect("send");
    assert_eq!(status_error(r).await, (401, "invalid_client".into()));
    // Password grant without hardware_id.
    let r = sim
        .http
        .post(sim.url("/oauth/token"))
        .json(&json!({"grant_type": "password", "username": DEMO_EMAIL,
                      "password": DEMO_PASSWORD, "client_id": "ring_official_android"}))
        .send()
        .await
        .expect("send");
    assert_eq!(status_error(r).await, (400, "invalid_request".into()));
    // The well-formed request still gets its 412 (2FA).
    let r = post(grant("ring_official_android", "client"), "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 412);
    sim.stop().await;
}
