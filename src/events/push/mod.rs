//! The push intake: Ring's real-time motion/ding notifications
//! (ring-api.md §7.1–§7.2) → [`crate::events::EventHub`].
//!
//! Layout:
//! - [`transport`]: the [`PushTransport`] seam (raw FCM-style messages and
//!   heartbeats) and [`PushError`];
//! - [`fcm`] (+ `fcm/live.rs` with the `fcm` cargo feature): Google's FCM, with
//!   credentials persisted in the state directory;
//! - [`sim`]: the simulator's push socket (`/_sim/push`);
//! - [`registrar`]: registration with Ring (`PATCH clients_api/device` after
//!   each new session, per-camera subscriptions), behind [`PushRegistrar`];
//! - [`payload`]: v2 and v1 payload parsing (samples in `testdata/`);
//! - `supervisor`: the shared loop (reconnect with jittered backoff, 2 s
//!   replay grace, heartbeats → [`crate::events::EventHub::push_seen`]) and
//!   the push watchdog (events polling found that push missed → `degraded`,
//!   re-registration with backoff).
//!
//! This module must not parse anything but push payloads and must not start
//! streams or fetch snapshots; consumers react to the hub's events.

pub mod fcm;
pub mod payload;
pub mod registrar;
pub mod sim;
mod supervisor;
#[cfg(test)]
mod tests;
pub mod transport;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub use fcm::{FcmConfig, FcmOptions, FcmTransport};
pub use payload::{Ignored, PayloadVersion, PushEvent};
pub use registrar::PushRegistrar;
pub use sim::{SimTransport, SimTransportOptions};
pub use transport::{PushConnection, PushError, PushItem, PushTransport, RawPush};

use super::EventHub;

/// Which transport delivers pushes.
#[derive(Clone)]
pub enum TransportChoice {
    /// Google's FCM with [`FcmConfig`] (Ring's Android app by default);
    /// credentials are kept in [`PushOptions::state_dir`]. Needs the `fcm`
    /// cargo feature; without it the listener reports
    /// [`PushState::Unavailable`] and stops.
    Fcm(FcmConfig),
    /// The simulator's push socket.
    Simulator(SimTransportOptions),
    /// Any other transport (tests).
    Custom(Arc<dyn PushTransport>),
}

impl std::fmt::Debug for TransportChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportChoice::Fcm(c) => f.debug_tuple("Fcm").field(c).finish(),
            TransportChoice::Simulator(o) => f.debug_tuple("Simulator").field(o).finish(),
            TransportChoice::Custom(t) => f.debug_tuple("Custom").field(&t.name()).finish(),
        }
    }
}

/// Options of the push listener.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// The state directory (FCM credentials live here).
    pub state_dir: PathBuf,
    /// Where pushes come from.
    pub transport: TransportChoice,
    /// Messages within this long after connecting are replays and dropped
    /// (default 2 s, as dgreif).
    pub replay_grace: Duration,
    /// Limit of getting the token and of connecting (default 30 s).
    pub connect_timeout: Duration,
    /// Reconnect when nothing, not even a heartbeat, arrived for this long
    /// (default 40 min; FCM heartbeats come about every 30 min or less).
    pub idle_timeout: Duration,
    /// How often to check whether Ring started a new session, which needs the
    /// token registered again (default 5 min; no Ring call unless the session
    /// is due for renewal).
    pub session_check: Duration,
    /// First reconnect delay (default 1 s).
    pub backoff_min: Duration,
    /// Longest reconnect delay (default 5 min).
    pub backoff_max: Duration,
    /// Push watchdog: an event that polling found and push did not deliver
    /// within this long is a push miss (default 2 min). A miss marks push
    /// degraded and re-registers it (fresh credentials and Ring registration).
    pub watchdog_grace: Duration,
    /// How often the watchdog looks for misses (default 15 s).
    pub watchdog_interval: Duration,
    /// First delay before a watchdog re-registration; it doubles (±25 %) while
    /// pushes keep missing, up to `reregister_backoff_max` (default 10 s).
    pub reregister_backoff_min: Duration,
    /// Longest delay between watchdog re-registrations (default 1 h).
    pub reregister_backoff_max: Duration,
}

