//! What an automation author sees on a real mosquitto: every event's
//! attributes arrive before the state change they describe (motion, ding,
//! snapshot), the doorbell `event` carries the whole event, one Ring event is
//! one event fire and one ON→OFF cycle even when push and polling both report
//! it, and the three example automations of docs/MQTT.md ("For automation
//! authors") get what they need, in order.

mod common_mqtt;

use common_mqtt::*;
use ring_bridge::base::CameraId;
use ring_bridge::events::{CameraEvent, EventKind, EventSource};

fn topic(dev: &str, key: &str, leaf: &str) -> String {
    format!("ring/{HOME}/camera/{dev}/{key}/{leaf}")
}

fn event(camera_id: u64, ding_id: &str, kind: EventKind, person: bool) -> CameraEvent {
    CameraEvent {
        camera_id: CameraId::new(camera_id),
        ding_id: ding_id.into(),
        kind,
        person_detected: person,
        created_at: now_rfc3339(),
        snapshot_uuid: None,
        source: EventSource::Push,
    }
}

/// Index of the first message after `from` on `topic` that satisfies `pred`.
fn index_of(msgs: &[Msg], from: usize, topic: &str, pred: impl Fn(&Msg) -> bool) -> Option<usize> {
    msgs.iter()
        .enumerate()
        .skip(from)
        .find(|(_, m)| m.topic == topic && pred(m))
        .map(|(i, _)| i)
}

/// What Home Assistant holds for an entity when `state_idx` arrives: the last
/// attributes message before it.
fn attrs_at(msgs: &[Msg], state_idx: usize, attrs_topic: &str) -> serde_json::Value {
    msgs[..state_idx]
        .iter()
        .rev()
        .find(|m| m.topic == attrs_topic)
        .map(Msg::json)
        .unwrap_or(serde_json::Value::Null)
}

/// Waits for `state` to turn ON then OFF after `from`; returns both indexes.
async fn on_off_cycle(sub: &Subscriber, state: &str, from: usize) -> (usize, usize) {
    sub.wait_for(&format!("{state} ON then OFF"), WAIT, |msgs| {
        let on = index_of(msgs, from, state, |m| m.text() == "ON")?;
        let off = index_of(msgs, on, state, |m| m.text() == "OFF")?;
        Some((on, off))
    })
    .await
}

