//! Supervisor tests with a scripted transport and registrar, on paused Tokio
//! time: replay grace, reconnects, refusals, unavailable transports.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::registrar::PushRegistrar;
use super::transport::{PushConnection, PushError, PushItem, PushTransport, RawPush};
use super::{PushOptions, PushState, TransportChoice, start};
use crate::base::CameraId;
use crate::events::{EventHub, EventKind, EventSource};
use crate::ring::{self, PushSubscription};

/// One scripted connection step.
enum Step {
    Wait(Duration),
    Item(PushItem),
    Fail,
}

/// What one `connect` call does.
enum Script {
    Connect(Vec<Step>),
    Refuse(PushError),
}

#[derive(Default)]
struct FakeTransport {
    scripts: Mutex<VecDeque<Script>>,
    connects: AtomicUsize,
    resets: AtomicUsize,
}

struct FakeConn(VecDeque<Step>);

#[async_trait::async_trait]
impl PushConnection for FakeConn {
    async fn next(&mut self) -> Result<Option<PushItem>, PushError> {
        loop {
            match self.0.pop_front() {
                None => return Ok(None),
                Some(Step::Wait(d)) => tokio::time::sleep(d).await,
                Some(Step::Item(i)) => return Ok(Some(i)),
                Some(Step::Fail) => {
                    return Err(PushError::Protocol {
                        detail: "boom".into(),
                    });
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl PushTransport for FakeTransport {
    fn name(&self) -> &'static str {
        "fake"
    }
    async fn token(&self) -> Result<String, PushError> {
        Ok(format!("tok-{}", self.resets.load(Ordering::SeqCst)))
    }
    async fn connect(&self) -> Result<Box<dyn PushConnection>, PushError> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        let next = self.scripts.lock().unwrap().pop_front();
        match next {
            Some(Script::Connect(steps)) => Ok(Box::new(FakeConn(steps.into()))),
            Some(Script::Refuse(e)) => Err(e),
            // Script exhausted: an idle connection.
            None => Ok(Box::new(FakeConn(
                [Step::Wait(Duration::from_secs(3600))].into(),
            ))),
        }
    }
    async fn reset(&self) -> Result<(), PushError> {
        self.resets.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Default)]
struct FakeRing {
    registered: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl PushRegistrar for FakeRing {
    async fn session_generation(&self) -> Result<u64, ring::Error> {
        Ok(1)
    }
    async fn register_push(&self, token: &str) -> Result<(), ring::Error> {
        self.registered.lock().unwrap().push(token.to_owned());
        Ok(())
    }
    async fn push_subscriptions(&self) -> Result<Vec<PushSubscription>, ring::Error> {
        Ok(Vec::new())
    }
    async fn subscribe(&self, _camera_id: CameraId, _motions: bool) -> Result<(), ring::Error> {
        Ok(())
    }
}

fn ding(id: &str) -> PushItem {
    let data = format!(
        r#"{{"device":{{"id":10001}},"event":{{"ding":{{"id":"{id}","subtype":"ding","created_at":"2025-01-01T00:00:00Z"}}}}}}"#
    );
    PushItem::Message(RawPush {
        data: [
            ("data".to_owned(), data),
            (
                "android_config".to_owned(),
                r#"{"category":"com.ring.pn.live-event.ding"}"#.to_owned(),
            ),
        ]
        .into(),
        ..RawPush::default()
    })
}

fn options(t: Arc<FakeTransport>) -> PushOptions {
    let mut o = PushOptions::new("/nonexistent".into(), TransportChoice::Custom(t));
    o.backoff_min = Duration::from_secs(1);
    o.backoff_max = Duration::from_secs(8);
    o
}

#[tokio::test(start_paused = true)]
async fn replays_in_the_grace_are_dropped_then_events_flow() {
    let t = Arc::new(FakeTransport::default());
    t.scripts.lock().unwrap().push_back(Script::Connect(vec![
        Step::Item(ding("1")),
        Step::Wait(Duration::from_millis(1500)),
        Step::Item(ding("2")),
        Step::Wait(Duration::from_secs(1)),
        Step::Item(PushItem::Heartbeat),
        Step::Item(ding("3")),
        Step::Item(ding("3")),
    ]));
    let hub = EventHub::default();
    let mut rx = hub.subscribe();
    let ring = Arc::new(FakeRing::default());
    let cancel = tokio_util::sync::CancellationToken::new();
    let (h, join) = start(
        options(t.clone()),
        ring.clone(),
        hub.clone(),
        cancel.clone(),
    );
    let ev = rx.recv().await.unwrap();
    assert_eq!(ev.ding_id, "3");
    assert_eq!((ev.kind, ev.source), (EventKind::Ding, EventSource::Push));
    let st = h
        .wait_for(Duration::from_secs(1), |s| s.messages == 4)
        .await
        .unwrap();
    assert_eq!((st.replays_ignored, st.events, st.heartbeats), (2, 1, 1));
    assert_eq!(*ring.registered.lock().unwrap(), ["tok-0"]);
    cancel.cancel();
    join.await.unwrap();
    assert_eq!(h.status().borrow().state, PushState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn reconnects_after_close_and_error_without_re_registering() {
    let t = Arc::new(FakeTransport::default());
    {
        let mut s = t.scripts.lock().unwrap();
        s.push_back(Script::Connect(vec![]));
        s.push_back(Script::Connect(vec![Step::Fail]));
        s.push_back(Script::Refuse(PushError::Timeout { what: "x" }));
    }
    let ring = Arc::new(FakeRing::default());
    let cancel = tokio_util::sync::CancellationToken::new();
    let (h, join) = start(
        options(t.clone()),
        ring.clone(),
        EventHub::default(),
        cancel.clone(),
    );
    let st = h
        .wait_for(Duration::from_secs(120), |s| s.connections == 3)
        .await
        .expect("third connection");
    assert_eq!(st.state, PushState::Connected);
    assert_eq!(t.connects.load(Ordering::SeqCst), 4, "one refused attempt");
    assert_eq!(
        ring.registered.lock().unwrap().len(),
        1,
        "same session and token"
    );
    cancel.cancel();
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn repeated_refusals_reset_the_credentials() {
    let t = Arc::new(FakeTransport::default());
    {
        let mut s = t.scripts.lock().unwrap();
        for _ in 0..3 {
            s.push_back(Script::Refuse(PushError::Refused {
                url: "ws://x".into(),
                status: 403,
            }));
        }
    }
    let ring = Arc::new(FakeRing::default());
    let cancel = tokio_util::sync::CancellationToken::new();
    let (h, join) = start(
        options(t.clone()),
        ring.clone(),
        EventHub::default(),
        cancel.clone(),
    );
    h.wait_for(Duration::from_secs(120), |s| s.connections == 1)
        .await
        .expect("connected in the end");
    // 403 means "token unknown": Ring is told again after each refusal, and
    // after the third the credentials are dropped (a new token).
    let regs = ring.registered.lock().unwrap().clone();
    assert_eq!(regs, ["tok-0", "tok-0", "tok-0", "tok-1"]);
    assert_eq!(t.resets.load(Ordering::SeqCst), 1);
    cancel.cancel();
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_transport_stops_the_listener() {
    let t = Arc::new(FakeTransport::default());
    t.scripts
        .lock()
        .unwrap()
        .push_back(Script::Refuse(PushError::NotCompiled {
            transport: "fake",
            reason: "test",
        }));
    let (h, join) = start(
        options(t),
        Arc::new(FakeRing::default()),
        EventHub::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    join.await.unwrap();
    assert_eq!(h.status().borrow().state, PushState::Unavailable);
}

/// The simulator's push bodies (`sim::push`) parse back with the real parser:
/// v2 by default, v1 `gcmData` for dings on request.
mod simulator_bodies {
    use serde_json::Value;

    use crate::base::CameraId;
    use crate::events::EventKind;
    use crate::events::push::{RawPush, payload};
    use crate::sim::push::fcm_body;
    use crate::sim::{SimEvent, SimEventKind};

    fn ev(kind: SimEventKind, person: bool) -> SimEvent {
        SimEvent {
            kind,
            camera_id: 10001,
            ding_id: 7_300_000_000_000_000_123,
            device_id: "aabbccddeeff".into(),
            camera_name: "Front Door".into(),
            device_kind: "doorbell_v4".into(),
            location_id: "loc-1".into(),
            person_detected: person,
            created_at_ms: 1_741_944_413_589,
            created_at: "2025-03-14T09:26:53.589Z".into(),
            snapshot_uuid: "0f1e2d3c-0000-4000-8000-000000000001".into(),
        }
    }

    fn parsed(body: &Value) -> payload::PushEvent {
        payload::parse(&RawPush::from_fcm_body(body).expect("data")).expect("event")
    }

    #[test]
    fn v2_bodies_carry_string_values_and_parse_back() {
        let body = fcm_body(&ev(SimEventKind::Motion, true), false);
        let data = body["data"].as_object().expect("object");
        assert!(data.values().all(Value::is_string), "{data:?}");
        let inner: Value = serde_json::from_str(data["data"].as_str().unwrap()).unwrap();
        assert_eq!(inner["event"]["ding"]["id"], "7300000000000000123");
        assert_eq!(inner["device"]["id"], 10001);
        let p = parsed(&body);
        assert_eq!(p.kind, EventKind::Motion);
        assert!(p.person_detected);
        assert_eq!(p.ding_id, "7300000000000000123");
        assert_eq!(
            p.snapshot_uuid.as_deref(),
            Some("0f1e2d3c-0000-4000-8000-000000000001")
        );
        assert_eq!(p.version, payload::PayloadVersion::V2);
    }

    #[test]
    fn v1_dings_on_request_only_for_dings() {
        let p = parsed(&fcm_body(&ev(SimEventKind::Ding, false), true));
        assert_eq!(p.version, payload::PayloadVersion::V1);
        assert_eq!(
            (p.kind, p.camera_id),
            (EventKind::Ding, CameraId::new(10001))
        );
        assert_eq!(p.ding_id, "7300000000000000123");
        let p = parsed(&fcm_body(&ev(SimEventKind::Motion, false), true));
        assert_eq!(p.version, payload::PayloadVersion::V2);
        assert!(!p.person_detected);
    }
}
