//! The console under a path prefix, as Home Assistant ingress serves it: Chromium
//! opens `/api/hassio_ingress/<token>/` on a reverse proxy that adds
//! `X-Ingress-Path`, plays live video (WHEP), talks, and follows the log stream.
//! The daemon has a password and trusts only the proxy, so any request that
//! bypassed the prefix would fail with 401. Browser WebRTC uses the single
//! shared UDP port, as in the add-on.

mod browser;
mod common;

use std::time::Duration;

use common::proxy::IngressProxy;
use common::{Daemon, Sim, base_env};

#[tokio::test(flavor = "multi_thread")]
async fn console_plays_live_video_under_the_ingress_prefix() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("ring-bridge.toml");
    std::fs::write(&cfg, "[stream]\nlinger = \"2s\"\n").unwrap();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    env.push(("HTTP_PASSWORD".into(), "only-the-proxy-gets-in".into()));
    env.push(("INGRESS_PROXY_IP".into(), "127.0.0.1".into()));
    // As in the add-on: browser WebRTC on one UDP port.
    env.push(("RTC_UDP_PORT".into(), "0".into()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    assert!(
        d.wait_log("camera list loaded", Duration::from_secs(30)),
        "{}",
        d.log_text()
    );
    assert!(d.log_text().contains("browser WebRTC uses one UDP port"));
    let direct = reqwest::get(d.url("/")).await.unwrap().status().as_u16();
    assert_eq!(direct, 401, "the daemon itself is locked");

    let proxy = IngressProxy::start(&d.url("")).await;
    let console = proxy.console_url();
    let live = tokio::task::block_in_place(|| browser::run_scenario("live", &console, &sim.url()));
    assert!(live["frames"].as_u64().unwrap() > 20, "{live}");
    tokio::task::block_in_place(|| browser::run_scenario("logs", &console, &sim.url()));

    let seen = proxy.seen();
    for want in [
        "GET /",
        "GET /assets/js/main.js",
        "GET /api/ring/cameras",
        "POST /api/webrtc/front-door/whep",
        "DELETE /api/webrtc/front-door/whep/",
        "POST /api/webrtc/front-door/whep/",
        "GET /api/logs/stream",
    ] {
        assert!(
            seen.iter().any(|s| s == want || s.starts_with(want)),
            "{want} did not go through the ingress prefix; seen: {seen:#?}"
        );
    }
}
