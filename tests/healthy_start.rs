//! A healthy start logs no WARN and no ERROR: the real binary in demo mode
//! (built-in simulator, embedded MQTT broker), left to load its cameras,
//! connect push and publish every discovery config and state.

mod common;
mod common_mqtt;

use std::time::Duration;

use common::{Daemon, base_env, get_json, wait_for};
use common_mqtt::{Subscriber, free_port};

/// The level word of a pretty-printed tracing line, if any.
fn level(line: &str) -> Option<&str> {
    line.split_whitespace()
        .take(3)
        .find(|w| ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(w))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demo_start_logs_no_warning_or_error() {
    let state = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let mut env = base_env(state.path());
    env.retain(|(k, _)| k != "MQTT_ENABLED");
    env.push(("MQTT_LOCAL_PORT".into(), broker_port.to_string()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));

    let cameras = wait_for(Duration::from_secs(60), || async {
        let (status, body) = get_json(&d.url("/api/ring/cameras")).await;
        (status == 200).then(|| body.as_array().map_or(0, Vec::len))
    })
    .await
    .unwrap_or_else(|| panic!("cameras never loaded:\n{}", d.log_text()));
    assert!(cameras > 0);
    for needle in [
        "started the embedded MQTT broker",
        "connected to MQTT broker",
        "published discovery and state",
        "push connected",
    ] {
        assert!(
            tokio::task::block_in_place(|| d.wait_log(needle, Duration::from_secs(60))),
            "no {needle:?} in the log:\n{}",
            d.log_text()
        );
    }

    // Let the first publish burst finish: read the broker until it has been
    // quiet for 2 s (bounded at 60 s).
    let sub = Subscriber::connect(broker_port, &["#"]).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while tokio::time::Instant::now() < end {
        let grew = sub
            .wait_for_opt(Duration::from_secs(2), |m| (m.len() > seen).then_some(()))
            .await;
        if grew.is_none() && seen > 0 {
            break;
        }
        seen = sub.all().len();
    }
    let configs = sub
        .all()
        .iter()
        .filter(|m| m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config"))
        .count();
    assert!(configs >= cameras, "only {configs} discovery configs");

    let (status, health) = get_json(&d.url("/healthz")).await;
    assert_eq!(status, 200);
    assert_eq!(health["degraded"], serde_json::json!([]), "{health}");

    let log = d.log_text();
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| matches!(level(l), Some("WARN" | "ERROR")) || l.contains("Collision"))
        .collect();
    assert!(
        bad.is_empty(),
        "a healthy start logged:\n{}\n\nwhole log:\n{log}",
        bad.join("\n")
    );
}