#[tokio::test]
async fn attributes_arrive_before_the_state_they_describe() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    let motion = topic("a4c1380f0001", "motion", "state");
    let motion_attrs = topic("a4c1380f0001", "motion", "attributes");
    let ding = topic("a4c1380f0001", "ding", "state");
    let ding_attrs = topic("a4c1380f0001", "ding", "attributes");
    sub.wait_payload(&motion, "OFF", WAIT).await;
    sub.wait_payload(&ding, "OFF", WAIT).await;

    // Two motions in a row: each ON carries its own event's attributes (the
    // first one has no earlier event to borrow from).
    for (id, person, jpeg_tag) in [("5001", true, 1), ("5002", false, 2)] {
        // A different image each time, so the second one is published too.
        *bridge.ring.snapshot_tag.lock().unwrap() = jpeg_tag;
        let from = sub.all().len();
        assert!(
            bridge
                .hub
                .publish(event(10001, id, EventKind::Motion, person))
        );
        let (on, off) = on_off_cycle(&sub, &motion, from).await;
        let msgs = sub.all();
        let a = attrs_at(&msgs, on, &motion_attrs);
        assert_eq!(a["ding_id"], id, "{a}");
        assert_eq!(a["person_detected"], person, "{a}");
        assert!(a["last_motion_time"].is_string(), "{a}");
        // No attributes-only correction while the sensor is ON.
        assert_eq!(
            index_of(&msgs, on, &motion_attrs, |_| true).filter(|&i| i < off),
            None
        );
        // The motion-triggered snapshot: its attributes before its image.
        let img_topic = topic("a4c1380f0001", "snapshot", "image");
        let img = sub
            .wait_for("snapshot image", WAIT, |m| {
                index_of(m, from, &img_topic, |_| true)
            })
            .await;
        let sa = attrs_at(
            &sub.all(),
            img,
            &topic("a4c1380f0001", "snapshot", "attributes"),
        );
        assert_eq!(sa["type"], "motion", "{sa}");
    }

    // A ding: the ding sensor's ON carries this ding's id.
    let from = sub.all().len();
    assert!(
        bridge
            .hub
            .publish(event(10001, "6001", EventKind::Ding, true))
    );
    let (on, _) = on_off_cycle(&sub, &ding, from).await;
    let a = attrs_at(&sub.all(), on, &ding_attrs);
    assert_eq!(a["ding_id"], "6001", "{a}");
    assert!(a["last_ding_time"].is_string(), "{a}");
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn one_ring_event_is_one_fire_and_one_cycle_when_push_and_poll_both_see_it() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    let ding = topic("a4c1380f0001", "ding", "state");
    let doorbell = topic("a4c1380f0001", "doorbell", "state");
    sub.wait_payload(&ding, "OFF", WAIT).await;

    let from = sub.all().len();
    let push = event(10001, "7001", EventKind::Ding, false);
    let poll = CameraEvent {
        source: EventSource::Poll,
        ..push.clone()
    };
    assert!(bridge.hub.publish(push));
    assert!(!bridge.hub.publish(poll), "the poll copy is a duplicate");
    let (_, off) = on_off_cycle(&sub, &ding, from).await;
    // Another event proves the bridge is past anything the duplicate could
    // have caused.
    assert!(
        bridge
            .hub
            .publish(event(10001, "7002", EventKind::Ding, false))
    );
    let (on2, _) = on_off_cycle(&sub, &ding, off).await;
    let msgs = sub.all();
    let fires: Vec<String> = msgs[from..on2]
        .iter()
        .filter(|m| m.topic == doorbell)
        .map(|m| m.json()["ding_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(fires, ["7001"], "event fires before the second ding");
    let states: Vec<String> = msgs[from..on2]
        .iter()
        .filter(|m| m.topic == ding)
        .map(Msg::text)
        .collect();
    assert_eq!(states, ["ON", "OFF"]);
    bridge.stop().await.unwrap();
}

/// docs/MQTT.md, example 1: a person at the front door → notify with the
/// snapshot. HA triggers on the motion sensor turning on, checks
/// `person_detected`, then sends the snapshot camera's image.
#[tokio::test]
async fn example_person_at_the_door_gets_a_snapshot() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    let motion = topic("a4c1380f0001", "motion", "state");
    sub.wait_payload(&motion, "OFF", WAIT).await;
    let from = sub.all().len();
    bridge
        .hub
        .publish(event(10001, "8001", EventKind::Motion, true));
    let (on, _) = on_off_cycle(&sub, &motion, from).await;
    let msgs = sub.all();
    // Condition of the automation: true on the ON transition itself.
    assert_eq!(
        attrs_at(&msgs, on, &topic("a4c1380f0001", "motion", "attributes"))["person_detected"],
        true
    );
    // The snapshot the notification attaches: a JPEG taken for this motion.
    let img = msgs
        .iter()
        .skip(from)
        .find(|m| m.topic == topic("a4c1380f0001", "snapshot", "image"))
        .expect("a snapshot after the motion");
    assert_eq!(&img.payload[..2], &[0xFF, 0xD8], "JPEG");
    bridge.stop().await.unwrap();
}

/// docs/MQTT.md, example 2: a ding → announce. HA triggers on the doorbell
/// `event` entity; the event payload alone says which ding it was.
#[tokio::test]
async fn example_ding_fires_the_doorbell_event_with_the_whole_event() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    sub.wait_payload(&topic("a4c1380f0001", "ding", "state"), "OFF", WAIT)
        .await;
    bridge
        .hub
        .publish(event(10001, "8101", EventKind::Ding, true));
    let ev = sub
        .wait_match(&topic("a4c1380f0001", "doorbell", "state"), WAIT, |_| true)
        .await;
    assert!(!ev.retain, "an event is never replayed from the broker");
    let v = ev.json();
    assert_eq!(v["event_type"], "ding");
    assert_eq!(v["ding_id"], "8101");
    assert_eq!(v["person_detected"], true);
    assert_eq!(v["source"], "push");
    assert!(v["last_ding"].as_i64().unwrap() > 1_600_000_000);
    assert!(v["last_ding_time"].is_string() && v["created_at"].is_string());
    bridge.stop().await.unwrap();
}

/// docs/MQTT.md, example 3: motion on the driveway at night → its light on.
/// HA triggers on the motion sensor and publishes `ON` to the light's command
/// topic; ring-bridge switches the light at Ring and confirms the state.
#[tokio::test]
async fn example_motion_turns_the_light_on() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    let motion = topic("a4c1380f0003", "motion", "state");
    let light = topic("a4c1380f0003", "light", "state");
    sub.wait_payload(&light, "OFF", WAIT).await;
    sub.wait_payload(&motion, "OFF", WAIT).await;
    bridge
        .hub
        .publish(event(10003, "8201", EventKind::Motion, false));
    sub.wait_payload(&motion, "ON", WAIT).await;
    // The automation's action.
    sub.publish(&topic("a4c1380f0003", "light", "command"), "ON")
        .await;
    sub.wait_payload(&light, "ON", WAIT).await;
    assert!(
        bridge
            .ring
            .calls()
            .contains(&Call::SetLight(CameraId::new(10003), true))
    );
    bridge.stop().await.unwrap();
}
