//! State and commands against a real mosquitto: motion/ding timing, the
//! doorbell event entity, light/siren/motion-detection commands, snapshots and
//! the live-stream switch.

mod common_mqtt;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common_mqtt::*;
use ring_bridge::base::CameraId;
use ring_bridge::events::{CameraEvent, EventKind, EventSource};
use ring_bridge::media::VideoCodec;
use ring_bridge::mqtt::{StreamControl, StreamEndpoints, StreamError, StreamState, StreamStatus};
use tokio::sync::watch;

fn topic(loc: &str, dev: &str, key: &str, leaf: &str) -> String {
    format!("ring/{loc}/camera/{dev}/{key}/{leaf}")
}

fn event(camera_id: u64, ding_id: &str, kind: EventKind) -> CameraEvent {
    CameraEvent {
        camera_id: CameraId::new(camera_id),
        ding_id: ding_id.into(),
        kind,
        person_detected: true,
        created_at: now_rfc3339(),
        snapshot_uuid: None,
        source: EventSource::Push,
    }
}

#[tokio::test]
async fn motion_turns_on_then_off_and_takes_a_snapshot() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    let state = topic(HOME, "a4c1380f0003", "motion", "state");
    sub.wait_payload(&state, "OFF", WAIT).await;

    let t0 = std::time::Instant::now();
    assert!(bridge.hub.publish(event(10003, "7001", EventKind::Motion)));
    sub.wait_payload(&state, "ON", Duration::from_secs(2)).await;
    let attrs = sub
        .wait_match(
            &topic(HOME, "a4c1380f0003", "motion", "attributes"),
            WAIT,
            |m| m.json()["ding_id"] == "7001",
        )
        .await
        .json();
    assert_eq!(attrs["ding_id"], "7001");
    assert_eq!(attrs["person_detected"], true);
    assert!(attrs["last_motion"].as_i64().unwrap() > 1_600_000_000);

    // Motion-triggered snapshot: raw JPEG bytes, retained, with its type.
    let img = sub
        .wait_for("snapshot image", WAIT, |m| {
            m.iter()
                .find(|m| m.topic == topic(HOME, "a4c1380f0003", "snapshot", "image"))
                .cloned()
        })
        .await;
    assert_eq!(img.payload, jpeg(1));
    let sattrs = sub
        .wait_for("snapshot attributes", WAIT, |m| {
            m.iter()
                .rev()
                .find(|m| m.topic == topic(HOME, "a4c1380f0003", "snapshot", "attributes"))
                .cloned()
        })
        .await;
    assert_eq!(sattrs.json()["type"], "motion");
    assert!(
        bridge
            .ring
            .calls()
            .contains(&Call::Snapshot(CameraId::new(10003)))
    );

    // OFF after motion_duration (400 ms in tests).
    sub.wait_payload(&state, "OFF", Duration::from_secs(3))
        .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(350),
        "{:?}",
        t0.elapsed()
    );

    // A duplicate ding id does nothing. Barrier: a motion on another camera,
    // published after it and handled in order; once its state is out, the
    // duplicate would have published before it.
    sub.clear();
    assert!(!bridge.hub.publish(event(10003, "7001", EventKind::Motion)));
    assert!(bridge.hub.publish(event(10004, "7002", EventKind::Motion)));
    sub.wait_payload(
        &topic(HOME, "a4c1380f0004", "motion", "state"),
        "ON",
        Duration::from_secs(2),
    )
    .await;
    assert!(sub.last(&state).is_none());
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn ding_fires_the_event_entity() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    let ding = topic(HOME, "a4c1380f0001", "ding", "state");
    sub.wait_payload(&ding, "OFF", WAIT).await;

    bridge.hub.publish(event(10001, "9001", EventKind::Ding));
    let ev = sub
        .wait_for("doorbell event", Duration::from_secs(2), |m| {
            m.iter()
                .find(|m| m.topic == topic(HOME, "a4c1380f0001", "doorbell", "state"))
                .cloned()
        })
        .await;
    assert!(!ev.retain, "events must not be retained");
    assert_eq!(ev.json()["event_type"], "ding");
    assert_eq!(ev.json()["ding_id"], "9001");
    sub.wait_payload(&ding, "ON", Duration::from_secs(2)).await;
    let attrs = sub
        .wait_match(
            &topic(HOME, "a4c1380f0001", "ding", "attributes"),
            WAIT,
            |m| m.json()["ding_id"] == "9001",
        )
        .await
        .json();
    assert!(attrs["last_ding_time"].is_string());
    sub.wait_payload(&ding, "OFF", Duration::from_secs(3)).await;

    // Events for cameras not in the directory are ignored without harm.
    bridge.hub.publish(event(99999, "9002", EventKind::Ding));
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn light_siren_and_motion_detection_commands() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    let light = |leaf| topic(HOME, "a4c1380f0003", "light", leaf);
    let siren = |leaf| topic(HOME, "a4c1380f0003", "siren", leaf);
    let md = |leaf| topic(HOME, "a4c1380f0004", "motion_detection", leaf);
    sub.wait_payload(&light("state"), "OFF", WAIT).await;

    sub.publish(&light("command"), "ON").await;
    sub.wait_payload(&light("state"), "ON", WAIT).await;
    sub.publish(&siren("command"), "ON").await;
    sub.wait_payload(&siren("state"), "ON", WAIT).await;
    sub.publish(&md("command"), "OFF").await;
    sub.wait_payload(&md("state"), "OFF", WAIT).await;
    sub.publish(&light("command"), "OFF").await;
    sub.wait_payload(&light("state"), "OFF", WAIT).await;
    assert_eq!(
        bridge.ring.calls(),
        vec![
            Call::SetLight(CameraId::new(10003), true),
            Call::SetSiren(CameraId::new(10003), true),
            Call::SetMotionDetection(CameraId::new(10004), false),
            Call::SetLight(CameraId::new(10003), false),
        ]
    );
    // The directory picked up the new data (refresh after each command).
    let mut dir = bridge.directory.subscribe();
    tokio::time::timeout(
        WAIT,
        dir.wait_for(|s| {
            s.find("10004")
                .is_some_and(|e| !e.camera.motion_detection_enabled)
        }),
    )
    .await
    .unwrap()
    .unwrap();

    // Bad payloads, missing capabilities and unknown cameras: logged, no call.
    sub.publish(&light("command"), "BLINK").await;
    sub.publish(&topic(HOME, "a4c1380f0001", "light", "command"), "ON")
        .await;
    sub.publish(
        &topic(HOME, "a4c1380f0006", "motion_detection", "command"),
        "OFF",
    )
    .await;
    sub.publish(&topic(HOME, "ffffffffffff", "siren", "command"), "ON")
        .await;
    sub.publish(
        &topic(HOME, "a4c1380f0003", "take_snapshot", "command"),
        "NOW",
    )
    .await;
    // A command after the bad ones proves they were processed (in order).
    sub.publish(&siren("command"), "OFF").await;
    sub.wait_payload(&siren("state"), "OFF", WAIT).await;
    assert_eq!(bridge.ring.calls().len(), 5);
    assert_eq!(
        bridge.ring.calls()[4],
        Call::SetSiren(CameraId::new(10003), false)
    );

    // A failing Ring call leaves the state as it was (and re-sends it).
    *bridge.ring.fail_commands.lock().unwrap() = true;
    sub.clear();
    sub.publish(&light("command"), "ON").await;
    let m = sub
        .wait_for("light state re-sent", WAIT, |m| {
            m.iter().find(|m| m.topic == light("state")).cloned()
        })
        .await;
    assert_eq!(m.text(), "OFF");
    assert_eq!(bridge.ring.calls().len(), 6);
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn snapshot_button_and_interval() {
    let broker = Mosquitto::start();
    let mut opts = test_options(&broker.url());
    opts.snapshot_interval_wired = Duration::from_millis(300);
    opts.snapshot_interval_battery = Duration::ZERO;
    let ring = FakeRing::new();
    *ring.snapshot_tag.lock().unwrap() = 7;
    let bridge = Running::start_with(opts, ring, None).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;

    // Interval snapshots for wired online cameras only (not battery 10002, not
    // offline 10005): at least two rounds for 10004.
    let count = |id| {
        bridge
            .ring
            .calls()
            .iter()
            .filter(|c| **c == Call::Snapshot(CameraId::new(id)))
            .count()
    };
    bridge
        .ring
        .wait_calls("interval snapshots", WAIT, |calls| {
            calls
                .iter()
                .filter(|c| **c == Call::Snapshot(CameraId::new(10004)))
                .count()
                >= 2
        })
        .await;
    assert_eq!(count(10002), 0);
    assert_eq!(count(10005), 0);
    let img = sub
        .wait_for("interval image", WAIT, |m| {
            m.iter()
                .find(|m| m.topic == topic(HOME, "a4c1380f0004", "snapshot", "image"))
                .cloned()
        })
        .await;
    assert_eq!(img.payload, jpeg(7));

    // The button works for a battery camera (interval off there).
    *bridge.ring.snapshot_tag.lock().unwrap() = 9;
    sub.publish(
        &topic(HOME, "a4c1380f0002", "take_snapshot", "command"),
        "PRESS",
    )
    .await;
    let img = sub
        .wait_for("button image", WAIT, |m| {
            m.iter()
                .find(|m| m.topic == topic(HOME, "a4c1380f0002", "snapshot", "image"))
                .cloned()
        })
        .await;
    assert_eq!(img.payload, jpeg(9));
    let a = sub
        .wait_for("button attrs", WAIT, |m| {
            m.iter()
                .find(|m| m.topic == topic(HOME, "a4c1380f0002", "snapshot", "attributes"))
                .cloned()
        })
        .await;
    assert_eq!(a.json()["type"], "on_demand");

    // The offline camera is never asked.
    sub.publish(
        &topic(CABIN, "a4c1380f0005", "take_snapshot", "command"),
        "PRESS",
    )
    .await;
    bridge
        .handle
        .take_snapshot(CameraId::new(10005))
        .await
        .unwrap();
    // Barriers: `republish` returns once every earlier command was handled;
    // a press for the battery camera, sent after the offline camera's on the
    // same MQTT connection, is handled after it.
    bridge.handle.republish().await.unwrap();
    *bridge.ring.snapshot_tag.lock().unwrap() = 11;
    sub.publish(
        &topic(HOME, "a4c1380f0002", "take_snapshot", "command"),
        "PRESS",
    )
    .await;
    let barrier = jpeg(11);
    sub.wait_for("barrier image", WAIT, |m| {
        m.iter()
            .find(|m| {
                m.topic == topic(HOME, "a4c1380f0002", "snapshot", "image") && m.payload == barrier
            })
            .cloned()
    })
    .await;
    assert_eq!(count(10005), 0);
    bridge.stop().await.unwrap();
}

