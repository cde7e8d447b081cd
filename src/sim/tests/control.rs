//! Simulator tests over real sockets: device commands and settings, faults, the
//! control API, tickets, token revocation and the live hooks.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::TestSim;
use crate::sim::*;

#[tokio::test]
async fn light_siren_settings_and_subscriptions() {
    let sim = TestSim::start().await;
    let put = reqwest::Method::PUT;
    assert_eq!(
        sim.call(
            put.clone(),
            "/clients_api/doorbots/10003/floodlight_light_on",
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        sim.call(
            put.clone(),
            "/clients_api/doorbots/10003/siren_on?duration=20",
            None
        )
        .await
        .0,
        200
    );
    let drive = sim.camera(10003).await;
    assert_eq!(drive["led_status"], "on");
    let secs = drive["siren_status"]["seconds_remaining"]
        .as_u64()
        .expect("secs");
    assert!((10..=20).contains(&secs), "{secs}");
    let st = sim.sim_state().await;
    assert_eq!(st["cameras"]["10003"]["light_on"], true);
    assert_eq!(st["cameras"]["10003"]["siren_on"], true);
    sim.call(put.clone(), "/clients_api/doorbots/10003/siren_off", None)
        .await;
    sim.call(
        put.clone(),
        "/clients_api/doorbots/10003/floodlight_light_off",
        None,
    )
    .await;
    let drive = sim.camera(10003).await;
    assert_eq!(
        (
            drive["led_status"].as_str(),
            drive["siren_status"]["seconds_remaining"].as_u64()
        ),
        (Some("off"), Some(0))
    );
    // No light on a doorbell; unknown and malformed ids.
    assert_eq!(
        sim.call(
            put.clone(),
            "/clients_api/doorbots/10001/floodlight_light_on",
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        sim.call(put.clone(), "/clients_api/doorbots/99/siren_on", None)
            .await
            .0,
        404
    );
    let (s, b) = sim
        .call(put.clone(), "/clients_api/doorbots/abc/siren_on", None)
        .await;
    assert_eq!(s, 400);
    assert!(b["error"].is_string());

    // Device settings (devices/v1) drive ring_devices' settings.
    let patch = json!({"motion_settings": {"motion_detection_enabled": false}});
    let (s, b) = sim
        .call(
            reqwest::Method::PATCH,
            "/devices/v1/devices/10001/settings",
            Some(patch),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["motion_settings"]["motion_detection_enabled"], false);
    assert_eq!(
        sim.camera(10001).await["settings"]["motion_detection_enabled"],
        false
    );
    let (_, b) = sim.get("/devices/v1/devices/10001/settings").await;
    assert_eq!(b["motion_settings"]["motion_detection_enabled"], false);
    let bad = json!({"motion_settings": {"motion_detection_enabled": "no"}});
    assert_eq!(
        sim.call(
            reqwest::Method::PATCH,
            "/devices/v1/devices/10001/settings",
            Some(bad)
        )
        .await
        .0,
        400
    );

    // Doorbot settings: JSON (dgreif) and form parameters (python).
    let body = json!({"doorbot": {"settings": {"motion_detection_enabled": true, "live_view_disabled": true}}});
    assert_eq!(
        sim.call(put.clone(), "/clients_api/doorbots/10001", Some(body))
            .await
            .0,
        200
    );
    let front = sim.camera(10001).await;
    assert_eq!(front["settings"]["motion_detection_enabled"], true);
    assert_eq!(front["settings"]["live_view_disabled"], true);
    assert!(
        sim.handle
            .state
            .camera(10001)
            .is_some_and(|c| c.live_view_disabled)
    );
    let path = "/clients_api/doorbots/10001?doorbot%5Bsettings%5D%5Bdoorbell_volume%5D=9";
    assert_eq!(sim.call(put, path, None).await.0, 200);
    assert_eq!(sim.camera(10001).await["settings"]["doorbell_volume"], 9);

    // Push subscriptions and token registration.
    let post = reqwest::Method::POST;
    assert_eq!(
        sim.call(post.clone(), "/clients_api/doorbots/10001/subscribe", None)
            .await
            .0,
        200
    );
    assert_eq!(
        sim.call(post, "/clients_api/doorbots/10001/motions_subscribe", None)
            .await
            .0,
        200
    );
    let front = sim.camera(10001).await;
    assert_eq!(
        (
            front["subscribed"].as_bool(),
            front["subscribed_motions"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let body = json!({"device": {"metadata": {"api_version": 11, "pn_service": "fcm"}, "os": "android", "push_notification_token": "fcm-1"}});
    assert_eq!(
        sim.call(reqwest::Method::PATCH, "/clients_api/device", Some(body))
            .await
            .0,
        204
    );
    assert_eq!(sim.sim_state().await["push_tokens"], 1);
    let (s, h) = sim.get("/clients_api/doorbots/10002/health").await;
    assert_eq!(s, 200);
    assert_eq!(h["device_health"]["battery_percentage"], 87);
    sim.stop().await;
}

#[tokio::test]
async fn faults_rate_limit_latency_and_offline() {
    let sim = TestSim::start().await;
    let fault = json!({"endpoint": "ring_devices", "status": 429, "count": 2, "retry_after_s": 7});
    assert_eq!(
        sim.control(reqwest::Method::POST, "/_sim/faults", Some(fault))
            .await
            .0,
        200
    );
    for _ in 0..2 {
        let resp = sim
            .http
            .get(sim.url("/clients_api/ring_devices"))
            .bearer_auth(&sim.token)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "7");
    }
    assert_eq!(
        sim.get("/clients_api/ring_devices").await.0,
        200,
        "fault used up"
    );
    assert_eq!(sim.sim_state().await["requests"]["ring_devices"], 3);

    let fault = json!({"endpoint": "session", "status": 404});
    sim.control(reqwest::Method::POST, "/_sim/faults", Some(fault))
        .await;
    let (s, b) = sim
        .call(
            reqwest::Method::POST,
            "/clients_api/session",
            Some(json!({"device": {"hardware_id": "x"}})),
        )
        .await;
    assert_eq!(s, 404);
    assert!(
        b["error"]
            .as_str()
            .is_some_and(|e| e.contains("test-hardware-id")),
        "{b}"
    );

    let fault = json!({"endpoint": "profile", "latency_ms": 80, "count": 1});
    sim.control(reqwest::Method::POST, "/_sim/faults", Some(fault))
        .await;
    let t = std::time::Instant::now();
    assert_eq!(sim.get("/clients_api/profile").await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(80));

    let off = json!({"camera_id": 10001, "offline": true});
    sim.control(reqwest::Method::POST, "/_sim/faults", Some(off))
        .await;
    assert_eq!(sim.camera(10001).await["alerts"]["connection"], "offline");
    assert!(!sim.handle.state.camera_online(10001));
    let (s, b) = sim.get("/snapshots/next/10001").await;
    assert_eq!(s, 404);
    assert_eq!(b["errors"], json!([7019]));

    for bad in [
        json!({"endpoint": "nope", "status": 500}),
        json!({"endpoint": "history", "status": 200}),
        json!({"endpoint": "history"}),
        json!({"camera_id": 1, "offline": true}),
        json!({"camera_id": 10001}),
        json!({"endpoint": "history", "status": 500, "bogus": 1}),
        json!("string"),
    ] {
        let (s, b) = sim
            .control(reqwest::Method::POST, "/_sim/faults", Some(bad.clone()))
            .await;
        assert!(
            s.is_client_error() && b["error"].is_string(),
            "{bad} -> {s} {b}"
        );
    }
    assert_eq!(
        sim.control(reqwest::Method::DELETE, "/_sim/faults", None)
            .await
            .0,
        200
    );
    assert_eq!(sim.camera(10001).await["alerts"]["connection"], "online");
    assert_eq!(
        sim.camera(10005).await["alerts"]["connection"],
        "offline",
        "seeded state stays"
    );
    assert_eq!(
        sim.call(
            reqwest::Method::POST,
            "/clients_api/session",
            Some(json!({"device": {"hardware_id": "x"}}))
        )
        .await
        .0,
        200
    );
    sim.stop().await;
}

#[tokio::test]
async fn control_motion_and_ding_reach_history_active_dings_and_events() {
    let sim = TestSim::start().await;
    let mut rx = sim.handle.state.events();
    let (s, b) = sim
        .control(
            reqwest::Method::POST,
            "/_sim/cameras/10001/ding",
            Some(json!({"person_detected": true})),
        )
        .await;
    assert_eq!(s, 200);
    let ding_id = b["ding_id"].as_u64().expect("id");
    assert_eq!(b["ding_id_str"], ding_id.to_string());
    let ev = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("in time")
        .expect("event");
    assert_eq!(
        (ev.kind, ev.camera_id, ev.ding_id, ev.person_detected),
        (SimEventKind::Ding, 10001, ding_id, true)
    );

    let (_, active) = sim.get("/clients_api/dings/active").await;
    let a = &active[0];
    assert_eq!(
        (a["id"].as_u64(), a["id_str"].as_str()),
        (Some(ding_id), Some(ding_id.to_string().as_str()))
    );
    assert_eq!(
        (
            a["kind"].as_str(),
            a["doorbot_id"].as_u64(),
            a["state"].as_str()
        ),
        (Some("ding"), Some(10001), Some("ringing"))
    );

    let (_, hist) = sim.get("/clients_api/doorbots/10001/history?limit=1").await;
    assert_eq!(hist[0]["id"].as_u64(), Some(ding_id));
    assert_eq!(hist[0]["recording"]["status"], "ready");

    // Motion without a body, with a delayed recording.
    let (s, b) = sim
        .control(
            reqwest::Method::POST,
            "/_sim/cameras/10003/motion",
            Some(json!({"ready_after_ms": 60_000})),
        )
        .await;
    assert_eq!(s, 200);
    let id = b["ding_id"].as_u64().expect("id");
    assert!(id > ding_id);
    let (_, evm) = sim.get("/evm/v2/history/devices/10003?limit=1").await;
    assert_eq!(evm["items"][0]["event_id"], id.to_string());
    assert_eq!(evm["items"][0]["recording_status"], "pending");
    let resp = sim
        .http
        .post(sim.url("/_sim/cameras/10004/motion"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "empty body is fine");

    assert_eq!(
        sim.control(reqwest::Method::POST, "/_sim/cameras/10003/ding", None)
            .await
            .0,
        400
    );
    assert_eq!(
        sim.control(reqwest::Method::POST, "/_sim/cameras/10005/motion", None)
            .await
            .0,
        409
    );
    assert_eq!(
        sim.control(reqwest::Method::POST, "/_sim/cameras/4/motion", None)
            .await
            .0,
        404
    );
    assert_eq!(
        sim.control(reqwest::Method::POST, "/_sim/cameras/x/motion", None)
            .await
            .0,
        400
    );
    let resp = sim
        .http
        .post(sim.url("/_sim/cameras/10001/motion"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    sim.stop().await;
}

#[tokio::test]
async fn tickets_revocation_live_hooks_and_unknown_paths() {
    let sim = TestSim::start().await;
    let (s, b) = sim
        .call(
            reqwest::Method::POST,
            "/api/v1/clap/ticket/request/signalsocket",
            None,
        )
        .await;
    assert_eq!(s, 200);
    let ticket = b["ticket"].as_str().expect("ticket").to_string();
    assert!(sim.handle.state.take_ticket(&ticket));
    assert!(!sim.handle.state.take_ticket(&ticket), "one use");
    assert!(!sim.handle.state.take_ticket("made-up"));
    let resp = sim
        .http
        .post(sim.url("/api/v1/clap/ticket/request/signalsocket"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);

    let st = sim.sim_state().await;
    assert_eq!(
        (
            st["live_sessions_active"].as_u64(),
            st["live_sessions_total"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(st["talkback"], json!({}));
    assert_eq!(st["requests"]["ticket"], 2);
    sim.handle.state.set_live_stats_provider(Box::new(|| {
        json!({"live_sessions_active": 1, "live_sessions_total": 4, "talkback": {"10001": {"packets": 50, "energy": 0.5}}})
    }));
    let st = sim.sim_state().await;
    assert_eq!(st["live_sessions_total"], 4);
    assert_eq!(st["talkback"]["10001"]["packets"], 50);
    assert!(st["token_generation"].is_u64());

    let (s, b) = sim.get("/no/such/path").await;
    assert_eq!(s, 404);
    assert_eq!(b["path"], "/no/such/path");
    let (s, b) = sim.get("/oauth/token").await;
    assert_eq!(s, 405);
    assert!(b["error"].is_string());

    // Revocation kills the access token and every refresh token.
    let rt = sim.handle.bootstrap_refresh_token();
    let (s, b) = sim
        .control(reqwest::Method::POST, "/_sim/tokens/revoke", None)
        .await;
    assert_eq!(s, 200);
    assert!(b["refresh_tokens_revoked"].as_u64() >= Some(1));
    assert_eq!(sim.get("/clients_api/ring_devices").await.0, 401);
    let (s, b) = sim
        .oauth_json(
            json!({"grant_type": "refresh_token", "refresh_token": rt}),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_grant"))
    );
    sim.stop().await;
}

#[tokio::test]
async fn extra_routes_are_merged() {
    let opts = SimOptions {
        extra_routes: Some(std::sync::Arc::new(|st: std::sync::Arc<SimState>| {
            axum::Router::new().route(
                "/_test/extra",
                axum::routing::get(move || {
                    let online = st.camera_online(10001);
                    async move { format!("live online={online}") }
                }),
            )
        })),
        ..SimOptions::default()
    };
    let sim = TestSim::start_with(opts).await;
    let text = sim
        .http
        .get(sim.url("/_test/extra"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert_eq!(text, "live online=true");
    assert_eq!(
        sim.handle.state.options().session_cap,
        Duration::from_secs(600)
    );
    assert_eq!(sim.handle.state.cameras().len(), 6);
    sim.stop().await;
}

#[tokio::test]
async fn cameras_are_added_and_removed_at_run_time() {
    let sim = TestSim::start().await;
    let post = reqwest::Method::POST;
    let (s, added) = sim
        .control(post.clone(), "/_sim/cameras", Some(json!({"name": "Shed"})))
        .await;
    assert_eq!(s, 200, "{added}");
    let id = added["id"].as_u64().expect("numeric id");
    assert!(id >= data::cameras::ADDED_FIRST_ID);
    let cam = sim.camera(id).await;
    assert_eq!(cam["description"], "Shed");
    assert_eq!(cam["device_id"], added["device_id"]);
    assert!(sim.handle.state.camera_online(id), "it can stream");
    let (_, second) = sim
        .control(post.clone(), "/_sim/cameras", Some(json!({"name": "Barn"})))
        .await;
    assert_eq!(second["id"].as_u64(), Some(id + 1));

    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(65)}),
        json!({}),
    ] {
        let (s, b) = sim.control(post.clone(), "/_sim/cameras", Some(bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    }

    let del = reqwest::Method::DELETE;
    let (s, b) = sim
        .control(del.clone(), &format!("/_sim/cameras/{id}"), None)
        .await;
    assert_eq!((s, b["removed"].as_u64()), (StatusCode::OK, Some(id)));
    let (_, devices) = sim.get("/clients_api/ring_devices").await;
    assert!(
        !devices.to_string().contains(&format!("\"id\":{id}")),
        "ring_devices no longer lists it"
    );
    assert!(!sim.handle.state.camera_online(id));
    let (s, _) = sim.control(del, &format!("/_sim/cameras/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
