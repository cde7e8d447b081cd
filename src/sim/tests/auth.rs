//! Simulator tests over real sockets: authentication (password, 2FA, refresh
//! rotation, bearer expiry), the clients API session and `ring_devices`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{HARDWARE_ID, TestSim};
use crate::sim::*;
#[tokio::test]
async fn password_and_2fa_flow() {
    let sim = TestSim::start().await;
    let creds = json!({"grant_type": "password", "username": DEMO_EMAIL, "password": DEMO_PASSWORD,
                       "client_id": "ring_official_android", "scope": "client"});
    let (s, b) = sim.oauth_json(creds.clone(), None).await;
    assert_eq!(s, 412);
    assert_eq!(b["tsv_state"], "sms");
    assert_eq!(b["phone"], "+1xxxxxx89");
    assert_eq!(b["next_time_in_secs"], 60);
    // dgreif sends an empty code header before the user typed one.
    assert_eq!(sim.oauth_json(creds.clone(), Some("")).await.0, 412);

    let resp = sim
        .http
        .post(sim.url("/oauth/token"))
        .header("hardware_id", HARDWARE_ID)
        .header("2fa-code", "000000")
        .json(&creds)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(www.contains("Verification Code"), "{www}");
    let b: Value = resp.json().await.expect("json");
    assert_eq!(b["error"], "Verification Code is invalid or expired");

    let mut bad = creds.clone();
    bad["password"] = json!("nope");
    let (s, b) = sim.oauth_json(bad, Some(DEMO_2FA_CODE)).await;
    assert_eq!(s, 401);
    assert_eq!(
        b,
        json!({"error": "access_denied", "error_description": "invalid user credentials"})
    );

    let (s, b) = sim.oauth_json(creds, Some(DEMO_2FA_CODE)).await;
    assert_eq!(s, 200);
    assert_eq!(b["scope"], "client");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 3600);
    assert!(b["refresh_token"].as_str().is_some_and(|t| t.len() > 20));

    // python: form-urlencoded with HTTP Basic client auth.
    let resp = sim
        .http
        .post(sim.url("/oauth/token"))
        .basic_auth("ring_official_android", Some(""))
        .header("hardware_id", HARDWARE_ID)
        .header("2fa-code", DEMO_2FA_CODE)
        .form(&[
            ("grant_type", "password"),
            ("username", DEMO_EMAIL),
            ("password", DEMO_PASSWORD),
            ("client_id", "ring_official_android"),
            ("scope", "client"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    sim.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_die_after_use() {
    let sim = TestSim::start().await;
    let gen0 = sim.sim_state().await["token_generation"]
        .as_u64()
        .expect("gen");
    let (_, first) = sim
        .oauth_json(
            json!({"grant_type": "password", "username": DEMO_EMAIL, "password": DEMO_PASSWORD}),
            Some(DEMO_2FA_CODE),
        )
        .await;
    let rt1 = first["refresh_token"].as_str().expect("rt").to_string();
    let (s, second) = sim
        .oauth_json(
            json!({"grant_type": "refresh_token", "refresh_token": rt1}),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let rt2 = second["refresh_token"].as_str().expect("rt").to_string();
    assert_ne!(rt1, rt2);
    let (s, b) = sim
        .oauth_json(
            json!({"grant_type": "refresh_token", "refresh_token": rt1}),
            None,
        )
        .await;
    assert_eq!(s, 401);
    assert_eq!(
        b,
        json!({"error": "invalid_grant", "error_description": "token is invalid or does not exists"})
    );
    // The new access token works; the rotated refresh token works once more.
    let (s, _) = sim
        .http
        .get(sim.url("/clients_api/profile"))
        .bearer_auth(second["access_token"].as_str().expect("at"))
        .header("hardware_id", HARDWARE_ID)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .expect("send");
    assert_eq!(s, 200);
    // python's refresh: HTTP Basic client auth, no hardware_id header.
    let form = sim
        .http
        .post(sim.url("/oauth/token"))
        .basic_auth("ring_official_android", Some(""))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt2.as_str()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(form.status(), 200);
    assert_eq!(
        sim.sim_state().await["token_generation"].as_u64(),
        Some(gen0 + 3)
    );
    // Garbage bodies give clear 4xx JSON.
    let resp = sim
        .http
        .post(sim.url("/oauth/token"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.expect("json")["error"].is_string());
    sim.stop().await;
}

#[tokio::test]
async fn bearer_token_is_required_and_expires() {
    let opts = SimOptions {
        access_token_ttl: Duration::from_millis(30),
        ..SimOptions::default()
    };
    let sim = TestSim::start_with(opts).await;
    let resp = sim
        .http
        .get(sim.url("/clients_api/ring_devices"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    let resp = sim
        .http
        .get(sim.url("/clients_api/ring_devices"))
        .bearer_auth("made-up")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(sim.get("/clients_api/ring_devices").await.0, 401, "expired");
    sim.stop().await;
}

#[tokio::test]
async fn session_profile_and_locations() {
    let sim = TestSim::start().await;
    let body = json!({"device": {"hardware_id": "hw-1", "metadata": {"api_version": 11, "device_model": "ring-bridge"}, "os": "android"}});
    let (s, b) = sim
        .call(reqwest::Method::POST, "/clients_api/session", Some(body))
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["profile"]["email"], DEMO_EMAIL);
    assert_eq!(b["profile"]["hardware_id"], "hw-1");
    assert!(b["profile"]["features"].is_object());
    let (s, b) = sim
        .call(
            reqwest::Method::POST,
            "/clients_api/session",
            Some(json!({"device": {}})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]
            .as_str()
            .is_some_and(|e| e.contains("hardware_id"))
    );

    let (s, b) = sim.get("/clients_api/profile").await;
    assert_eq!((s, b["profile"]["id"].is_u64()), (StatusCode::OK, true));
    let (_, b) = sim.get("/devices/v1/locations").await;
    let locs: Vec<(&str, &str)> = b["user_locations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|l| {
            (
                l["location_id"].as_str().unwrap_or(""),
                l["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        locs,
        vec![(HOME_LOCATION_ID, "Home"), (CABIN_LOCATION_ID, "Cabin")]
    );
    // TestSim's own session, then this test's.
    assert_eq!(sim.sim_state().await["sessions_created"], 2);
    sim.stop().await;
}

#[tokio::test]
async fn ring_devices_has_every_array_and_the_data_set() {
    let sim = TestSim::start().await;
    let (s, d) = sim.get("/clients_api/ring_devices").await;
    assert_eq!(s, 200);
    for k in [
        "doorbots",
        "authorized_doorbots",
        "stickup_cams",
        "chimes",
        "base_stations",
        "beams_bridges",
        "other",
    ] {
        assert!(d[k].is_array(), "{k}");
    }
    let ids = |k: &str| -> Vec<u64> {
        d[k].as_array()
            .expect("arr")
            .iter()
            .filter_map(|c| c["id"].as_u64())
            .collect()
    };
    assert_eq!(ids("doorbots"), vec![10001, 10002]);
    assert_eq!(ids("authorized_doorbots"), vec![10006]);
    assert_eq!(ids("stickup_cams"), vec![10003, 10004, 10005]);
    assert_eq!(ids("chimes"), vec![CHIME_ID]);
    assert_eq!(d["chimes"][0]["kind"], "chime_pro_v2");

    let back = sim.camera(10002).await;
    assert_eq!(back["battery_life"], json!("87"));
    assert_eq!(back["settings"]["power_mode"], "battery");
    assert_eq!(back["kind"], "cocoa_doorbell_v2");
    let garage = sim.camera(10005).await;
    assert_eq!(garage["battery_life"], json!(41));
    assert_eq!(garage["alerts"]["connection"], "offline");
    assert_eq!(garage["location_id"], CABIN_LOCATION_ID);
    let drive = sim.camera(10003).await;
    assert_eq!(drive["led_status"], "off");
    assert_eq!(drive["siren_status"]["seconds_remaining"], 0);
    assert_eq!(drive["device_id"], "a4c1380f0003");
    let living = sim.camera(10004).await;
    assert_eq!(living["features"]["show_recordings"], false);
    assert!(living.get("led_status").is_none());
    let front = sim.camera(10001).await;
    assert_eq!(front["description"], "Front Door");
    assert_eq!(front["features"]["show_recordings"], true);
    assert_eq!(front["settings"]["motion_detection_enabled"], true);
    assert_eq!(front["settings"]["live_view_disabled"], false);
    assert!(front["health"]["rssi"].is_i64());
    assert!(front["firmware_version"].is_string() && front["time_zone"].is_string());
    sim.stop().await;
}
