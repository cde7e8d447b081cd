//! Hostile MQTT input against the real binary, the simulator and a real
//! mosquitto: a retained 300 KB command is dropped with one warning while the
//! connection stays up; a retained `ON` on the stream switch does not start a
//! stream at start-up; a flood of commands for an unknown device logs one
//! warning, not thousands.

mod common;
mod common_mqtt;

use std::time::Duration;

use common::{Daemon, Sim, base_env, wait_for};
use common_mqtt::{Mosquitto, Subscriber};
use rumqttc::QoS;

const HOME: &str = "5d1a2f3e-0001-4c6b-9a51-000000000001";

fn cmd(dev: &str, key: &str) -> String {
    format!("ring/{HOME}/camera/{dev}/{key}/command")
}

fn count(d: &Daemon, needle: &str) -> usize {
    d.log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_retained_and_flooded_commands_are_contained() {
    let broker = tokio::task::block_in_place(Mosquitto::start);
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    // Left on the broker before the daemon starts, as a broken automation would.
    let big = cmd("a4c1380f0001", "ding");
    let stream = cmd("a4c1380f0003", "stream");
    sub.client
        .publish(&big, QoS::AtLeastOnce, true, vec![b'x'; 300 * 1024])
        .await
        .unwrap();
    sub.client
        .publish(&stream, QoS::AtLeastOnce, true, "ON")
        .await
        .unwrap();
    for t in [&big, &stream] {
        sub.wait_match(t, Duration::from_secs(5), |_| true).await;
    }

    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.retain(|(k, _)| k != "MQTT_ENABLED");
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("MQTT_URL".into(), broker.url()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    sub.wait_payload("ring/status", "online", Duration::from_secs(30))
        .await;
    for needle in [
        "MQTT message above limits.mqtt_max_message_bytes dropped",
        "retained MQTT command ignored",
    ] {
        assert!(
            tokio::task::block_in_place(|| d.wait_log(needle, Duration::from_secs(20))),
            "{needle}\n{}",
            d.log_text()
        );
    }

    // A flood for a device we do not have, then one real command: commands are
    // handled in order, so once the light is on the flood has been seen.
    for _ in 0..2000 {
        sub.publish(&cmd("ffffffffffff", "light"), "ON").await;
    }
    sub.publish(&cmd("a4c1380f0003", "light"), "ON").await;
    let lit = wait_for(Duration::from_secs(20), || async {
        let s = sim.state().await;
        (s["cameras"]["10003"]["light_on"] == true).then_some(())
    })
    .await;
    assert!(lit.is_some(), "{}", d.log_text());
    assert_eq!(
        count(&d, "command for an unknown camera ignored"),
        1,
        "{}",
        d.log_text()
    );

    // The connection never dropped, and the retained ON started nothing.
    assert_eq!(count(&d, "MQTT connection failed"), 0, "{}", d.log_text());
    assert_eq!(count(&d, "connected to MQTT broker"), 1, "{}", d.log_text());
    assert_eq!(count(&d, "above limits.mqtt_max_message_bytes"), 1);
    assert_eq!(
        sim.state().await["live_sessions_total"].as_u64(),
        Some(0),
        "{}",
        d.log_text()
    );
}