#[tokio::test]
async fn stream_switch_without_stream_control_reports_failed() {
    let broker = Mosquitto::start();
    let bridge = Running::start(test_options(&broker.url())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    let attrs = topic(HOME, "a4c1380f0001", "stream", "attributes");
    sub.wait_for("inactive", WAIT, |m| {
        m.iter()
            .rev()
            .find(|m| m.topic == attrs && m.json()["status"] == "inactive")
            .map(|_| ())
    })
    .await;
    sub.publish(&topic(HOME, "a4c1380f0001", "stream", "command"), "ON")
        .await;
    let a = sub
        .wait_for("failed", WAIT, |m| {
            m.iter()
                .rev()
                .find(|m| m.topic == attrs && m.json()["status"] == "failed")
                .cloned()
        })
        .await
        .json();
    assert!(a["reason"].as_str().unwrap().contains("not available"));
    assert_eq!(
        sub.last(&topic(HOME, "a4c1380f0001", "stream", "state"))
            .unwrap()
            .text(),
        "OFF"
    );
    bridge.stop().await.unwrap();
}

/// A stream control that goes activating → active on start and records calls.
struct FakeStreams {
    tx: watch::Sender<StreamStatus>,
    calls: Mutex<Vec<(CameraId, bool, Option<Duration>)>>,
}

#[async_trait::async_trait]
impl StreamControl for FakeStreams {
    async fn start(&self, camera_id: CameraId, max: Duration) -> Result<(), StreamError> {
        self.calls
            .lock()
            .unwrap()
            .push((camera_id, true, Some(max)));
        self.tx.send_replace(StreamStatus {
            state: StreamState::Activating,
            ..StreamStatus::default()
        });
        self.tx.send_replace(StreamStatus {
            state: StreamState::Active,
            video_codec: Some(VideoCodec::H265),
            ..StreamStatus::default()
        });
        Ok(())
    }
    async fn stop(&self, camera_id: CameraId) -> Result<(), StreamError> {
        self.calls.lock().unwrap().push((camera_id, false, None));
        self.tx.send_replace(StreamStatus::default());
        Ok(())
    }
    fn status(&self, camera_id: CameraId) -> watch::Receiver<StreamStatus> {
        if camera_id == CameraId::new(10004) {
            self.tx.subscribe()
        } else {
            watch::channel(StreamStatus::default()).1
        }
    }
    fn endpoints(&self, camera_id: CameraId) -> StreamEndpoints {
        StreamEndpoints {
            rtsp_url: Some(format!("rtsp://127.0.0.1:8554/{camera_id}")),
            whep_url: None,
        }
    }
}

#[tokio::test]
async fn stream_switch_drives_stream_control() {
    let broker = Mosquitto::start();
    let streams = Arc::new(FakeStreams {
        tx: watch::channel(StreamStatus::default()).0,
        calls: Mutex::new(Vec::new()),
    });
    let mut opts = test_options(&broker.url());
    opts.stream_max_duration = Duration::from_secs(42);
    let bridge = Running::start_with(opts, FakeRing::new(), Some(streams.clone())).await;
    let sub = Subscriber::connect(broker.port, &["ring/#"]).await;
    let state = topic(HOME, "a4c1380f0004", "stream", "state");
    let attrs = topic(HOME, "a4c1380f0004", "stream", "attributes");
    sub.wait_payload(&state, "OFF", WAIT).await;
    let a = sub
        .wait_for("stream attributes", WAIT, |m| {
            m.iter().find(|m| m.topic == attrs).cloned()
        })
        .await
        .json();
    assert_eq!(a["rtsp_url"], "rtsp://127.0.0.1:8554/10004");
    assert!(a["video_codec"].is_null(), "no stream yet: {a}");

    sub.publish(&topic(HOME, "a4c1380f0004", "stream", "command"), "ON")
        .await;
    sub.wait_payload(&state, "ON", WAIT).await;
    let a = sub
        .wait_for("active", WAIT, |m| {
            m.iter()
                .rev()
                .find(|m| m.topic == attrs && m.json()["status"] == "active")
                .cloned()
        })
        .await
        .json();
    assert_eq!(a["video_codec"], "h265", "the stream's codec: {a}");
    sub.publish(&topic(HOME, "a4c1380f0004", "stream", "command"), "OFF")
        .await;
    sub.wait_payload(&state, "OFF", WAIT).await;
    assert_eq!(
        *streams.calls.lock().unwrap(),
        vec![
            (CameraId::new(10004), true, Some(Duration::from_secs(42))),
            (CameraId::new(10004), false, None)
        ]
    );
    bridge.stop().await.unwrap();
}
