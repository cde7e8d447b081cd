//! Connection life: broker restarts, LWT on a crash, clean shutdown, a broker
//! that is down at start, and the embedded rumqttd default.

mod common_mqtt;

use std::time::Duration;

use common_mqtt::*;
use ring_bridge::base::CameraId;
use ring_bridge::mqtt::{self, BrokerChoice};

const LAST_CONFIG: &str = "homeassistant/sensor/ringbridge/a4c1380f0006_info/config";

#[tokio::test]
async fn broker_restart_republishes_everything() {
    let mut broker = Mosquitto::start();
    let opts = test_options(&broker.url());
    let bridge = Running::start(opts.clone()).await;
    let sub = Subscriber::connect(broker.port, &["homeassistant/#", "ring/#"]).await;
    sub.wait_all_discovery(&opts).await;
    drop(sub);
    let discovery = |msgs: Vec<Msg>| -> std::collections::BTreeSet<String> {
        msgs.into_iter()
            .map(|m| m.topic)
            .filter(|t| t.starts_with("homeassistant/"))
            .collect()
    };
    let before = discovery(Subscriber::retained(broker.port, &["homeassistant/#"]).await);
    assert_eq!(before, discovery_topics(&opts), "retained before restart");

    // mosquitto runs without persistence: a restart loses every retained message.
    broker.restart();
    let mut status = bridge.handle.status();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.connects >= 2),
    )
    .await
    .expect("bridge reconnects")
    .unwrap();

    let sub = Subscriber::connect(broker.port, &["homeassistant/#", "ring/#"]).await;
    sub.wait_all_discovery(&opts).await;
    let online = sub.wait_payload("ring/status", "online", WAIT).await;
    assert!(online.retain);
    sub.wait_payload(
        &format!("ring/{CABIN}/camera/a4c1380f0005/status"),
        "offline",
        WAIT,
    )
    .await;
    sub.wait_payload(
        &format!("ring/{HOME}/camera/a4c1380f0002/battery/state"),
        "87",
        WAIT,
    )
    .await;
    let after = discovery(Subscriber::retained(broker.port, &["homeassistant/#"]).await);
    assert_eq!(before, after, "every discovery config is back, retained");

    // Commands work on the new connection (re-subscribed).
    sub.publish(
        &format!("ring/{HOME}/camera/a4c1380f0003/light/command"),
        "ON",
    )
    .await;
    sub.wait_payload(
        &format!("ring/{HOME}/camera/a4c1380f0003/light/state"),
        "ON",
        WAIT,
    )
    .await;
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn crash_publishes_the_last_will() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/status"]).await;
    sub.wait_payload("ring/status", "online", WAIT).await;

    // No clean shutdown: the task (and with it the TCP connection) just dies.
    bridge.join.abort();
    let lwt = sub.wait_payload("ring/status", "offline", WAIT).await;
    assert!(!lwt.retain, "live delivery");
    // The LWT is retained for late subscribers (HA restarting later).
    let late = Subscriber::connect(broker.port, &["ring/status"]).await;
    let m = late.wait_payload("ring/status", "offline", WAIT).await;
    assert!(m.retain);
    bridge.cancel.cancel();
}

#[tokio::test]
async fn clean_shutdown_publishes_offline() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/status"]).await;
    sub.wait_payload("ring/status", "online", WAIT).await;
    let t = std::time::Instant::now();
    bridge.stop().await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    sub.wait_payload("ring/status", "offline", WAIT).await;
}

