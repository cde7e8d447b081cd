//! The push path end to end against the in-process simulator: a real
//! `RingClient` registers the push token (`PATCH clients_api/device`), the
//! simulator transport listens on `/_sim/push`, and control-API motion/dings
//! arrive on the `EventHub` with `source: Push`. Bounded waits only.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use ring_bridge::base::{CameraId, Secret};
use ring_bridge::events::push::{
    self, PushHandle, PushOptions, PushState, SimTransportOptions, TransportChoice,
};
use ring_bridge::events::{CameraEvent, EventHub, EventKind, EventSource};
use ring_bridge::ring::{RingClient, RingHosts, RingOptions};

mod common;
use common::Sim;

/// Replay grace used in these tests (the default is 2 s).
const GRACE: Duration = Duration::from_millis(60);
const EVENT_WAIT: Duration = Duration::from_secs(2);

struct Fixture {
    sim: Sim,
    client: RingClient,
    hub: EventHub,
    push: PushHandle,
    join: Option<JoinHandle<()>>,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

struct Setup {
    v1_dings: bool,
    backoff_min: Duration,
    /// Push watchdog grace (checked every 50 ms, re-registration backoff from
    /// 200 ms); `None`: the default (2 min, never reached here).
    watchdog_grace: Option<Duration>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            v1_dings: false,
            backoff_min: Duration::from_millis(50),
            watchdog_grace: None,
        }
    }
}

impl Fixture {
    async fn start(setup: Setup) -> Fixture {
        let sim = Sim::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let client = RingClient::new(RingOptions::new(
            RingHosts::simulator(&sim.handle.url()),
            dir.path().to_owned(),
        ))
        .expect("client");
        client
            .login_refresh_token(Secret::new(sim.handle.bootstrap_refresh_token()))
            .await
            .expect("login");
        let hub = EventHub::default();
        let mut opts = PushOptions::new(
            dir.path().to_owned(),
            TransportChoice::Simulator(SimTransportOptions {
                base_url: sim.handle.url(),
                v1_dings: setup.v1_dings,
                heartbeat_ms: Some(100),
            }),
        );
        opts.replay_grace = GRACE;
        opts.backoff_min = setup.backoff_min;
        opts.backoff_max = setup.backoff_min * 4;
        opts.connect_timeout = Duration::from_secs(5);
        if let Some(g) = setup.watchdog_grace {
            opts.watchdog_grace = g;
            opts.watchdog_interval = Duration::from_millis(50);
            opts.reregister_backoff_min = Duration::from_millis(200);
            opts.reregister_backoff_max = Duration::from_millis(800);
        }
        let cancel = CancellationToken::new();
        let (push, join) = push::start(
            opts,
            Arc::new(client.clone()),
            hub.clone(),
            cancel.child_token(),
        );
        let fx = Fixture {
            sim,
            client,
            hub,
            push,
            join: Some(join),
            cancel,
            _dir: dir,
        };
        fx.wait_listening(1).await;
        fx
    }

    /// Waits until the `n`-th connection is up and its replay grace is over.
    async fn wait_listening(&self, n: u64) {
        let st = self
            .push
            .wait_for(Duration::from_secs(5), |s| {
                s.state == PushState::Connected && s.connections >= n
            })
            .await;
        assert!(
            st.is_some(),
            "push connected: {:?}",
            *self.push.status().borrow()
        );
        tokio::time::sleep(GRACE + Duration::from_millis(30)).await;
    }

