//! The `event_select` entity end to end: the real daemon against the simulator
//! and a real mosquitto. Discovery only for cameras with recordings; the
//! attributes name the selected event with a recording URL that really plays;
//! an HA command switches the RTSP event stream's clip; a REST change shows up
//! on MQTT.

mod common;
mod common_mqtt;

use std::time::Duration;

use common::{Daemon, Sim, base_env, get_json};
use common_mqtt::{Mosquitto, Subscriber};
use serde_json::json;

const HOME: &str = "5d1a2f3e-0001-4c6b-9a51-000000000001";
const WAIT: Duration = Duration::from_secs(20);

fn topic(dev: &str, leaf: &str) -> String {
    format!("ring/{HOME}/camera/{dev}/event_select/{leaf}")
}

async fn motion(sim: &Sim, clip_seconds: u32) -> String {
    let r = sim
        .post(
            "cameras/10001/motion",
            json!({ "clip_seconds": clip_seconds }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    v["ding_id_str"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_select_switches_the_recording_and_follows_rest() {
    let broker = tokio::task::block_in_place(Mosquitto::start);
    let sub = Subscriber::connect(broker.port, &["ring/#", "homeassistant/#"]).await;
    let sim = Sim::start().await;
    let older = motion(&sim, 3).await;
    let newest = motion(&sim, 2).await;
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("ring-bridge.toml");
    std::fs::write(&cfg, "[events]\npoll_interval = \"60s\"\n").unwrap();
    let mut env = base_env(state.path());
    env.retain(|(k, _)| k != "MQTT_ENABLED");
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("MQTT_URL".into(), broker.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    let d: Daemon = tokio::task::block_in_place(|| Daemon::spawn(&env));

    // Discovery: a select with the doorbell's options; none for Living Room
    // (no Ring Protect), whose other entities are there.
    let config = sub
        .wait_match(
            "homeassistant/select/ringbridge/a4c1380f0001_event_select/config",
            WAIT,
            |_| true,
        )
        .await
        .json();
    let options: Vec<String> = serde_json::from_value(config["options"].clone()).unwrap();
    assert_eq!(options.len(), 21, "{options:?}");
    assert!(options.contains(&"Motion 2".to_owned()) && options.contains(&"Ding 5".to_owned()));
    assert_eq!(config["command_topic"], topic("a4c1380f0001", "command"));
    sub.wait_match(
        "homeassistant/binary_sensor/ringbridge/a4c1380f0004_motion/config",
        WAIT,
        |_| true,
    )
    .await;
    assert!(
        !sub.all()
            .iter()
            .any(|m| m.topic.contains("a4c1380f0004_event_select")),
        "a camera without recordings got an event_select"
    );

    // Default: the newest recorded event, with a fresh URL that serves the MP4.
    sub.wait_payload(&topic("a4c1380f0001", "state"), "Latest", WAIT)
        .await;
    let attrs = sub
        .wait_match(&topic("a4c1380f0001", "attributes"), WAIT, |m| {
            m.json()["eventId"] == newest.as_str()
        })
        .await
        .json();
    let url = attrs["recordingUrl"].as_str().expect("recordingUrl");
    assert!(url.contains("X-Amz-Signature"), "{attrs}");
    let mp4 = reqwest::get(url).await.unwrap();
    assert_eq!(mp4.status(), 200);
    assert_eq!(&mp4.bytes().await.unwrap()[4..8], b"ftyp");

    // HA selects `Motion 2`: state, attributes and the REST view follow.
    sub.publish(&topic("a4c1380f0001", "command"), "Motion 2")
        .await;
    sub.wait_payload(&topic("a4c1380f0001", "state"), "Motion 2", WAIT)
        .await;
    sub.wait_match(&topic("a4c1380f0001", "attributes"), WAIT, |m| {
        m.json()["eventId"] == older.as_str()
    })
    .await;
    let (st, v) = get_json(&d.url("/api/ring/cameras/10001/event-stream")).await;
    assert_eq!(st, 200);
    assert_eq!(v["select"], "Motion 2");
    assert_eq!(v["event_id"], older.as_str());

    // A bad option is refused with a log line and changes nothing.
    sub.publish(&topic("a4c1380f0001", "command"), "Motion 42")
        .await;
    assert!(
        d.wait_log("event_select command ignored", WAIT),
        "{}",
        d.log_text()
    );
    let (_, v) = get_json(&d.url("/api/ring/cameras/10001/event-stream")).await;
    assert_eq!(v["select"], "Motion 2");
    // A REST change reaches MQTT.
    let r = reqwest::Client::new()
        .put(d.url("/api/ring/cameras/10001/event-stream"))
        .json(&json!({"select": "Latest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sub.wait_payload(&topic("a4c1380f0001", "state"), "Latest", WAIT)
        .await;
    sub.wait_match(&topic("a4c1380f0001", "attributes"), WAIT, |m| {
        m.json()["eventId"] == newest.as_str()
    })
    .await;
    drop(d);
}
