//! Harness for the MQTT integration tests: a real mosquitto on a free port
//! (killed on drop), a fake `RingApi` with the simulator's six cameras that
//! records calls, a rumqttc test subscriber with bounded waits, and a helper
//! that starts the bridge against all of that.
#![allow(dead_code)]

mod fake_ring;
pub use fake_ring::*;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ring_bridge::base::Secret;
use ring_bridge::cameras::Directory;
use ring_bridge::events::EventHub;
use ring_bridge::mqtt::{self, MqttDeps, MqttHandle, MqttOptions};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const HOME: &str = "5d1a2f3e-0001-4c6b-9a51-000000000001";
pub const CABIN: &str = "5d1a2f3e-0002-4c6b-9a51-000000000002";
/// A minimal JPEG-looking payload (SOI ... EOI), bigger than rumqttc's 10 KiB default.
pub fn jpeg(tag: u8) -> Bytes {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.extend(std::iter::repeat_n(tag, 20_000));
    v.extend([0xFF, 0xD9]);
    Bytes::from(v)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A mosquitto broker on 127.0.0.1:`port`, killed on drop.
pub struct Mosquitto {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Mosquitto {
        let mut m = Mosquitto {
            port,
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let conf: PathBuf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n",
                self.port
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (apt-get install mosquitto)");
        self.child = Some(child);
        assert!(
            wait_listening(self.port, Duration::from_secs(5)),
            "mosquitto listens"
        );
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills and starts again on the same port (all retained messages are lost).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One received message.
#[derive(Clone, Debug)]
pub struct Msg {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
}

impl Msg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("JSON payload")
    }
}

/// A test MQTT client that records everything it receives.
pub struct Subscriber {
    pub client: AsyncClient,
    msgs: Arc<Mutex<Vec<Msg>>>,
    notify: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Connects to `port` and subscribes to `filters`; returns once SubAck'd.
    pub async fn connect(port: u16, filters: &[&str]) -> Subscriber {
        let id = format!("test-sub-{}", rand::random::<u32>());
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        o.set_max_packet_size(16 << 20, 16 << 20);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut el) = AsyncClient::new(o, 100);
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let notify = Arc::new(Notify::new());
        let (m, n) = (msgs.clone(), notify.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let mut pending = filters.len();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        m.lock().unwrap().push(Msg {
                            topic: p.topic,
                            payload: p.payload,
                            retain: p.retain,
                        });
                        n.notify_waiters();
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        pending = pending.saturating_sub(1);
                        if pending == 0
                            && let Some(tx) = ready_tx.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for f in filters {
            client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), ready_rx)
            .await
            .expect("subscribed in time")
            .unwrap();
        Subscriber {
            client,
            msgs,
            notify,
            task,
        }
    }

    pub fn all(&self) -> Vec<Msg> {
        self.msgs.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.msgs.lock().unwrap().clear();
    }

    /// The last message on `topic`.
    pub fn last(&self, topic: &str) -> Option<Msg> {
        self.msgs
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m.topic == topic)
            .cloned()
    }

    /// Waits until `check` returns `Some` over the received messages.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[Msg]) -> Option<T>,
    ) -> T {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if let Some(v) = check(&self.msgs.lock().unwrap()) {
                return v;
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                if let Some(v) = check(&self.msgs.lock().unwrap()) {
                    return v;
                }
                let topics: Vec<String> = self
                    .all()
                    .iter()
                    .map(|m| format!("{} = {:.60}", m.topic, m.text()))
                    .collect();
                panic!(
                    "timed out waiting for {what}; received:\n{}",
                    topics.join("\n")
                );
            }
        }
    }

    /// Like [`Subscriber::wait_for`] but returns `None` on timeout.
    pub async fn wait_for_opt<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&[Msg]) -> Option<T>,
    ) -> Option<T> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if let Some(v) = check(&self.msgs.lock().unwrap()) {
                return Some(v);
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                return check(&self.msgs.lock().unwrap());
            }
        }
    }

    /// Waits until every discovery config the bridge publishes for the
    /// simulator's cameras under `opts` has arrived (the set comes from
    /// [`mqtt::entities::camera_entities`], so a new entity needs no test edit).
    pub async fn wait_all_discovery(&self, opts: &MqttOptions) {
        let want = discovery_topics(opts);
        self.wait_for("every discovery config", WAIT, |msgs| {
            let seen: std::collections::BTreeSet<&str> =
                msgs.iter().map(|m| m.topic.as_str()).collect();
            want.iter().all(|t| seen.contains(t.as_str())).then_some(())
        })
        .await
    }

    /// Connects a fresh subscriber and returns the retained set the broker
    /// holds under `filters`. The broker queues the retained set right after
    /// each SUBACK, before anything published later on this connection: our
    /// own marker coming back means every retained message is in.
    pub async fn retained(port: u16, filters: &[&str]) -> Vec<Msg> {
        let marker = format!("ring/test-barrier/{}", rand::random::<u32>());
        let mut all = filters.to_vec();
        all.push(&marker);
        let sub = Subscriber::connect(port, &all).await;
        sub.publish(&marker, "barrier").await;
        sub.wait_for("the barrier after the retained set", WAIT, |m| {
            m.iter().any(|m| m.topic == marker).then_some(())
        })
        .await;
        sub.all()
            .into_iter()
            .filter(|m| m.topic != marker && m.retain)
            .collect()
    }

    /// Waits until the last message on `topic` has payload `want`.
    pub async fn wait_payload(&self, topic: &str, want: &str, timeout: Duration) -> Msg {
        self.wait_for(&format!("{topic} = {want}"), timeout, |msgs| {
            msgs.iter()
                .rev()
                .find(|m| m.topic == topic)
                .filter(|m| m.payload.as_ref() == want.as_bytes())
                .cloned()
        })
        .await
    }

    /// Waits for a message on `topic` that satisfies `pred` (newest first).
    pub async fn wait_match(
        &self,
        topic: &str,
        timeout: Duration,
        pred: impl Fn(&Msg) -> bool,
    ) -> Msg {
        self.wait_for(&format!("matching message on {topic}"), timeout, |msgs| {
            msgs.iter()
                .rev()
                .find(|m| m.topic == topic && pred(m))
                .cloned()
        })
        .await
    }

    pub async fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every discovery config topic of the simulator's cameras under `opts`.
