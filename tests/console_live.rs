//! Live view in the browser console over WHEP, end to end: Chromium (fake
//! microphone) ⇄ the daemon's WHEP endpoint ⇄ the media hub ⇄ the simulated
//! Ring camera. Checks video frames, inbound audio, Hold to Talk and the tile's
//! Announce box reaching the camera's speaker, the exclusive talk floor, that
//! three viewers share one Ring session, and the tile's Stats overlay.

mod browser;
mod common;

use std::time::Duration;

use common::{Daemon, Sim, base_env};

/// The daemon against `sim` with a short linger so hang-ups show quickly.
fn daemon(sim: &Sim, state: &std::path::Path) -> Daemon {
    let cfg = state.join("ring-bridge.toml");
    std::fs::write(&cfg, "[stream]\nlinger = \"2s\"\n").unwrap();
    let mut env = base_env(state);
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    let d = Daemon::spawn(&env);
    assert!(
        d.wait_log("camera list loaded", Duration::from_secs(30)),
        "{}",
        d.log_text()
    );
    d
}

async fn run(name: &str) -> serde_json::Value {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    tokio::task::block_in_place(|| {
        let d = daemon(&sim, state.path());
        browser::run_scenario(name, &d.url("/"), &sim.url())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn console_live_view_plays_and_talks() {
    let details = run("live").await;
    assert!(details["frames"].as_u64().unwrap() > 20, "{details}");
    assert!(
        details["announced"]["loud_ms"].as_u64().unwrap_or(0) > 500,
        "{details}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn three_console_viewers_share_one_ring_session() {
    let details = run("live_shared").await;
    assert_eq!(details["viewers"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn console_stats_overlay_shows_moving_numbers() {
    let details = run("stats").await;
    let fps = details["fps"].as_f64().unwrap();
    assert!((12.0..=18.0).contains(&fps), "{details}");
}
