//! The event intake's polling fallback against the fake Ring: new history
//! entries become exactly one `CameraEvent`, events from before start-up are
//! ignored, a bad camera never blocks the others, and polling backs off while
//! push is healthy.

mod common_mqtt;

use std::sync::Arc;
use std::time::Duration;

use common_mqtt::*;
use ring_bridge::base::CameraId;
use ring_bridge::cameras::Directory;
use ring_bridge::events::{
    self, CameraEvent, EventHub, EventKind, EventSource, PollDeps, PollOptions,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

struct Poll {
    ring: Arc<FakeRing>,
    hub: EventHub,
    rx: broadcast::Receiver<CameraEvent>,
    cancel: CancellationToken,
}

impl Drop for Poll {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn start(ring: Arc<FakeRing>, opts: PollOptions, hub: EventHub) -> Poll {
    let cancel = CancellationToken::new();
    let (directory, _d) = Directory::start(
        ring.clone(),
        ring_bridge::cameras::DirectoryOptions {
            poll_interval: Duration::from_secs(60),
            location_ids: Vec::new(),
        },
        cancel.clone(),
    );
    directory.wait_loaded(WAIT).await;
    let rx = hub.subscribe();
    events::poll::start(
        opts,
        PollDeps {
            ring: ring.clone(),
            directory,
            hub: hub.clone(),
        },
        cancel.clone(),
    );
    Poll {
        ring,
        hub,
        rx,
        cancel,
    }
}

fn fast() -> PollOptions {
    PollOptions {
        interval: Duration::from_millis(50),
        healthy_interval: Duration::from_secs(30),
        push_window: Duration::ZERO,
        history_limit: 5,
        call_timeout: Duration::from_millis(300),
    }
}

fn history_calls(ring: &FakeRing, id: u64) -> usize {
    ring.calls()
        .iter()
        .filter(|c| **c == Call::History(CameraId::new(id)))
        .count()
}

async fn wait_calls(ring: &FakeRing, id: u64, n: usize) {
    ring.wait_calls(&format!("{n} history polls of {id}"), WAIT, |calls| {
        calls
            .iter()
            .filter(|c| **c == Call::History(CameraId::new(id)))
            .count()
            >= n
    })
    .await;
}

async fn next_event(rx: &mut broadcast::Receiver<CameraEvent>) -> CameraEvent {
    tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("an event in time")
        .unwrap()
}

#[tokio::test]
async fn new_history_entries_become_exactly_one_event() {
    let ring = FakeRing::new();
    ring.add_history(10001, "1000", "ding", "2020-01-01T00:00:00Z");
    ring.add_history(10003, "1001", "motion", "2020-01-01T00:00:00.000Z");
    let mut p = start(ring, fast(), EventHub::default()).await;
    wait_calls(&p.ring, 10003, 1).await;

    p.ring.add_history(10003, "2001", "motion", &now_rfc3339());
    p.ring
        .add_history(10003, "2002", "on_demand", &now_rfc3339());
    let ev = next_event(&mut p.rx).await;
    assert_eq!(
        (ev.camera_id, ev.ding_id.as_str(), ev.kind, ev.source),
        (
            CameraId::new(10003),
            "2001",
            EventKind::Motion,
            EventSource::Poll
        )
    );
    // Several more polls see the same page: nothing new.
    let n = history_calls(&p.ring, 10003);
    wait_calls(&p.ring, 10003, n + 3).await;
    assert!(matches!(
        p.rx.try_recv(),
        Err(broadcast::error::TryRecvError::Empty)
    ));

    // An event push already delivered is not repeated by polling.
    assert!(p.hub.publish(CameraEvent {
        camera_id: CameraId::new(10001),
        ding_id: "2003".into(),
        kind: EventKind::Ding,
        person_detected: false,
        created_at: now_rfc3339(),
        snapshot_uuid: Some("uuid".into()),
        source: EventSource::Push,
    }));
    assert_eq!(next_event(&mut p.rx).await.source, EventSource::Push);
    p.ring.add_history(10001, "2003", "ding", &now_rfc3339());
    p.ring.add_history(10002, "2004", "ding", &now_rfc3339());
    let ev = next_event(&mut p.rx).await;
    assert_eq!((ev.ding_id.as_str(), ev.kind), ("2004", EventKind::Ding));
    let n = history_calls(&p.ring, 10001);
    wait_calls(&p.ring, 10001, n + 2).await;
    assert!(matches!(
        p.rx.try_recv(),
        Err(broadcast::error::TryRecvError::Empty)
    ));

    // The offline camera is never polled.
    assert_eq!(history_calls(&p.ring, 10005), 0);
}

#[tokio::test]
async fn a_failing_or_hanging_camera_does_not_block_the_others() {
    let ring = FakeRing::new();
    ring.hanging_history
        .lock()
        .unwrap()
        .insert(CameraId::new(10001));
    ring.failing_history
        .lock()
        .unwrap()
        .insert(CameraId::new(10002));
    let mut p = start(ring, fast(), EventHub::default()).await;
    wait_calls(&p.ring, 10004, 1).await;
    p.ring.add_history(10004, "3001", "motion", &now_rfc3339());
    let t = std::time::Instant::now();
    let ev = next_event(&mut p.rx).await;
    assert_eq!(ev.ding_id, "3001");
    // Bounded by the per-call timeout, not by the hanging camera.
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(history_calls(&p.ring, 10002) >= 1);
}

/// On paused time: the quiet windows below are virtual, so the negative
/// checks ("no poll while push is healthy") are exact, not timing guesses.
#[tokio::test(start_paused = true)]
async fn polling_backs_off_while_push_is_healthy() {
    let ring = FakeRing::new();
    let hub = EventHub::default();
    hub.push_seen();
    let mut opts = fast();
    opts.push_window = Duration::from_millis(400);
    let p = start(ring, opts, hub).await;
    // One poll at start, then quiet while push is healthy.
    wait_calls(&p.ring, 10003, 1).await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(history_calls(&p.ring, 10003), 1);
    }
    // Push goes silent: polling takes over again.
    wait_calls(&p.ring, 10003, 3).await;
    // Push comes back: polling backs off again.
    p.hub.push_seen();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let n = history_calls(&p.ring, 10003);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(history_calls(&p.ring, 10003) <= n + 1);
}