#[tokio::test]
async fn waits_for_a_broker_that_is_down_at_start() {
    let port = free_port();
    let opts = test_options(&format!("mqtt://127.0.0.1:{port}"));
    let ring = FakeRing::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let (directory, _t) = ring_bridge::cameras::Directory::start(
        ring.clone(),
        ring_bridge::cameras::DirectoryOptions {
            poll_interval: Duration::from_secs(60),
            location_ids: Vec::new(),
        },
        cancel.clone(),
    );
    let deps = mqtt::MqttDeps {
        directory,
        ring,
        events: ring_bridge::events::EventHub::default(),
        stream: None,
        snapshots: None,
        announce: None,
        push: None,
        replay: None,
    };
    let (handle, join) = mqtt::start(opts.clone(), deps, cancel.clone());
    let mut status = handle.status();
    tokio::time::timeout(WAIT, status.wait_for(|s| s.last_error.is_some()))
        .await
        .unwrap()
        .unwrap();
    assert!(!status.borrow().connected);
    assert_eq!(status.borrow().broker, format!("127.0.0.1:{port}"));

    // Start a broker on that port: the bridge connects within its backoff.
    let broker = Mosquitto::start_on(port);
    tokio::time::timeout(Duration::from_secs(5), status.wait_for(|s| s.connected))
        .await
        .expect("connects once the broker is up")
        .unwrap();
    let sub = Subscriber::connect(broker.port, &["homeassistant/#"]).await;
    sub.wait_all_discovery(&opts).await;
    cancel.cancel();
    tokio::time::timeout(WAIT, join)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn invalid_options_end_the_task_with_an_error() {
    let mut opts = test_options("http://127.0.0.1:1");
    let ring = FakeRing::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let (directory, _t) = ring_bridge::cameras::Directory::start(
        ring.clone(),
        ring_bridge::cameras::DirectoryOptions {
            poll_interval: Duration::from_secs(60),
            location_ids: Vec::new(),
        },
        cancel.clone(),
    );
    let deps = mqtt::MqttDeps {
        directory,
        ring,
        events: ring_bridge::events::EventHub::default(),
        stream: None,
        snapshots: None,
        announce: None,
        push: None,
        replay: None,
    };
    let (_h, join) = mqtt::start(opts.clone(), deps.clone(), cancel.clone());
    let err = join.await.unwrap().unwrap_err();
    assert!(matches!(err, mqtt::Error::InvalidUrl(_)), "{err}");
    opts.url = ring_bridge::base::Secret::new("mqtt://u:hunter2@127.0.0.1:1".into());
    opts.instance = Some("bad/instance".into());
    let (_h, join) = mqtt::start(opts, deps, cancel.clone());
    let err = join.await.unwrap().unwrap_err().to_string();
    assert!(
        err.contains("instance") && !err.contains("hunter2"),
        "{err}"
    );
    cancel.cancel();
}

#[tokio::test]
async fn embedded_broker_serves_the_bridge() {
    let port = free_port();
    let choice = mqtt::ensure_local(addr(port)).await.unwrap();
    assert!(choice.is_embedded());
    assert_eq!(choice.addr(), addr(port));

    let bridge = Running::start(test_options(choice.url().expose())).await;
    let sub = Subscriber::connect(port, &["homeassistant/#", "ring/#"]).await;
    let cfg = sub
        .wait_for("retained discovery via rumqttd", WAIT, |m| {
            m.iter().find(|m| m.topic == LAST_CONFIG).cloned()
        })
        .await;
    assert_eq!(cfg.json()["unique_id"], "a4c1380f0006_info");
    sub.publish(
        &format!("ring/{HOME}/camera/a4c1380f0003/siren/command"),
        "ON",
    )
    .await;
    sub.wait_payload(
        &format!("ring/{HOME}/camera/a4c1380f0003/siren/state"),
        "ON",
        WAIT,
    )
    .await;
    assert!(
        bridge
            .ring
            .calls()
            .contains(&Call::SetSiren(CameraId::new(10003), true))
    );

    // A second call finds the embedded broker already listening.
    let again = mqtt::ensure_local(addr(port)).await.unwrap();
    assert!(matches!(again, BrokerChoice::Existing(a) if a == addr(port)));
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn ensure_local_uses_a_running_mosquitto() {
    let broker = Mosquitto::start();
    let choice = mqtt::ensure_local(addr(broker.port)).await.unwrap();
    assert!(!choice.is_embedded());
    assert_eq!(choice.url().expose(), &broker.url());
}
