//! The bridge task: owns all MQTT-side state, publishes through the
//! `AsyncClient` (never awaiting the network) and handles HA commands.
//!
//! Inputs: connection events from `conn`, camera events from the
//! [`EventHub`](crate::events::EventHub), directory changes, stream status
//! changes, [`MqttHandle`](super::MqttHandle) commands, finished background
//! calls (snapshots, Ring commands) and its own timers (motion/ding off,
//! interval snapshots). Slow calls (Ring, stream control) run in a `JoinSet`
//! so the loop never blocks on them.
//!
//! Tasks: the connection task, the slow calls and one stream-status forwarder
//! per camera, each in a `JoinSet` of the bridge, joined before [`run`]
//! returns. A forwarder's token is a child of the bridge's. The connection
//! task's token is deliberately not: it must keep polling after the bridge is
//! cancelled until `offline` and DISCONNECT went out, so the bridge cancels it
//! itself after that flush.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::conn::{self, BrokerTarget, NetEvent};
use super::entities::keys;
use super::intake::Intake;
use super::state::{CamState, LastEvent, SnapshotState, Trigger, doorbell_event};
use super::stream::{StreamState, StreamStatus};
use super::topics::{Leaf, Topics};
use super::{Command, Error, MqttDeps, MqttOptions, MqttStatus};
use crate::base::CameraId;
use crate::cameras::{Entry, Snapshot as DirSnapshot};
use crate::events::replay::Replay;
use crate::events::{CameraEvent, EventKind};

/// Timeout of one Ring call made on behalf of MQTT.
pub(super) const RING_CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a clean shutdown waits for `offline` + DISCONNECT to go out.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// A finished background call.
pub(super) enum Done {
    Snapshot {
        camera_id: CameraId,
        trigger: Trigger,
        result: Result<Bytes, String>,
    },
    Switch {
        camera_id: CameraId,
        key: &'static str,
        on: bool,
        result: Result<(), String>,
    },
    Stream {
        camera_id: CameraId,
        result: Result<(), String>,
    },
    Announce {
        camera_id: CameraId,
        result: Result<crate::announce::Announcement, String>,
    },
    EventSelect {
        camera_id: CameraId,
        selecting: bool,
        result: Result<super::state::EventSelectDone, String>,
    },
}

/// Runs the bridge until `cancel`, then shuts down cleanly.
pub(crate) async fn run(
    opts: MqttOptions,
    deps: MqttDeps,
    cmd_rx: mpsc::Receiver<Command>,
    status_tx: watch::Sender<MqttStatus>,
    cancel: CancellationToken,
) -> Result<(), Error> {
    opts.validate()?;
    let target = BrokerTarget::parse(&opts.url)?;
    let topics = Topics::new(&opts);
    let (client, eventloop) = conn::client(&opts, &target, &topics.bridge_status())?;
    let broker = target.display();
    status_tx.send_modify(|s| s.broker = broker.clone());
    let span = info_span!("mqtt", broker = %broker);
    async move {
        let (net_tx, mut net_rx) = mpsc::channel(256);
        // Not a child of `cancel`: see the module docs (flush after cancel).
        let conn_stop = CancellationToken::new();
        let mut conn_task = JoinSet::new();
        conn_task.spawn(
            conn::run(
                eventloop,
                net_tx,
                broker,
                (opts.reconnect_min, opts.reconnect_max),
                conn_stop.clone(),
            )
            .in_current_span(),
        );
        let (stream_tx, stream_rx) = mpsc::channel(64);
        let mut bridge = Bridge {
            topics,
            deps,
            client,
            status_tx,
            connected: false,
            published: HashMap::new(),
            discovery: HashMap::new(),
            cameras: Vec::new(),
            cams: HashMap::new(),
            tasks: JoinSet::new(),
            forwarders: JoinSet::new(),
            cancel: cancel.clone(),
            stream_tx,
            intake: Intake::new(opts.max_message_bytes),
            opts,
        };
        bridge.run(&mut net_rx, cmd_rx, stream_rx, cancel).await;
        if bridge.shutdown() {
            // Keep the connection task polling until DISCONNECT went out.
            let flush = async {
                loop {
                    tokio::select! {
                        _ = conn_task.join_next() => break,
                        _ = net_rx.recv() => {}
                    }
                }
            };
            if tokio::time::timeout(SHUTDOWN_FLUSH, flush).await.is_err() {
                warn!("MQTT disconnect did not complete in time");
            }
        }
        conn_stop.cancel();
        conn_task.shutdown().await;
        bridge.forwarders.shutdown().await;
        bridge.tasks.shutdown().await;
        info!("MQTT bridge stopped");
        Ok(())
    }
    .instrument(span)
    .await
}