    /// Starts the camera directory and the history poller (every 100 ms,
    /// whatever push does) on the fixture's client; returns their tasks.
    async fn start_polling(&self) -> Vec<JoinHandle<()>> {
        use ring_bridge::cameras::Directory;
        use ring_bridge::events::{PollDeps, PollOptions};

        let ring: Arc<dyn ring_bridge::ring::RingApi> = Arc::new(self.client.clone());
        let (directory, dir_join) = Directory::start(
            ring.clone(),
            ring_bridge::cameras::DirectoryOptions {
                poll_interval: Duration::from_secs(60),
                location_ids: Vec::new(),
            },
            self.cancel.child_token(),
        );
        directory.wait_loaded(Duration::from_secs(5)).await;
        let poll_opts = PollOptions {
            interval: Duration::from_millis(100),
            healthy_interval: Duration::from_millis(100),
            ..PollOptions::default()
        };
        let poll_join = ring_bridge::events::poll::start(
            poll_opts,
            PollDeps {
                ring,
                directory,
                hub: self.hub.clone(),
            },
            self.cancel.child_token(),
        );
        vec![dir_join, poll_join]
    }

    /// Triggers `what` (`motion`/`ding`) on `camera`; returns the ding id.
    async fn trigger(&self, camera: u64, what: &str, body: serde_json::Value) -> String {
        let r = self
            .sim
            .post(&format!("cameras/{camera}/{what}"), body)
            .await;
        assert!(r.status().is_success(), "trigger {what}: {}", r.status());
        let v: serde_json::Value = r.json().await.expect("json");
        v["ding_id_str"].as_str().expect("ding_id_str").to_owned()
    }

    async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(j) = self.join.take() {
            tokio::time::timeout(Duration::from_secs(5), j)
                .await
                .expect("push task stops on cancel")
                .expect("push task did not panic");
        }
        assert_eq!(self.push.status().borrow().state, PushState::Stopped);
    }
}

