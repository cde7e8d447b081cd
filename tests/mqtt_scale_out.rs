//! Scale-out: two daemons split one Ring account (the simulator's two
//! locations) by `ring.location_ids`, each with its own `mqtt.instance`, on one
//! mosquitto. Their discovery, state and availability topics are disjoint,
//! unique_ids never collide, each RTSP server serves only its own cameras, and
//! stopping one makes only its entities unavailable.

mod common;
mod common_mqtt;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::rtsp::{next_video, play, spawn_client};
use common::{Daemon, Sim, daemon_on, get_json};
use common_mqtt::{CABIN, HOME, Mosquitto, Msg, Subscriber, discovery_topics, free_port};
use ring_bridge::base::Secret;
use ring_bridge::mqtt::MqttOptions;

/// One instance: its name, location and cameras (device ids).
struct Part {
    instance: &'static str,
    location: &'static str,
    devices: &'static [&'static str],
}

const PARTS: [Part; 2] = [
    Part {
        instance: "home",
        location: HOME,
        devices: &[
            "a4c1380f0001",
            "a4c1380f0002",
            "a4c1380f0003",
            "a4c1380f0004",
        ],
    },
    Part {
        instance: "cabin",
        location: CABIN,
        devices: &["a4c1380f0005", "a4c1380f0006"],
    },
];

async fn start(
    sim: &Sim,
    broker: &Mosquitto,
    part: &Part,
    state: &std::path::Path,
) -> (Daemon, u16) {
    let rtsp = free_port();
    let config = format!(
        "[ring]\nlocation_ids = [\"{}\"]\n[mqtt]\ninstance = \"{}\"\nclient_id = \"ring-bridge-{}\"\n",
        part.location, part.instance, part.instance
    );
    let rtsp_port = rtsp.to_string();
    let d = daemon_on(
        sim,
        state,
        &config,
        &[
            ("MQTT_ENABLED", "true"),
            ("MQTT_URL", &broker.url()),
            ("RTSP_PORT", &rtsp_port),
        ],
    )
    .await;
    (d, rtsp)
}

/// The retained discovery configs of one instance, by topic.
fn discovery_of(msgs: &[Msg], instance: &str) -> BTreeMap<String, serde_json::Value> {
    let node = format!("/ringbridge_{instance}/");
    msgs.iter()
        .filter(|m| m.topic.starts_with("homeassistant/") && m.topic.contains(&node))
        .filter(|m| !m.payload.is_empty())
        .map(|m| (m.topic.clone(), m.json()))
        .collect()
}

