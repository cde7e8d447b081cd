//! Home Assistant discovery against a real mosquitto: every entity of every
//! camera is published retained and matches the golden files in
//! `tests/golden/mqtt/` (rewrite them with `UPDATE_GOLDEN=1`).

mod common_mqtt;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use common_mqtt::*;
use ring_bridge::mqtt::MqttOptions;
use serde_json::Value;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/mqtt")
}

/// Replaces values that change between releases.
fn normalize(mut v: Value) -> Value {
    if let Some(o) = v.get_mut("origin").and_then(Value::as_object_mut) {
        o.insert("sw_version".into(), Value::String("<version>".into()));
    }
    v
}

/// Waits until a live subscriber saw every discovery config, so everything
/// is at the broker; then a fresh subscriber gets the retained set.
async fn retained_discovery(port: u16, opts: &MqttOptions) -> Vec<Msg> {
    let live = Subscriber::connect(port, &["homeassistant/#"]).await;
    live.wait_all_discovery(opts).await;
    Subscriber::retained(port, &["homeassistant/#", "ring/#"]).await
}

#[tokio::test]
async fn discovery_is_retained_complete_and_matches_golden() {
    let broker = Mosquitto::start();
    let opts = test_options(&broker.url());
    let bridge = Running::start(opts.clone()).await;
    let msgs = retained_discovery(broker.port, &opts).await;

    let discovery: Vec<&Msg> = msgs
        .iter()
        .filter(|m| m.topic.starts_with("homeassistant/"))
        .collect();
    assert!(
        discovery.iter().all(|m| m.retain),
        "discovery must be retained"
    );

    // unique_ids are unique and every entity carries both availability topics.
    let mut uids = HashSet::new();
    for m in &discovery {
        let v = m.json();
        let uid = v["unique_id"].as_str().unwrap().to_string();
        assert!(uids.insert(uid.clone()), "duplicate unique_id {uid}");
        assert_eq!(v["availability_mode"], "all", "{uid}");
        let av: Vec<&str> = v["availability"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["topic"].as_str().unwrap())
            .collect();
        assert_eq!(av[0], "ring/status");
        assert!(
            av[1].ends_with("/status") && av[1].contains("/camera/"),
            "{uid}: {av:?}"
        );
        assert_eq!(v["origin"]["name"], "ring-bridge");
        assert_eq!(v["device"]["manufacturer"], "Ring");
    }

    // Golden files: one per camera, topic -> payload.
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for cam in sim_cameras() {
        let mine: BTreeMap<String, Value> = discovery
            .iter()
            .filter(|m| m.topic.contains(&format!("/{}_", cam.device_id)))
            .map(|m| (m.topic.clone(), normalize(m.json())))
            .collect();
        assert!(!mine.is_empty(), "no discovery for {}", cam.name);
        let path = golden_dir().join(format!("{}.json", cam.device_id));
        let text = serde_json::to_string_pretty(&mine).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        let want: BTreeMap<String, Value> = serde_json::from_str(&want).unwrap();
        if want != mine {
            let wk: HashSet<_> = want.keys().collect();
            let mk: HashSet<_> = mine.keys().collect();
            mismatches.push(format!(
                "{}: missing {:?}, unexpected {:?}, changed {:?}",
                cam.device_id,
                wk.difference(&mk).collect::<Vec<_>>(),
                mk.difference(&wk).collect::<Vec<_>>(),
                want.iter()
                    .filter(|(k, v)| mine.get(*k).is_some_and(|m| m != *v))
                    .map(|(k, _)| k)
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 to rewrite after review):\n{}",
        mismatches.join("\n")
    );
    let total: usize = discovery.len();
    assert_eq!(total, uids.len());

    // Availability and a few retained states.
    let by_topic = |t: &str| msgs.iter().rev().find(|m| m.topic == t).cloned();
    let bridge_status = by_topic("ring/status").expect("bridge status");
    assert_eq!(
        (bridge_status.text().as_str(), bridge_status.retain),
        ("online", true)
    );
    let garage = by_topic(&format!("ring/{CABIN}/camera/a4c1380f0005/status")).unwrap();
    assert_eq!(garage.text(), "offline");
    let front = by_topic(&format!("ring/{HOME}/camera/a4c1380f0001/status")).unwrap();
    assert_eq!(front.text(), "online");
    let battery = by_topic(&format!("ring/{HOME}/camera/a4c1380f0002/battery/state")).unwrap();
    assert_eq!((battery.text().as_str(), battery.retain), ("87", true));
    let rssi = by_topic(&format!("ring/{HOME}/camera/a4c1380f0003/wireless/state")).unwrap();
    assert_eq!(rssi.text(), "-48");
    let info = by_topic(&format!("ring/{HOME}/camera/a4c1380f0001/info/state")).unwrap();
    assert_eq!(info.json()["firmware"], "cam-1.24.7");
    let motion = by_topic(&format!("ring/{HOME}/camera/a4c1380f0004/motion/state")).unwrap();
    assert_eq!(motion.text(), "OFF");
    let light = by_topic(&format!("ring/{HOME}/camera/a4c1380f0003/light/state")).unwrap();
    assert_eq!(light.text(), "OFF");
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn instance_prefixes_topics_and_unique_ids() {
    let broker = Mosquitto::start();
    let mut opts = test_options(&broker.url());
    opts.instance = Some("north".into());
    let bridge = Running::start(opts).await;
    let sub = Subscriber::connect(broker.port, &["homeassistant/#", "ring/#"]).await;
    let topic = "homeassistant/binary_sensor/ringbridge_north/a4c1380f0001_motion/config";
    let cfg = sub
        .wait_for("instance discovery", WAIT, |m| {
            m.iter().find(|m| m.topic == topic).cloned()
        })
        .await
        .json();
    assert_eq!(cfg["unique_id"], "north_a4c1380f0001_motion");
    assert_eq!(cfg["device"]["identifiers"][0], "north_a4c1380f0001");
    assert_eq!(
        cfg["state_topic"],
        format!("ring/north/{HOME}/camera/a4c1380f0001/motion/state")
    );
    assert_eq!(cfg["availability"][0]["topic"], "ring/north/status");
    sub.wait_payload("ring/north/status", "online", WAIT).await;
    assert!(
        sub.all().iter().all(|m| !m
            .topic
            .starts_with("homeassistant/binary_sensor/ringbridge/")),
        "no instance-less topics"
    );
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn ha_birth_message_triggers_republish() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["homeassistant/#"]).await;
    let topic = "homeassistant/camera/ringbridge/a4c1380f0003_snapshot/config";
    sub.wait_for("retained config", WAIT, |m| {
        m.iter().any(|m| m.topic == topic).then_some(())
    })
    .await;
    sub.clear();
    sub.publish("homeassistant/status", "online").await;
    let again = sub
        .wait_for("republished config", WAIT, |m| {
            m.iter().find(|m| m.topic == topic).cloned()
        })
        .await;
    assert_eq!(
        again.json()["topic"],
        format!("ring/{HOME}/camera/a4c1380f0003/snapshot/image")
    );
    bridge.stop().await.unwrap();
}