/// The next event for `ding_id`, skipping others, within `EVENT_WAIT`.
async fn event_for(rx: &mut broadcast::Receiver<CameraEvent>, ding_id: &str) -> CameraEvent {
    let found = tokio::time::timeout(EVENT_WAIT, async {
        loop {
            match rx.recv().await {
                Ok(ev) if ev.ding_id == ding_id => return ev,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("hub closed"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no event for ding {ding_id} within {EVENT_WAIT:?}"))
}

/// Counts events for `ding_id` arriving within `window`.
async fn count_for(
    rx: &mut broadcast::Receiver<CameraEvent>,
    ding_id: &str,
    window: Duration,
) -> usize {
    let mut n = 0;
    let _ = tokio::time::timeout(window, async {
        while let Ok(ev) = rx.recv().await {
            if ev.ding_id == ding_id {
                n += 1;
            }
        }
    })
    .await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ding_arrives_by_push() {
    let fx = Fixture::start(Setup::default()).await;
    let mut rx = fx.hub.subscribe();
    let ding = fx.trigger(10001, "ding", json!({})).await;
    let ev = event_for(&mut rx, &ding).await;
    assert_eq!(ev.kind, EventKind::Ding);
    assert_eq!(ev.source, EventSource::Push);
    assert_eq!(ev.camera_id, CameraId::new(10001));
    assert!(!ev.person_detected);
    assert!(
        ev.snapshot_uuid
            .as_deref()
            .is_some_and(|u| !u.contains(':'))
    );
    assert!(ev.created_at.ends_with('Z'), "{}", ev.created_at);
    assert!(fx.hub.push_healthy(Duration::from_secs(5)));
    // The status is updated right after the hub delivered the event.
    let st = fx
        .push
        .wait_for(Duration::from_secs(1), |s| s.events >= 1)
        .await
        .expect("status counts the event");
    assert_eq!((st.events, st.replays_ignored), (1, 0), "{st:?}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_with_person_arrives_by_push() {
    let fx = Fixture::start(Setup::default()).await;
    let mut rx = fx.hub.subscribe();
    let plain = fx.trigger(10003, "motion", json!({})).await;
    let person = fx
        .trigger(10003, "motion", json!({"person_detected": true}))
        .await;
    let ev = event_for(&mut rx, &plain).await;
    assert_eq!((ev.kind, ev.person_detected), (EventKind::Motion, false));
    let ev = event_for(&mut rx, &person).await;
    assert_eq!(ev.kind, EventKind::Motion);
    assert!(ev.person_detected);
    assert_eq!(
        (ev.camera_id, ev.source),
        (CameraId::new(10003), EventSource::Push)
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_v1_dings_arrive_too() {
    let fx = Fixture::start(Setup {
        v1_dings: true,
        ..Setup::default()
    })
    .await;
    let mut rx = fx.hub.subscribe();
    let ding = fx.trigger(10002, "ding", json!({})).await;
    let ev = event_for(&mut rx, &ding).await;
    assert_eq!(
        (ev.kind, ev.camera_id),
        (EventKind::Ding, CameraId::new(10002))
    );
    assert_eq!(ev.source, EventSource::Push);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_and_subscriptions_show_in_sim_state() {
    let fx = Fixture::start(Setup::default()).await;
    let state = fx.sim.state().await;
    assert_eq!(state["push_tokens"], 1, "{state}");
    assert!(state["requests"]["push_register"].as_u64() >= Some(1));
    let front = &state["cameras"]["10001"];
    assert_eq!(front["subscribed"], true, "doorbell subscribed to dings");
    assert_eq!(front["subscribed_motions"], true);
    let driveway = &state["cameras"]["10003"];
    assert_eq!(driveway["subscribed_motions"], true);
    // A new Ring session needs the token again; the client's own session
    // generation is what the listener watches.
    let before = fx.client.session_generation().await.expect("generation");
    fx.client.refresh_session().await.expect("new session");
    assert!(fx.client.session_generation().await.expect("generation") > before);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_fallback_does_not_duplicate_a_pushed_ding() {
    let fx = Fixture::start(Setup::default()).await;
    let polling = fx.start_polling().await;
    let mut rx = fx.hub.subscribe();
    let history_before = fx.sim.state().await["requests"]["history"]
        .as_u64()
        .unwrap_or(0);
    let ding = fx.trigger(10001, "ding", json!({})).await;
    // Long enough for several polls that see the ding in the history.
    assert_eq!(
        count_for(&mut rx, &ding, Duration::from_millis(900)).await,
        1
    );
    let history_after = fx.sim.state().await["requests"]["history"]
        .as_u64()
        .unwrap_or(0);
    assert!(history_after > history_before + 1, "the poller ran");
    assert!(fx.hub.is_seen(&ding));
    fx.stop().await;
    join_all(polling).await;
}

async fn join_all(tasks: Vec<JoinHandle<()>>) {
    for j in tasks {
        tokio::time::timeout(Duration::from_secs(5), j)
            .await
            .expect("task stops")
            .expect("no panic");
    }
}

/// Ring silently stops pushing (the socket and its heartbeats stay up): the
/// event still arrives by polling, the watchdog marks push degraded and
/// registers a fresh token, and the next event arrives by push again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_reregisters_when_ring_stops_pushing() {
    let fx = Fixture::start(Setup {
        watchdog_grace: Some(Duration::from_millis(500)),
        ..Setup::default()
    })
    .await;
    let polling = fx.start_polling().await;
    let mut rx = fx.hub.subscribe();
    let registered = fx.sim.state().await["requests"]["push_register"]
        .as_u64()
        .expect("push_register count");
    let r = fx.sim.post("push/silence", json!(null)).await;
    assert!(r.status().is_success());

    let missed = fx.trigger(10001, "ding", json!({})).await;
    let ev = event_for(&mut rx, &missed).await;
    assert_eq!(ev.source, EventSource::Poll, "push was silenced");
    let st = fx
        .push
        .wait_for(Duration::from_secs(5), |s| {
            s.degraded && s.reregistrations == 1
        })
        .await
        .expect("push marked degraded and re-registered");
    assert_eq!(st.missed_events, 1, "{st:?}");
    assert_eq!(st.health(), "degraded");

    // A fresh token went to Ring and a new connection is up.
    fx.wait_listening(2).await;
    let state = fx.sim.state().await;
    assert!(state["requests"]["push_register"].as_u64() > Some(registered));
    let push_state: serde_json::Value = reqwest::get(format!("{}_sim/push/state", fx.sim.url()))
        .await
        .expect("push state")
        .json()
        .await
        .expect("json");
    assert_eq!(push_state["dropped_silenced"], 1, "{push_state}");

    // The next event comes through push (polling may see it too; the hub
    // delivers it once) and clears `degraded`.
    let next = fx.trigger(10003, "motion", json!({})).await;
    event_for(&mut rx, &next).await;
    let st = fx
        .push
        .wait_for(Duration::from_secs(2), |s| !s.degraded)
        .await
        .expect("push delivers again");
    assert_eq!(st.reregistrations, 1, "{st:?}");
    assert_eq!(st.health(), "connected");
    fx.stop().await;
    join_all(polling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_simulator_drops_the_socket() {
    let fx = Fixture::start(Setup::default()).await;
    let r = fx.sim.post("push/drop", json!({})).await;
    let dropped: serde_json::Value = r.json().await.expect("json");
    assert_eq!(dropped["dropped"], 1);
    fx.wait_listening(2).await;
    let mut rx = fx.hub.subscribe();
    let ding = fx.trigger(10001, "ding", json!({})).await;
    let ev = event_for(&mut rx, &ding).await;
    assert_eq!(ev.source, EventSource::Push);
    let st = fx.push.status().borrow().clone();
    assert!(st.last_error.is_some(), "the drop was an error: {st:?}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_queued_while_disconnected_are_ignored_as_replays() {
    let fx = Fixture::start(Setup {
        backoff_min: Duration::from_millis(400),
        ..Setup::default()
    })
    .await;
    let mut rx = fx.hub.subscribe();
    fx.sim.post("push/drop", json!({})).await;
    // The listener waits ≥ 300 ms before reconnecting: this ding is queued.
    let ding = fx.trigger(10001, "ding", json!({})).await;
    let st = fx
        .push
        .wait_for(Duration::from_secs(5), |s| s.replays_ignored >= 1)
        .await
        .expect("the queued push was delivered on reconnect and ignored");
    assert_eq!(st.connections, 2);
    assert_eq!(
        count_for(&mut rx, &ding, Duration::from_millis(200)).await,
        0
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_mark_push_healthy() {
    let fx = Fixture::start(Setup::default()).await;
    let st = fx
        .push
        .wait_for(Duration::from_secs(3), |s| s.heartbeats >= 2)
        .await
        .expect("heartbeats every 100 ms");
    assert_eq!(st.messages, 0);
    assert!(fx.hub.push_healthy(Duration::from_secs(1)));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_tokens_are_refused() {
    let sim = Sim::start().await;
    let url = format!("ws://{}/_sim/push?token=never-registered", sim.handle.addr);
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let url = format!("ws://{}/_sim/push", sim.handle.addr);
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected 400, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_without_the_feature_reports_unavailable_and_stops() {
    if cfg!(feature = "fcm") {
        return;
    }
    let sim = Sim::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = RingClient::new(RingOptions::new(
        RingHosts::simulator(&sim.handle.url()),
        dir.path().to_owned(),
    ))
    .expect("client");
    let opts = PushOptions::new(
        dir.path().to_owned(),
        TransportChoice::Fcm(push::FcmConfig::ring_android()),
    );
    let (handle, join) = push::start(
        opts,
        Arc::new(client),
        EventHub::default(),
        CancellationToken::new(),
    );
    tokio::time::timeout(Duration::from_secs(5), join)
        .await
        .expect("stops by itself")
        .expect("no panic");
    let st = handle.status().borrow().clone();
    assert_eq!(st.state, PushState::Unavailable);
    assert!(st.last_error.is_some_and(|e| e.contains("fcm")));
}