/// Waits for the next replay selection change: the camera id (pending forever
/// without a replay).
async fn replay_changed(rx: &mut Option<watch::Receiver<CameraId>>) -> Option<CameraId> {
    match rx {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(*rx.borrow_and_update()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Waits for the next push status change (pending forever without a status).
async fn push_changed(
    rx: &mut Option<watch::Receiver<crate::events::push::PushStatus>>,
) -> Result<(), watch::error::RecvError> {
    match rx {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}

pub(super) struct Bridge {
    pub(super) opts: MqttOptions,
    pub(super) topics: Topics,
    pub(super) deps: MqttDeps,
    pub(super) client: AsyncClient,
    pub(super) status_tx: watch::Sender<MqttStatus>,
    pub(super) connected: bool,
    /// Retained payloads sent in this connection, to skip unchanged ones.
    pub(super) published: HashMap<String, Bytes>,
    /// Discovery topics published per device id.
    pub(super) discovery: HashMap<String, Vec<String>>,
    pub(super) cameras: Vec<Entry>,
    pub(super) cams: HashMap<CameraId, CamState>,
    pub(super) tasks: JoinSet<Done>,
    pub(super) forwarders: JoinSet<()>,
    /// The bridge's token: parent of each camera's forwarder token.
    pub(super) cancel: CancellationToken,
    pub(super) stream_tx: mpsc::Sender<(CameraId, StreamStatus)>,
    /// Size and retain filter, throttled warnings.
    pub(super) intake: Intake,
}

impl Bridge {
    async fn run(
        &mut self,
        net_rx: &mut mpsc::Receiver<NetEvent>,
        mut cmd_rx: mpsc::Receiver<Command>,
        mut stream_rx: mpsc::Receiver<(CameraId, StreamStatus)>,
        cancel: CancellationToken,
    ) {
        let mut events = self.deps.events.subscribe();
        let mut dir_rx = self.deps.directory.subscribe();
        let mut dir_open = true;
        let mut cmd_open = true;
        let mut push_rx = self.deps.push.clone();
        let mut push_open = push_rx.is_some();
        let mut replay_rx = self.deps.replay.as_ref().map(Replay::changes);
        let mut replay_open = replay_rx.is_some();
        let initial = dir_rx.borrow_and_update().clone();
        self.on_directory(initial);
        let mut flush = tokio::time::interval(Intake::flush_period());
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self
                .cams
                .values()
                .filter_map(CamState::next_deadline)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = cancel.cancelled() => break,
                ev = net_rx.recv() => match ev {
                    Some(ev) => self.on_net(ev),
                    None => {
                        warn!("MQTT connection task ended unexpectedly");
                        break;
                    }
                },
                ev = events.recv() => match ev {
                    Ok(ev) => self.on_event(&ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "MQTT bridge fell behind the event stream");
                    }
                    Err(broadcast::error::RecvError::Closed) => {}
                },
                r = dir_rx.changed(), if dir_open => match r {
                    Ok(()) => {
                        let snap = dir_rx.borrow_and_update().clone();
                        self.on_directory(snap);
                    }
                    Err(_) => dir_open = false,
                },
                c = cmd_rx.recv(), if cmd_open => match c {
                    Some(c) => self.on_command(c),
                    None => cmd_open = false,
                },
                Some((id, status)) = stream_rx.recv() => self.on_stream_status(id, status),
                r = push_changed(&mut push_rx), if push_open => match r {
                    // The retained-payload cache skips cameras whose push
                    // topics did not change.
                    Ok(()) => {
                        let ids: Vec<CameraId> = self.cameras.iter().map(|e| e.camera.id).collect();
                        for id in ids {
                            self.publish_state(id);
                        }
                    }
                    Err(_) => push_open = false,
                },
                r = replay_changed(&mut replay_rx), if replay_open => match r {
                    Some(id) => self.refresh_event_select(id, None),
                    None => replay_open = false,
                },
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => match done {
                    Ok(done) => self.on_done(done),
                    Err(e) => warn!(err = %e, "MQTT background call panicked"),
                },
                _ = tokio::time::sleep_until(deadline) => self.on_timers(),
                _ = flush.tick() => self.intake.flush(),
            }
        }
    }

    /// Publishes `offline` and DISCONNECT; returns whether anything was sent.
    fn shutdown(&mut self) -> bool {
        for st in self.cams.values() {
            st.stop.cancel();
        }
        if !self.connected {
            return false;
        }
        let _ = self.client.try_publish(
            self.topics.bridge_status(),
            QoS::AtLeastOnce,
            true,
            "offline",
        );
        self.client.try_disconnect().is_ok()
    }

    // ---- inputs -----------------------------------------------------------

    fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Connected => {
                self.connected = true;
                self.published.clear();
                self.status_tx.send_modify(|s| {
                    s.connected = true;
                    s.connects += 1;
                    s.last_error = None;
                });
                self.retained(self.topics.bridge_status(), Bytes::from_static(b"online"));
                for filter in [
                    self.topics.command_filter(),
                    self.topics.ha_status().to_string(),
                ] {
                    if let Err(e) = self.client.try_subscribe(filter.as_str(), QoS::AtLeastOnce) {
                        warn!(filter = %filter, err = %e, "MQTT subscribe failed");
                    }
                }
                self.publish_all();
                debug!(
                    cameras = self.cameras.len(),
                    "published discovery and state"
                );
            }
            NetEvent::Disconnected(err) => {
                self.connected = false;
                self.status_tx.send_modify(|s| {
                    s.connected = false;
                    s.last_error = Some(err);
                });
            }
            NetEvent::Message {
                topic,
                payload,
                retain,
            } => self.on_message(&topic, &payload, retain),
        }
    }

    fn on_event(&mut self, ev: &CameraEvent) {
        let Some(st) = self.cams.get_mut(&ev.camera_id) else {
            debug!(
                camera = %ev.camera_id,
                "event for a camera not in the directory"
            );
            return;
        };
        let now = Instant::now();
        let last = LastEvent::from_event(ev);
        let trigger = match ev.kind {
            EventKind::Motion => {
                st.motion_until = Some(now + self.opts.motion_duration);
                st.last_motion = Some(last);
                Trigger::Motion
            }
            EventKind::Ding => {
                st.ding_until = Some(now + self.opts.ding_duration);
                st.last_ding = Some(last);
                Trigger::Ding
            }
        };
        debug!(camera = %ev.camera_id, kind = ev.kind.as_str(), ding_id = %ev.ding_id, "event");
        self.publish_state(ev.camera_id);
        // `Motion 1` and `Latest` may now name this event.
        self.refresh_event_select(ev.camera_id, None);
        if ev.kind == EventKind::Ding
            && let Some(entry) = self.cameras.iter().find(|e| e.camera.id == ev.camera_id)
        {
            let cam = &entry.camera;
            let topic = self.topics.entity(
                &cam.location_id,
                &cam.device_id,
                keys::DOORBELL,
                Leaf::State,
            );
            self.transient(topic, doorbell_event(ev));
        }
        self.trigger_snapshot(ev.camera_id, trigger);
    }

    fn on_directory(&mut self, snap: DirSnapshot) {
        if !snap.loaded {
            return;
        }
        let now = Instant::now();
        let old = std::mem::replace(&mut self.cameras, snap.cameras);
        for entry in self.cameras.clone() {
            let cam = &entry.camera;
            let prev = old.iter().find(|e| e.camera.id == cam.id);
            if !self.cams.contains_key(&cam.id) {
                let stop = self.cancel.child_token();
                let mut st = CamState::new(stop.clone());
                st.next_snapshot = self.snapshot_interval(cam).map(|_| now);
                self.start_forwarder(cam.id, stop, &mut st);
                self.cams.insert(cam.id, st);
            } else if prev.is_some_and(|p| p.camera != *cam) {
                let interval = self.snapshot_interval(cam);
                if let Some(st) = self.cams.get_mut(&cam.id) {
                    st.light_override = None;
                    st.siren_override = None;
                    st.motion_detection_override = None;
                    st.info_updated = super::state::rfc3339(time::OffsetDateTime::now_utc());
                    if interval.is_none() {
                        st.next_snapshot = None;
                    } else if st.next_snapshot.is_none() {
                        st.next_snapshot = Some(now);
                    }
                }
            }
            if prev.is_none_or(|p| p != &entry) {
                self.publish_discovery(&entry);
                self.publish_state(cam.id);
            }
            if prev.is_none_or(|p| p.camera.recordings_enabled != cam.recordings_enabled) {
                self.refresh_event_select(cam.id, None);
            }
        }
        let gone: Vec<Entry> = old
            .into_iter()
            .filter(|o| !self.cameras.iter().any(|e| e.camera.id == o.camera.id))
            .collect();
        for gone in gone {
            info!(camera = %gone.camera.id, name = %gone.camera.name, "camera removed; removing its entities");
            if let Some(st) = self.cams.remove(&gone.camera.id) {
                st.stop.cancel();
            }
            for t in self
                .discovery
                .remove(&gone.camera.device_id)
                .unwrap_or_default()
            {
                self.retained(t, Bytes::new());
            }
        }
    }

    fn start_forwarder(&mut self, camera_id: CameraId, stop: CancellationToken, st: &mut CamState) {
        let Some(control) = self.deps.stream.clone() else {
            return;
        };
        st.endpoints = control.endpoints(camera_id);
        let mut rx = control.status(camera_id);
        st.stream = rx.borrow_and_update().clone();
        let tx = self.stream_tx.clone();
        self.forwarders.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    r = rx.changed() => {
                        if r.is_err() {
                            break;
                        }
                        let s = rx.borrow_and_update().clone();
                        if tx.send((camera_id, s)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }

    fn on_stream_status(&mut self, camera_id: CameraId, status: StreamStatus) {
        if let Some(st) = self.cams.get_mut(&camera_id) {
            debug!(
                camera = %camera_id,
                status = status.state.as_str(),
                "stream status"
            );
            if !status.state.is_on() {
                st.next_stats = None;
                st.stream_stats = None;
            } else if st.next_stats.is_none() && self.deps.stream.is_some() {
                st.next_stats = Some(Instant::now() + self.opts.stream_stats_interval);
            }
            st.stream = status;
            st.stream_override = None;
            self.publish_state(camera_id);
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::TakeSnapshot { camera_id } => {
                self.trigger_snapshot(camera_id, Trigger::OnDemand)
            }
            Command::PublishSnapshot { camera_id, jpeg } => {
                if let Some(st) = self.cams.get_mut(&camera_id) {
                    st.snapshot = Some(SnapshotState::new(jpeg, Trigger::Stream));
                    self.publish_state(camera_id);
                }
            }
            Command::Republish { done } => {
                self.published.clear();
                self.publish_all();
                let _ = done.send(());
            }
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Snapshot {
                camera_id,
                trigger,
                result,
            } => self.snapshot_done(camera_id, trigger, result),
            Done::Switch {
                camera_id,
                key,
                on,
                result,
            } => self.switch_done(camera_id, key, on, result),
            Done::Stream { camera_id, result } => self.stream_done(camera_id, result),
            Done::Announce { camera_id, result } => match result {
                Ok(a) => info!(
                    camera = %camera_id,
                    played_ms = a.played_ms,
                    "announcement from MQTT played"
                ),
                Err(err) => warn!(camera = %camera_id, %err, "announcement from MQTT failed"),
            },
            Done::EventSelect {
                camera_id,
                selecting,
                result,
            } => self.event_select_done(camera_id, selecting, result),
        }
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        let mut changed = Vec::new();
        let mut due = Vec::new();
        for (&id, st) in &mut self.cams {
            let mut c = false;
            for slot in [&mut st.motion_until, &mut st.ding_until] {
                if slot.is_some_and(|u| u <= now) {
                    *slot = None;
                    c = true;
                }
            }
            if c {
                changed.push(id);
            }
            if st.next_snapshot.is_some_and(|t| t <= now) {
                st.next_snapshot = None;
                due.push(id);
            }
            if st.next_stats.is_some_and(|t| t <= now) {
                st.next_stats = Some(now + self.opts.stream_stats_interval);
                // While (re)activating the last figures stay until frames flow.
                if st.stream.state == StreamState::Active {
                    st.stream_stats = self.deps.stream.as_ref().and_then(|c| c.stats(id));
                    changed.push(id);
                }
            }
        }
        for id in changed {
            self.publish_state(id);
        }
        for id in due {
            let interval = self
                .cameras
                .iter()
                .find(|e| e.camera.id == id)
                .and_then(|e| self.snapshot_interval(&e.camera));
            if let (Some(st), Some(i)) = (self.cams.get_mut(&id), interval) {
                st.next_snapshot = Some(now + i);
            }
            self.trigger_snapshot(id, Trigger::Interval);
        }
        self.due_event_refreshes(now);
    }
}
