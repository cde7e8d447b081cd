//! The REST API of the real daemon binary against the in-process simulator.

mod common;

use std::time::Duration;

use common::{Daemon, Sim, base_env, get_json};

async fn daemon_on_sim(sim: &Sim, state: &std::path::Path) -> Daemon {
    let mut env = base_env(state);
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    // The camera list loads in the background; wait for it.
    let ok = common::wait_for(Duration::from_secs(30), || async {
        let (st, _) = get_json(&d.url("/api/ring/cameras")).await;
        (st == 200).then_some(())
    })
    .await;
    assert!(ok.is_some(), "cameras never loaded:\n{}", d.log_text());
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn cameras_capabilities_history_recordings_snapshot() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on_sim(&sim, state.path()).await;

    // Cameras: every array, not the chime; the fields the contract names.
    let (st, cams) = get_json(&d.url("/api/ring/cameras")).await;
    assert_eq!(st, 200);
    let cams = cams.as_array().unwrap();
    let ids: Vec<u64> = cams.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 6, "{ids:?}");
    for want in 10001..=10006 {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    let by_id = |id: u64| cams.iter().find(|c| c["id"] == id).unwrap();
    let front = by_id(10001);
    for key in [
        "id",
        "device_id",
        "name",
        "kind",
        "location_id",
        "online",
        "doorbell",
        "battery",
        "has_light",
        "has_siren",
    ] {
        assert!(front.get(key).is_some(), "field {key} missing: {front}");
    }
    assert_eq!(front["device_id"], "a4c1380f0001");
    assert_eq!(front["doorbell"], true);
    assert_eq!(front["battery"], serde_json::Value::Null);
    assert_eq!(by_id(10002)["battery"], 87);
    assert_eq!(by_id(10003)["has_light"], true);
    assert_eq!(by_id(10003)["has_siren"], true);
    assert_eq!(by_id(10005)["online"], false);
    assert_eq!(by_id(10005)["battery"], 41);
    assert_eq!(by_id(10006)["doorbell"], true);

    // The same camera by numeric id, device id and slug.
    for key in ["10001", "a4c1380f0001", "front-door"] {
        let (st, c) = get_json(&d.url(&format!("/api/ring/cameras/{key}"))).await;
        assert_eq!((st, c["id"].as_u64()), (200, Some(10001)), "{key}");
    }

    // Capabilities.
    let (st, caps) = get_json(&d.url("/api/ring/cameras/10003/capabilities")).await;
    assert_eq!(st, 200);
    assert_eq!(
        (caps["light"].as_bool(), caps["siren"].as_bool()),
        (Some(true), Some(true))
    );
    let (_, caps) = get_json(&d.url("/api/ring/cameras/10005/capabilities")).await;
    assert_eq!(caps["live_view"], false);
    assert!(caps["reason"].as_str().unwrap().contains("offline"));

    // History with pagination: two pages, no overlap, newest first.
    let (st, p1) = get_json(&d.url("/api/ring/cameras/10001/history?limit=10")).await;
    assert_eq!(st, 200, "{p1}");
    let ev1 = p1["events"].as_array().unwrap();
    assert_eq!(ev1.len(), 10);
    let next = p1["next"].as_str().expect("a next cursor");
    let (st, p2) = get_json(&d.url(&format!(
        "/api/ring/cameras/10001/history?limit=10&older_than={}",
        urlencode(next)
    )))
    .await;
    assert_eq!(st, 200, "{p2}");
    let ev2 = p2["events"].as_array().unwrap();
    assert_eq!(ev2.len(), 10);
    for e in ev2 {
        assert!(
            !ev1.iter().any(|x| x["id"] == e["id"]),
            "page overlap at {}",
            e["id"]
        );
    }
    assert!(ev1[0]["created_at"].as_str().unwrap() >= ev2[0]["created_at"].as_str().unwrap());
    let ding_id = ev1
        .iter()
        .chain(ev2)
        .find(|e| e["playable"] == true)
        .expect("a playable event")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ding_id.len() >= 18, "64-bit ids kept as strings: {ding_id}");

    // Recording: 302 to a real MP4.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(d.url(&format!("/api/ring/cameras/10001/recordings/{ding_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let mp4 = reqwest::get(&loc).await.unwrap().bytes().await.unwrap();
    assert_eq!(&mp4[4..8], b"ftyp", "an MP4 file");

    // Snapshot: a real JPEG.
    let r = reqwest::get(d.url("/api/ring/cameras/front-door/snapshot"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let jpeg = r.bytes().await.unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);

    // Health and metrics.
    let (st, h) = get_json(&d.url("/healthz")).await;
    assert_eq!(st, 200);
    assert_eq!(h["ring"]["auth"]["state"], "authenticated");
    let m = reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("ringbridge_cameras 6"), "{m}");
    assert!(m.contains("ringbridge_http_requests_total{"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_clear_errors_and_daemon_keeps_serving() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on_sim(&sim, state.path()).await;

    let cases = [
        ("/api/ring/cameras/99999", 404, "not_found"),
        ("/api/ring/cameras/no%20such", 400, "invalid_argument"),
        (
            "/api/ring/cameras/10001/history?limit=0",
            400,
            "invalid_argument",
        ),
        (
            "/api/ring/cameras/10001/history?limit=201",
            400,
            "invalid_argument",
        ),
        (
            "/api/ring/cameras/10001/history?limit=abc",
            400,
            "invalid_argument",
        ),
        (
            "/api/ring/cameras/10001/recordings/not-a-number",
            400,
            "invalid_argument",
        ),
        ("/api/ring/cameras/10001/recordings/1", 404, "not_found"),
        (
            "/api/ring/cameras/10005/snapshot",
            409,
            "failed_precondition",
        ),
        ("/api/nothing-here", 404, "not_found"),
    ];
    for (path, status, kind) in cases {
        let (st, body) = get_json(&d.url(path)).await;
        assert_eq!(st, status, "{path}: {body}");
        assert_eq!(body["error"], kind, "{path}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
    }
    let (st, body) = get_json(&d.url("/api/ring/cameras/10001/history?limit=0")).await;
    assert!(
        body["message"].as_str().unwrap().contains("1..=200"),
        "{st} {body}"
    );

    // Ring failing: 5xx from the simulator → 502 from us; then it recovers.
    let r = sim
        .post(
            "faults",
            serde_json::json!({"endpoint": "history", "status": 503}),
        )
        .await;
    assert!(r.status().is_success());
    let (st, body) = get_json(&d.url("/api/ring/cameras/10001/history?limit=5")).await;
    assert!(st == 502 || st == 503, "{st} {body}");
    reqwest::Client::new()
        .delete(format!("{}_sim/faults", sim.url()))
        .send()
        .await
        .unwrap();
    let (st, _) = get_json(&d.url("/api/ring/cameras/10001/history?limit=5")).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_retry_after_is_honoured() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on_sim(&sim, state.path()).await;
    // A recording URL: nothing in the background asks for one (history is
    // polled by the event fallback, which could eat a one-shot fault).
    let (st, history) = get_json(&d.url("/api/ring/cameras/10002/history?limit=10")).await;
    assert_eq!(st, 200, "{history}");
    let event = history["events"]
        .as_array()
        .and_then(|evs| evs.iter().find(|e| e["recording_path"].is_string()))
        .unwrap_or_else(|| panic!("no playable event: {history}"));
    let path = event["recording_path"].as_str().unwrap().to_owned();
    sim.post(
        "faults",
        serde_json::json!({"endpoint": "recording", "status": 429, "retry_after_s": 1, "count": 1}),
    )
    .await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let t0 = std::time::Instant::now();
    let r = no_redirect.get(d.url(&path)).send().await.unwrap();
    let waited = t0.elapsed();
    assert_eq!(r.status(), 302, "retried after Retry-After");
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?}"
    );
    let s = sim.state().await;
    assert!(s["requests"]["recording"].as_u64().unwrap() >= 2, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ring_unreachable_answers_502_and_health_stays_up() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.push((
        "RING_SIMULATOR_URL".into(),
        format!("http://127.0.0.1:{port}/"),
    ));
    env.push(("RING_REFRESH_TOKEN".into(), "some-token".into()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let got = common::wait_for(Duration::from_secs(30), || async {
        let (st, body) = get_json(&d.url("/api/ring/cameras")).await;
        (st == 502 || st == 503 && body["error"] == "unavailable").then_some((st, body))
    })
    .await;
    let (st, body) = got.expect("cameras answers 502 while Ring is unreachable");
    assert_eq!(body["error"], "unavailable", "{st} {body}");
    let (st, _) = get_json(&d.url("/healthz")).await;
    assert_eq!(st, 200);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
