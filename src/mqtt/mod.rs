//! MQTT + Home Assistant discovery: publishes every camera as an HA device and
//! turns HA commands into [`RingApi`] calls.
//!
//! Shape (style.md §D): [`start`] spawns one task that owns the rumqttc
//! `EventLoop` (`conn`) and one bridge task that owns all state and publishes
//! through the `AsyncClient` with `try_publish`, so it never waits on the
//! network. On **every** ConnAck the bridge publishes `online` (retained) on
//! the bridge status topic, re-subscribes, and republishes discovery (retained)
//! and current state; the LWT publishes `offline` there when the connection
//! dies. HA's birth message (`online` on `ha_status_topic`) also triggers a
//! republish. Topic scheme and entity list: `docs/MQTT.md`.
//!
//! Announcements (`…/announce/command`, the `text` entity "Announce") go to
//! [`crate::announce::Announcer`].
//!
//! This module must not talk to Ring except through [`RingApi`], must not
//! decode media (live snapshots come through [`SnapshotSource`]) and must never
//! log the broker URL, which carries the password.

mod bridge;
pub mod broker;
mod commands;
mod conn;
pub mod discovery;
pub mod entities;
#[cfg(test)]
mod fuzz;
mod hub_streams;
mod intake;
mod publish;
mod replay;
mod snapshots;
mod state;
pub mod stream;
pub mod topics;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::base::{CameraId, ErrorKind, ResultExt, Secret};
use crate::cameras::Directory;
use crate::events::EventHub;
use crate::ring::RingApi;

pub use broker::{BrokerChoice, ensure_local};
pub use hub_streams::HubStreams;
pub use intake::MAX_INCOMING_PACKET;
pub use stream::{
    SnapshotSource, StreamControl, StreamEndpoints, StreamError, StreamState, StreamStatus,
};

/// Options of the MQTT bridge (the daemon maps `[mqtt]` of the config file onto
/// this; tests build it directly).
#[derive(Clone, Debug)]
pub struct MqttOptions {
    /// Broker URL: `mqtt://[user:pass@]host[:port]` (default port 1883) or
    /// `mqtts://...` (default port 8883). User and password may be
    /// percent-encoded. Never logged.
    pub url: Secret<String>,
    /// MQTT client id; must be unique per broker (default `ring-bridge`).
    pub client_id: String,
    /// PEM CA bundle for `mqtts://`; default: the system bundle.
    pub ca_file: Option<PathBuf>,
    /// First topic level of everything but discovery (default `ring`).
    pub topic_prefix: String,
    /// Home Assistant discovery prefix (default `homeassistant`).
    pub discovery_prefix: String,
    /// Home Assistant birth/last-will topic (default `homeassistant/status`).
    pub ha_status_topic: String,
    /// Instance name (`[A-Za-z0-9_-]+`) so several bridges can split one
    /// account: inserted after the prefix in every topic and before every
    /// `unique_id`. Default: none.
    pub instance: Option<String>,
    /// Console URL, published as each device's `configuration_url` (empty: omitted).
    pub console_url: String,
    /// Published as the discovery `origin.support_url` (None: omitted).
    pub support_url: Option<String>,
    /// How long the motion binary sensor stays ON after a motion event
    /// (default 180 s, like ring-mqtt; Ring's own ding window is 65–180 s).
    pub motion_duration: Duration,
    /// How long the ding binary sensor stays ON after a ding (default 180 s).
    pub ding_duration: Duration,
    /// Interval snapshots for wired cameras (default 30 s; zero disables).
    pub snapshot_interval_wired: Duration,
    /// Interval snapshots for cameras running on battery (default 600 s; zero
    /// disables). Forced captures drain batteries (ring-api.md §5).
    pub snapshot_interval_battery: Duration,
    /// Minimum gap between two on-demand snapshots of one camera (default 10 s).
    pub snapshot_min_gap: Duration,
    /// Upper bound passed to [`StreamControl::start`] for the live-stream switch
    /// (default 10 min, Ring's session cap).
    pub stream_max_duration: Duration,
    /// While a stream is active, its statistics ([`StreamControl::stats`]) refresh
    /// the `stream` attributes this often (default 10 s).
    pub stream_stats_interval: Duration,
    /// MQTT keep-alive (default 30 s; at least 1 s, which rumqttc asserts).
    pub keep_alive: Duration,
    /// First reconnect delay (default 1 s); doubles per failure with ±25 % jitter.
    pub reconnect_min: Duration,
    /// Largest reconnect delay (default 60 s).
    pub reconnect_max: Duration,
    /// Larger incoming messages are dropped with a warning, the connection stays
    /// up (default 64 KiB; at most [`MAX_INCOMING_PACKET`]).
    pub max_message_bytes: usize,
}