pub fn discovery_topics(opts: &MqttOptions) -> std::collections::BTreeSet<String> {
    let topics = mqtt::topics::Topics::new(opts);
    sim_cameras()
        .iter()
        .flat_map(|cam| mqtt::entities::camera_entities(&topics, opts, cam))
        .map(|e| e.topic)
        .collect()
}

/// Bridge options for tests: short durations, interval snapshots off, fast reconnect.
pub fn test_options(url: &str) -> MqttOptions {
    let mut o = MqttOptions::new(Secret::new(url.to_string()));
    o.client_id = format!("ring-bridge-test-{}", rand::random::<u32>());
    o.console_url = "http://ring-bridge.local:3000/".into();
    o.support_url = Some("https://example.invalid/ring-bridge".into());
    o.motion_duration = Duration::from_millis(400);
    o.ding_duration = Duration::from_millis(400);
    o.snapshot_interval_wired = Duration::ZERO;
    o.snapshot_interval_battery = Duration::ZERO;
    o.snapshot_min_gap = Duration::ZERO;
    o.keep_alive = Duration::from_secs(5);
    o.reconnect_min = Duration::from_millis(100);
    o.reconnect_max = Duration::from_millis(500);
    o
}

/// A running bridge with its fake Ring, directory and event hub.
pub struct Running {
    pub ring: Arc<FakeRing>,
    pub hub: EventHub,
    pub directory: Directory,
    pub handle: MqttHandle,
    pub join: tokio::task::JoinHandle<Result<(), mqtt::Error>>,
    pub cancel: CancellationToken,
}

impl Running {
    pub async fn start(opts: MqttOptions) -> Running {
        Self::start_with(opts, FakeRing::new(), None).await
    }

    pub async fn start_with(
        opts: MqttOptions,
        ring: Arc<FakeRing>,
        stream: Option<Arc<dyn mqtt::StreamControl>>,
    ) -> Running {
        let cancel = CancellationToken::new();
        let (directory, _dir_task) = Directory::start(
            ring.clone(),
            ring_bridge::cameras::DirectoryOptions {
                poll_interval: Duration::from_secs(60),
                location_ids: Vec::new(),
            },
            cancel.child_token(),
        );
        directory.wait_loaded(Duration::from_secs(5)).await;
        let hub = EventHub::default();
        let deps = MqttDeps {
            directory: directory.clone(),
            ring: ring.clone(),
            events: hub.clone(),
            stream,
            snapshots: None,
            push: None,
            announce: None,
            replay: None,
        };
        let (handle, join) = mqtt::start(opts, deps, cancel.child_token());
        let mut status = handle.status();
        tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.connected))
            .await
            .expect("bridge connects")
            .unwrap();
        Running {
            ring,
            hub,
            directory,
            handle,
            join,
            cancel,
        }
    }

    /// Clean shutdown; returns the bridge task's result.
    pub async fn stop(self) -> Result<(), mqtt::Error> {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.join)
            .await
            .expect("bridge stops in time")
            .expect("bridge task did not panic")
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub const WAIT: Duration = Duration::from_secs(5);
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
