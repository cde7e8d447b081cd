//! RTSP paths follow the camera directory in the real daemon: a slow first load
//! of the camera list delays neither HTTP nor the cameras' RTSP paths, a camera
//! added to the simulator after start-up plays over RTSP, and a removed one's
//! path is gone.

mod common;

use std::time::Duration;

use common::rtsp::{next_video, spawn_client};
use common::{Daemon, Sim, base_env, daemon_on, get_json, wait_for};
use retina::client::{Session, SessionOptions};
use serde_json::{Value, json};

/// Refreshes the camera list every 5 s (the smallest allowed).
const CONFIG: &str = "[ring]\ndevice_poll_interval = \"5s\"\n";
const WAIT: Duration = Duration::from_secs(30);

/// The camera `slug` as `/api/ring/cameras` lists it, once it does.
async fn listed(d: &Daemon, slug: &str) -> Option<Value> {
    let (status, cams) = get_json(&d.url("/api/ring/cameras")).await;
    if status != 200 {
        return None;
    }
    cams.as_array()?.iter().find(|c| c["slug"] == slug).cloned()
}

/// Whether DESCRIBE of `url` succeeds (the path is mounted).
async fn describes(url: &url::Url) -> bool {
    Session::describe(url.clone(), SessionOptions::default())
        .await
        .is_ok()
}

fn rtsp_url(cam: &Value) -> url::Url {
    let u = cam["rtsp_url"].as_str().expect("RTSP is on");
    url::Url::parse(u).expect("valid RTSP URL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_loaded_late_still_get_rtsp_paths() {
    let sim = Sim::start().await;
    let r = sim
        .post("faults", json!({"endpoint": "ring_devices", "status": 503}))
        .await;
    assert!(r.status().is_success());
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("ring-bridge.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    // HTTP is announced while the camera list cannot load.
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let (status, _) = get_json(&d.url("/api/ring/cameras")).await;
    assert_ne!(status, 200, "the camera list cannot have loaded yet");

    let r = reqwest::Client::new()
        .delete(format!("{}_sim/faults", sim.url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let front = wait_for(WAIT, || listed(&d, "front-door"))
        .await
        .unwrap_or_else(|| panic!("the camera list loaded:\n{}", d.log_text()));
    let url = rtsp_url(&front);
    // The path is mounted moments after the directory changed.
    let playing = wait_for(WAIT, || async { describes(&url).await.then_some(()) }).await;
    assert!(playing.is_some(), "front-door mounted:\n{}", d.log_text());
    let (_, mut rx) = spawn_client(url).await;
    assert!(next_video(&mut rx).await.keyframe, "starts on a key frame");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_added_after_start_up_plays_and_its_removal_unmounts_it() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on(&sim, state.path(), CONFIG, &[]).await;

    let added: Value = sim
        .post("cameras", json!({"name": "Shed"}))
        .await
        .json()
        .await
        .unwrap();
    let id = added["id"].as_u64().expect("id");
    let shed = wait_for(WAIT, || listed(&d, "shed"))
        .await
        .unwrap_or_else(|| panic!("Shed listed:\n{}", d.log_text()));
    assert_eq!(shed["id"].as_u64(), Some(id));
    let url = rtsp_url(&shed);
    let mounted = wait_for(WAIT, || async { describes(&url).await.then_some(()) }).await;
    assert!(mounted.is_some(), "shed mounted:\n{}", d.log_text());
    let (_, mut rx) = spawn_client(url.clone()).await;
    assert!(next_video(&mut rx).await.keyframe, "starts on a key frame");
    drop(rx);

    let r = reqwest::Client::new()
        .delete(format!("{}_sim/cameras/{id}", sim.url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let gone = wait_for(WAIT, || async { (!describes(&url).await).then_some(()) }).await;
    assert!(gone.is_some(), "shed unmounted:\n{}", d.log_text());
    assert!(listed(&d, "shed").await.is_none());
}

/// The RTSP address the daemon announced in its log.
fn rtsp_port(d: &Daemon) -> u16 {
    assert!(
        d.wait_log("rtsp_addr=", WAIT),
        "RTSP announced:\n{}",
        d.log_text()
    );
    let log = d.log_text();
    let addr = log
        .split("rtsp_addr=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("an address after rtsp_addr=");
    let addr: std::net::SocketAddr = addr.parse().expect("a socket address");
    addr.port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_describe_while_the_camera_list_loads_waits_for_it() {
    let sim = Sim::start().await;
    // Every camera-list call takes 5 s.
    let r = sim
        .post(
            "faults",
            json!({"endpoint": "ring_devices", "latency_ms": 5000}),
        )
        .await;
    assert!(r.status().is_success());
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let port = rtsp_port(&d);
    let (status, _) = get_json(&d.url("/api/ring/cameras")).await;
    assert_ne!(status, 200, "the camera list cannot have loaded yet");
    // An NVR connecting now is not told 404: its DESCRIBE waits for the list.
    let url = url::Url::parse(&format!("rtsp://127.0.0.1:{port}/front-door")).unwrap();
    let (_, mut rx) = spawn_client(url).await;
    assert!(next_video(&mut rx).await.keyframe, "starts on a key frame");
    // After the list is mounted, an unknown path is 404 at once.
    let bad = url::Url::parse(&format!("rtsp://127.0.0.1:{port}/no-such-camera")).unwrap();
    let t0 = std::time::Instant::now();
    assert!(!describes(&bad).await);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}