/// Every topic a discovery config points at (state, command, attributes,
/// image, availability).
fn referenced_topics(cfg: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = cfg
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with("topic"))
        .filter_map(|(_, v)| v.as_str().map(str::to_string))
        .collect();
    out.extend(
        cfg["availability"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["topic"].as_str().unwrap().to_string()),
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_split_one_account_on_one_broker() {
    let broker = tokio::task::block_in_place(Mosquitto::start);
    let sub = Subscriber::connect(broker.port, &["ring/#", "homeassistant/#"]).await;
    let sim = Sim::start().await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (home, home_rtsp) = start(&sim, &broker, &PARTS[0], dirs[0].path()).await;
    let (cabin, cabin_rtsp) = start(&sim, &broker, &PARTS[1], dirs[1].path()).await;

    // Both online, each with every discovery config of its own cameras.
    for p in &PARTS {
        sub.wait_payload(
            &format!("ring/{}/status", p.instance),
            "online",
            Duration::from_secs(30),
        )
        .await;
        let mut opts = MqttOptions::new(Secret::new(broker.url()));
        opts.instance = Some(p.instance.to_string());
        let want: BTreeSet<String> = discovery_topics(&opts)
            .into_iter()
            .filter(|t| p.devices.iter().any(|d| t.contains(&format!("/{d}_"))))
            .collect();
        sub.wait_for("every discovery config", Duration::from_secs(20), |m| {
            let seen: BTreeSet<&str> = m.iter().map(|m| m.topic.as_str()).collect();
            want.iter().all(|t| seen.contains(t.as_str())).then_some(())
        })
        .await;
    }
    let msgs = sub.all();

    // Discovery: only its own cameras; every topic it names under its root.
    let mut uids = BTreeSet::new();
    let mut total = 0;
    for p in &PARTS {
        let root = format!("ring/{}/", p.instance);
        let configs = discovery_of(&msgs, p.instance);
        assert!(!configs.is_empty(), "{}: no discovery", p.instance);
        for (topic, cfg) in &configs {
            let uid = cfg["unique_id"].as_str().unwrap();
            assert!(
                uid.starts_with(&format!("{}_", p.instance)),
                "{topic}: unique_id {uid}"
            );
            assert!(uids.insert(uid.to_string()), "unique_id {uid} collides");
            let dev = cfg["device"]["identifiers"][0].as_str().unwrap();
            assert!(
                p.devices
                    .iter()
                    .any(|d| dev == format!("{}_{d}", p.instance)),
                "{topic}: device {dev} is not in {}",
                p.location
            );
            for t in referenced_topics(cfg) {
                assert!(t.starts_with(&root), "{topic}: {t} outside {root}");
                if t != format!("{root}status") {
                    assert!(t.contains(p.location), "{topic}: {t}");
                }
            }
        }
        total += configs.len();
    }
    // Together they publish the demo account's entity set exactly once.
    let all = discovery_topics(&MqttOptions::new(Secret::new(broker.url()))).len();
    assert!(all > 50, "the demo account's entity set: {all}");
    assert_eq!(total, all, "entities across both instances");
    // No discovery outside the two instance node ids.
    assert!(
        msgs.iter()
            .filter(|m| m.topic.starts_with("homeassistant/"))
            .all(
                |m| m.topic.contains("/ringbridge_home/") || m.topic.contains("/ringbridge_cabin/")
            ),
        "discovery without an instance node id"
    );
    // State and availability topics: disjoint by instance.
    for m in msgs.iter().filter(|m| m.topic.starts_with("ring/")) {
        let owner = PARTS
            .iter()
            .find(|p| m.topic.starts_with(&format!("ring/{}/", p.instance)))
            .unwrap_or_else(|| panic!("{} outside every instance root", m.topic));
        let other = PARTS.iter().find(|p| p.instance != owner.instance).unwrap();
        assert!(
            !m.topic.contains(other.location),
            "{} names the other instance's location",
            m.topic
        );
    }

    // RTSP and REST: each instance serves only its cameras.
    for (d, p) in [(&home, &PARTS[0]), (&cabin, &PARTS[1])] {
        let (st, list) = get_json(&d.url("/api/ring/cameras")).await;
        assert_eq!(st, 200);
        let devs: BTreeSet<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["device_id"].as_str().unwrap())
            .collect();
        assert_eq!(devs, p.devices.iter().copied().collect(), "{}", p.instance);
    }
    let slug = |d: &Daemon, dev: &str| {
        let url = d.url(&format!("/api/ring/cameras/{dev}"));
        async move { get_json(&url).await.1["slug"].as_str().unwrap().to_string() }
    };
    let rtsp = |port: u16, slug: &str| {
        url::Url::parse(&format!("rtsp://127.0.0.1:{port}/{slug}")).unwrap()
    };
    let front = slug(&home, "a4c1380f0001").await;
    let porch = slug(&cabin, "a4c1380f0006").await;
    let (_, mut a) = spawn_client(rtsp(home_rtsp, &front)).await;
    assert!(next_video(&mut a).await.keyframe);
    let (_, mut b) = spawn_client(rtsp(cabin_rtsp, &porch)).await;
    assert!(next_video(&mut b).await.keyframe);
    drop((a, b));
    for (port, other) in [(home_rtsp, &porch), (cabin_rtsp, &front)] {
        let r = tokio::time::timeout(Duration::from_secs(20), play(rtsp(port, other), None))
            .await
            .expect("an answer in time");
        assert!(r.is_err(), "rtsp port {port} serves {other}");
    }

    // Stopping the cabin instance: only its entities become unavailable.
    sub.clear();
    assert!(
        tokio::task::block_in_place(|| cabin.terminate()).is_some(),
        "cabin instance stops"
    );
    sub.wait_payload("ring/cabin/status", "offline", Duration::from_secs(20))
        .await;
    // A fresh subscriber sees the retained availability of both.
    let late = Subscriber::connect(broker.port, &["ring/+/status"]).await;
    late.wait_payload("ring/home/status", "online", Duration::from_secs(5))
        .await;
    late.wait_payload("ring/cabin/status", "offline", Duration::from_secs(5))
        .await;
    assert!(
        sub.all()
            .iter()
            .all(|m| m.topic != "ring/home/status" || m.text() == "online"),
        "the home instance's availability changed"
    );
    // Every home entity still lists only home availability topics.
    for cfg in discovery_of(&msgs, "home").values() {
        for a in cfg["availability"].as_array().unwrap() {
            assert!(a["topic"].as_str().unwrap().starts_with("ring/home/"));
        }
    }
    drop(home);
}
