//! The real daemon binary against the simulator and a real mosquitto: discovery
//! for every camera, simulator motion → MQTT motion ON/OFF, a light command
//! changes the simulator, and killing the daemon leaves the LWT `offline`.

mod common;
mod common_mqtt;

use std::time::Duration;

use common::{Daemon, Sim, base_env};
use common_mqtt::{Mosquitto, Subscriber};

const HOME: &str = "5d1a2f3e-0001-4c6b-9a51-000000000001";

#[tokio::test(flavor = "multi_thread")]
async fn daemon_publishes_discovery_events_and_obeys_commands() {
    let broker = tokio::task::block_in_place(Mosquitto::start);
    let sub = Subscriber::connect(broker.port, &["ring/#", "homeassistant/#"]).await;
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("ring-bridge.toml");
    std::fs::write(
        &cfg,
        "[events]\npoll_interval = \"60s\"\n[mqtt]\nmotion_duration = \"3s\"\n",
    )
    .unwrap();
    let mut env = base_env(state.path());
    env.retain(|(k, _)| k != "MQTT_ENABLED");
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("MQTT_URL".into(), broker.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));

    // Bridge online and discovery for every camera (retained).
    sub.wait_payload("ring/status", "online", Duration::from_secs(30))
        .await;
    for dev in [
        "a4c1380f0001",
        "a4c1380f0003",
        "a4c1380f0005",
        "a4c1380f0006",
    ] {
        let topic = format!("homeassistant/binary_sensor/ringbridge/{dev}_motion/config");
        sub.wait_match(&topic, Duration::from_secs(20), |_| true)
            .await;
        // A client that subscribes later gets it as a retained message.
        let late = Subscriber::connect(broker.port, &[topic.as_str()]).await;
        let m = late
            .wait_match(&topic, Duration::from_secs(10), |m| m.retain)
            .await;
        let cfg = m.json();
        assert_eq!(cfg["device"]["manufacturer"], "Ring", "{cfg}");
    }
    // The offline camera is shown unavailable.
    sub.wait_payload(
        "ring/5d1a2f3e-0002-4c6b-9a51-000000000002/camera/a4c1380f0005/status",
        "offline",
        Duration::from_secs(10),
    )
    .await;

    // Motion in the simulator → push → motion ON within 2 s (polling is set to
    // 60 s, so only push can be this fast), then OFF after the duration.
    assert!(
        d.wait_log("push connected", Duration::from_secs(30)),
        "{}",
        d.log_text()
    );
    // The push diagnostic sensor follows the listener, and /healthz shows it.
    sub.wait_payload(
        &format!("ring/{HOME}/camera/a4c1380f0001/push/state"),
        "connected",
        Duration::from_secs(10),
    )
    .await;
    let (_, health) = common::get_json(&d.url("/healthz")).await;
    assert_eq!(health["push"]["state"], "connected", "{health}");
    assert_eq!(health["push"]["degraded"], false, "{health}");
    // Pushes in the first 2 s after connecting are dropped as replays (like
    // Ring's clients do), so a motion that early may be missed: try again.
    let motion = format!("ring/{HOME}/camera/a4c1380f0004/motion/state");
    let mut on = false;
    for _ in 0..3 {
        let r = sim
            .post("cameras/10004/motion", serde_json::json!({}))
            .await;
        assert!(r.status().is_success());
        let got = sub
            .wait_for_opt(Duration::from_secs(2), |msgs| {
                msgs.iter()
                    .rev()
                    .find(|m| m.topic == motion)
                    .filter(|m| m.text() == "ON")
                    .cloned()
            })
            .await;
        if got.is_some() {
            on = true;
            break;
        }
    }
    assert!(on, "motion ON within 2 s of a push:\n{}", d.log_text());
    sub.wait_payload(&motion, "OFF", Duration::from_secs(10))
        .await;

    // A ding on the doorbell fires the HA event entity.
    sim.post("cameras/10001/ding", serde_json::json!({})).await;
    sub.wait_match(
        &format!("ring/{HOME}/camera/a4c1380f0001/doorbell/state"),
        Duration::from_secs(5),
        |m| m.text().contains("ding"),
    )
    .await;

    // Light command → Ring (the simulator) → state topic.
    sub.publish(
        &format!("ring/{HOME}/camera/a4c1380f0003/light/command"),
        "ON",
    )
    .await;
    let lit = common::wait_for(Duration::from_secs(10), || async {
        let s = sim.state().await;
        (s["cameras"]["10003"]["light_on"] == true).then_some(())
    })
    .await;
    assert!(lit.is_some(), "light never turned on:\n{}", d.log_text());
    sub.wait_payload(
        &format!("ring/{HOME}/camera/a4c1380f0003/light/state"),
        "ON",
        Duration::from_secs(10),
    )
    .await;

    // kill -9: the broker publishes the last will.
    sub.clear();
    d.kill9();
    sub.wait_payload("ring/status", "offline", Duration::from_secs(60))
        .await;
}