impl MqttOptions {
    /// Defaults for everything but the broker URL.
    pub fn new(url: Secret<String>) -> Self {
        MqttOptions {
            url,
            client_id: "ring-bridge".into(),
            ca_file: None,
            topic_prefix: "ring".into(),
            discovery_prefix: "homeassistant".into(),
            ha_status_topic: "homeassistant/status".into(),
            instance: None,
            console_url: String::new(),
            support_url: None,
            motion_duration: Duration::from_secs(180),
            ding_duration: Duration::from_secs(180),
            snapshot_interval_wired: Duration::from_secs(30),
            snapshot_interval_battery: Duration::from_secs(600),
            snapshot_min_gap: Duration::from_secs(10),
            stream_max_duration: Duration::from_secs(600),
            stream_stats_interval: Duration::from_secs(10),
            keep_alive: Duration::from_secs(30),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            max_message_bytes: 64 * 1024,
        }
    }

    /// Checks the options without connecting (URL shape, topic characters,
    /// instance name, keep-alive). [`start`] calls it too.
    pub fn validate(&self) -> Result<(), Error> {
        conn::BrokerTarget::parse(&self.url)?;
        for (field, v) in [
            ("topic_prefix", &self.topic_prefix),
            ("discovery_prefix", &self.discovery_prefix),
            ("ha_status_topic", &self.ha_status_topic),
        ] {
            if v.is_empty() || v.contains(['#', '+']) || v.starts_with('/') || v.ends_with('/') {
                return Err(Error::InvalidOption {
                    field,
                    message: format!(
                        "{v:?}: need a non-empty topic without wildcards or outer '/'"
                    ),
                });
            }
        }
        if self.stream_stats_interval < Duration::from_secs(1) {
            return Err(Error::InvalidOption {
                field: "stream_stats_interval",
                message: "must be at least 1s".into(),
            });
        }
        if let Some(i) = &self.instance
            && (i.is_empty()
                || !i
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(Error::InvalidOption {
                field: "instance",
                message: format!("{i:?}: allowed characters are A-Z a-z 0-9 _ -"),
            });
        }
        if self.client_id.is_empty() {
            return Err(Error::InvalidOption {
                field: "client_id",
                message: "must not be empty".into(),
            });
        }
        if self.keep_alive < Duration::from_secs(1) {
            return Err(Error::InvalidOption {
                field: "keep_alive",
                message: "must be at least 1s".into(),
            });
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return Err(Error::InvalidOption {
                field: "reconnect_min",
                message: "need 0 < reconnect_min <= reconnect_max".into(),
            });
        }
        Ok(())
    }
}

/// What the bridge talks to.
#[derive(Clone)]
pub struct MqttDeps {
    /// The camera list (and per-camera state such as light on/off).
    pub directory: Directory,
    /// Ring, for commands and snapshots.
    pub ring: Arc<dyn RingApi>,
    /// Motion and ding events.
    pub events: EventHub,
    /// Live streams for the `stream` switch; `None`: the switch reports `failed`.
    pub stream: Option<Arc<dyn StreamControl>>,
    /// Frames of running live streams as JPEG, preferred over Ring snapshots
    /// while a stream is active (battery cameras cannot snapshot while
    /// streaming). `None`: Ring snapshots only.
    pub snapshots: Option<Arc<dyn SnapshotSource>>,
    /// The push listener's status, for each camera's `push` diagnostic
    /// sensor. `None`: the sensor reports `unknown`.
    pub push: Option<tokio::sync::watch::Receiver<crate::events::push::PushStatus>>,
    /// Plays `announce` commands on camera speakers. `None`: they are refused
    /// with a warning.
    pub announce: Option<crate::announce::Announcer>,
    /// Recorded-event selections for the `event_select` entity of cameras with
    /// recordings. `None`: selecting fails with a log line.
    pub replay: Option<crate::events::replay::Replay>,
}