impl PushOptions {
    /// Defaults for `transport` with credentials in `state_dir`.
    pub fn new(state_dir: PathBuf, transport: TransportChoice) -> Self {
        PushOptions {
            state_dir,
            transport,
            replay_grace: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(40 * 60),
            session_check: Duration::from_secs(5 * 60),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5 * 60),
            watchdog_grace: Duration::from_secs(120),
            watchdog_interval: Duration::from_secs(15),
            reregister_backoff_min: Duration::from_secs(10),
            reregister_backoff_max: Duration::from_secs(60 * 60),
        }
    }

    fn build_transport(&self) -> Arc<dyn PushTransport> {
        match &self.transport {
            TransportChoice::Fcm(config) => Arc::new(FcmTransport::new(FcmOptions {
                state_dir: self.state_dir.clone(),
                config: config.clone(),
            })),
            TransportChoice::Simulator(o) => Arc::new(SimTransport::new(o.clone())),
            TransportChoice::Custom(t) => t.clone(),
        }
    }
}

/// Where the listener is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushState {
    /// Not started yet.
    #[default]
    Starting,
    /// Getting the token and registering it with Ring.
    Registering,
    /// Opening the connection.
    Connecting,
    /// Listening.
    Connected,
    /// Waiting to reconnect after an error or a close.
    Disconnected,
    /// This build cannot use the transport (FCM without the `fcm` feature);
    /// the listener has stopped.
    Unavailable,
    /// Shut down.
    Stopped,
}

/// The listener's status (a `watch`), for the console and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushStatus {
    /// Current state.
    pub state: PushState,
    /// Connections opened so far.
    pub connections: u64,
    /// Data messages received (including ignored ones).
    pub messages: u64,
    /// Messages dropped as replays (within the replay grace).
    pub replays_ignored: u64,
    /// New events delivered to the hub (duplicates not counted).
    pub events: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// The watchdog found events push did not deliver; cleared by the next
    /// event push delivers.
    pub degraded: bool,
    /// Events polling found that push did not deliver within the grace.
    pub missed_events: u64,
    /// Re-registrations the watchdog made (fresh credentials, Ring registration).
    pub reregistrations: u64,
    /// The most recent error, for display.
    pub last_error: Option<String>,
}

impl PushStatus {
    /// One word for displays (`/healthz`, console, MQTT): `degraded` while the
    /// watchdog says so, otherwise the state (`connected`, `disconnected`, ...).
    pub fn health(&self) -> &'static str {
        if self.degraded {
            return "degraded";
        }
        match self.state {
            PushState::Starting => "starting",
            PushState::Registering => "registering",
            PushState::Connecting => "connecting",
            PushState::Connected => "connected",
            PushState::Disconnected => "disconnected",
            PushState::Unavailable => "unavailable",
            PushState::Stopped => "stopped",
        }
    }
}

/// Handle of a running listener.
#[derive(Clone, Debug)]
pub struct PushHandle {
    status: watch::Receiver<PushStatus>,
}

impl PushHandle {
    /// The listener's status.
    pub fn status(&self) -> watch::Receiver<PushStatus> {
        self.status.clone()
    }

    /// Waits until `pred` holds for the status, at most `timeout`. Returns the
    /// status that satisfied it, or `None` on timeout.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl FnMut(&PushStatus) -> bool,
    ) -> Option<PushStatus> {
        let mut rx = self.status.clone();
        match tokio::time::timeout(timeout, rx.wait_for(pred)).await {
            Ok(Ok(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Starts the push listener: registers with Ring through `ring` (a
/// [`crate::ring::RingClient`] in production), listens on the transport of
/// `opts`, and publishes motion/ding events to `hub` with
/// [`crate::events::EventSource::Push`]. Runs until `cancel` fires (or, for
/// an unavailable transport, stops at once after logging why).
pub fn start(
    opts: PushOptions,
    ring: Arc<dyn PushRegistrar>,
    hub: EventHub,
    cancel: CancellationToken,
) -> (PushHandle, JoinHandle<()>) {
    crate::base::tls::install_default_provider();
    let transport = opts.build_transport();
    let (tx, rx) = watch::channel(PushStatus::default());
    let span = tracing::info_span!("push", transport = transport.name());
    let sup = supervisor::Supervisor::new(opts, transport, ring, hub, tx, cancel);
    let join = tokio::spawn(sup.run().instrument(span));
    (PushHandle { status: rx }, join)
}