/// Connection state of the bridge, for the console and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MqttStatus {
    /// Connected to the broker right now.
    pub connected: bool,
    /// Successful connections so far (ConnAcks).
    pub connects: u64,
    /// The last connection error, cleared on connect. Never contains the password.
    pub last_error: Option<String>,
    /// `host:port` of the broker.
    pub broker: String,
}

/// Errors of the MQTT bridge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker URL is malformed or has an unsupported scheme (the URL itself
    /// is not repeated: it carries the password).
    #[error("mqtt url: {0} (expected mqtt://[user:pass@]host[:port] or mqtts://...)")]
    InvalidUrl(String),
    /// Another option is invalid.
    #[error("mqtt option {field}: {message}")]
    InvalidOption {
        /// Field of [`MqttOptions`].
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("mqtt CA bundle {path}: {message}")]
    Tls {
        /// File path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The embedded broker could not be started.
    #[error("embedded MQTT broker on {addr}: {message}")]
    EmbeddedBroker {
        /// Address it should listen on.
        addr: std::net::SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// The bridge task is gone (shut down or crashed).
    #[error("the MQTT bridge is not running")]
    Stopped,
}

impl ResultExt for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidUrl(_) | Error::InvalidOption { .. } => ErrorKind::InvalidArgument,
            Error::Tls { .. } => ErrorKind::FailedPrecondition,
            Error::EmbeddedBroker { .. } => ErrorKind::Unavailable,
            Error::Stopped => ErrorKind::Cancelled,
        }
    }
}

/// Requests from [`MqttHandle`] to the bridge task.
#[derive(Debug)]
pub(crate) enum Command {
    TakeSnapshot {
        camera_id: CameraId,
    },
    PublishSnapshot {
        camera_id: CameraId,
        jpeg: bytes::Bytes,
    },
    Republish {
        done: oneshot::Sender<()>,
    },
}

/// Handle to the running bridge (cheap to clone).
#[derive(Clone, Debug)]
pub struct MqttHandle {
    tx: mpsc::Sender<Command>,
    status: watch::Receiver<MqttStatus>,
}

impl MqttHandle {
    /// Watches the connection state.
    pub fn status(&self) -> watch::Receiver<MqttStatus> {
        self.status.clone()
    }

    /// Asks for a fresh snapshot of `camera_id` (same path as the HA button).
    pub async fn take_snapshot(&self, camera_id: CameraId) -> Result<(), Error> {
        self.send(Command::TakeSnapshot { camera_id }).await
    }

    /// Publishes a JPEG from elsewhere (e.g. a live-stream frame) as the
    /// camera's snapshot (attributes `type: stream`).
    pub async fn publish_snapshot(
        &self,
        camera_id: CameraId,
        jpeg: bytes::Bytes,
    ) -> Result<(), Error> {
        self.send(Command::PublishSnapshot { camera_id, jpeg })
            .await
    }

    /// Republishes discovery and state now; returns once queued for the broker.
    pub async fn republish(&self) -> Result<(), Error> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Republish { done }).await?;
        rx.await.map_err(|_| Error::Stopped)
    }

    async fn send(&self, c: Command) -> Result<(), Error> {
        self.tx.send(c).await.map_err(|_| Error::Stopped)
    }
}

/// Starts the bridge. It runs until `cancel` fires, then publishes `offline`
/// (retained) on the bridge status topic, disconnects and returns. Aborting the
/// returned task instead drops the TCP connection, so the broker publishes the
/// LWT (`offline`). An invalid [`MqttOptions`] ends the task at once with
/// [`Error::InvalidUrl`] / [`Error::InvalidOption`] / [`Error::Tls`].
pub fn start(
    opts: MqttOptions,
    deps: MqttDeps,
    cancel: CancellationToken,
) -> (MqttHandle, JoinHandle<Result<(), Error>>) {
    let (tx, rx) = mpsc::channel(64);
    let (status_tx, status_rx) = watch::channel(MqttStatus::default());
    let handle = MqttHandle {
        tx,
        status: status_rx,
    };
    let join = tokio::spawn(bridge::run(opts, deps, rx, status_tx, cancel));
    (handle, join)
}
