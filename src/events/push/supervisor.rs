//! The push supervisor: the code path shared by every transport.
//!
//! `while !cancelled { run_once() }` with jittered exponential backoff. One
//! run: get the transport's token, register it with Ring (again after every
//! new Ring session), connect, then turn messages into
//! [`crate::events::CameraEvent`]s on the [`EventHub`] (which de-duplicates by
//! ding id) and heartbeats into [`EventHub::push_seen`]. Messages arriving in
//! the first [`PushOptions::replay_grace`] after connecting are replays of old
//! pushes and are dropped (dgreif does the same; the polling fallback covers
//! anything real among them). Every await is raced against cancellation.
//!
//! The **watchdog** (Ring pushes are known to stop silently after a day or
//! two): every [`PushOptions::watchdog_interval`] it asks the hub for events
//! polling delivered that push did not deliver within
//! [`PushOptions::watchdog_grace`] ([`EventHub::take_push_misses`]). Any miss
//! marks push `degraded`, drops the transport's credentials and the Ring
//! registration, and ends the connection; the next run registers afresh after
//! a delay that doubles while misses go on. The next event push delivers clears
//! `degraded`.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::payload::{self, Ignored};
use super::registrar::{PushRegistrar, Registration};
use super::transport::{PushConnection, PushError, PushItem, PushTransport};
use super::{PushOptions, PushState, PushStatus};
use crate::base::ResultExt as _;
use crate::base::error::chain;
use crate::events::{CameraEvent, EventHub, EventSource};

/// Doubling delay between `min` and `max`, each jittered by ±25 %.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(10));
        Backoff {
            min,
            max: max.max(min),
            current: min,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        d.mul_f64(rand::rng().random_range(0.75..=1.25))
    }

    fn reset(&mut self) {
        self.current = self.min;
    }
}

pub(super) struct Supervisor {
    pub(super) opts: PushOptions,
    pub(super) transport: Arc<dyn PushTransport>,
    pub(super) ring: Arc<dyn PushRegistrar>,
    pub(super) hub: EventHub,
    pub(super) status: watch::Sender<PushStatus>,
    pub(super) cancel: CancellationToken,
    registration: Registration,
    backoff: Backoff,
    /// Delays between watchdog re-registrations; reset when push delivers.
    reregister_backoff: Backoff,
    /// Consecutive failures in which the push service refused our credentials.
    rejections: u32,
}

/// After this many consecutive refusals the transport's credentials are
/// dropped and registered afresh.
const RESET_AFTER_REJECTIONS: u32 = 3;

/// How a connection ended without an error.
enum Ended {
    /// The peer closed it.
    Closed,
    /// Nothing (not even a heartbeat) for `idle_timeout`.
    Idle,
    /// The watchdog found missed events; credentials were dropped.
    Degraded,
}

impl Supervisor {
    pub(super) fn new(
        opts: PushOptions,
        transport: Arc<dyn PushTransport>,
        ring: Arc<dyn PushRegistrar>,
        hub: EventHub,
        status: watch::Sender<PushStatus>,
        cancel: CancellationToken,
    ) -> Self {
        let backoff = Backoff::new(opts.backoff_min, opts.backoff_max);
        let reregister_backoff =
            Backoff::new(opts.reregister_backoff_min, opts.reregister_backoff_max);
        Supervisor {
            reregister_backoff,
            opts,
            transport,
            ring,
            hub,
            status,
            cancel,
            registration: Registration::default(),
            backoff,
            rejections: 0,
        }
    }

    fn set_state(&self, state: PushState, error: Option<String>) {
        self.status.send_modify(|s| {
            s.state = state;
            if let Some(e) = error {
                s.last_error = Some(e);
            }
        });
    }

    /// Awaits `f`, failing with `Cancelled` on shutdown and `Timeout` after `limit`.
    async fn bounded<T>(
        &self,
        what: &'static str,
        limit: Duration,
        f: impl Future<Output = Result<T, PushError>>,
    ) -> Result<T, PushError> {
        tokio::select! {
            () = self.cancel.cancelled() => Err(PushError::Cancelled),
            r = tokio::time::timeout(limit, f) => r.unwrap_or(Err(PushError::Timeout { what })),
        }
    }

    pub(super) async fn run(mut self) {
        info!(transport = self.transport.name(), "push listener starting");
        while !self.cancel.is_cancelled() {
            let started = Instant::now();
            let result = self.run_once().await;
            let delay = match result {
                Err(PushError::Cancelled) => break,
                Err(e @ PushError::NotCompiled { .. }) => {
                    warn!(err = %chain(&e), "push is unavailable; relying on polling");
                    self.set_state(PushState::Unavailable, Some(chain(&e)));
                    return;
                }
                Err(e) => {
                    let kind = e.kind();
                    self.rejected(&e).await;
                    let delay = self.backoff.next_delay();
                    warn!(
                        transport = self.transport.name(),
                        err = %chain(&e),
                        kind = %kind,
                        retry_in_ms = delay.as_millis() as u64,
                        "push connection failed"
                    );
                    self.set_state(PushState::Disconnected, Some(chain(&e)));
                    delay
                }
                Ok(Ended::Degraded) => {
                    let delay = self.reregister_backoff.next_delay();
                    info!(
                        retry_in_ms = delay.as_millis() as u64,
                        "push degraded; registering afresh"
                    );
                    self.set_state(PushState::Disconnected, None);
                    delay
                }
                Ok(ended @ (Ended::Closed | Ended::Idle)) => {
                    if started.elapsed() >= self.opts.backoff_max {
                        self.backoff.reset();
                    }
                    let delay = self.backoff.next_delay();
                    let why = if matches!(ended, Ended::Closed) {
                        "closed by the peer"
                    } else {
                        "idle for too long"
                    };
                    info!(
                        retry_in_ms = delay.as_millis() as u64,
                        "push connection {why}; reconnecting"
                    );
                    self.set_state(PushState::Disconnected, None);
                    delay
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.set_state(PushState::Stopped, None);
        debug!("push listener stopped");
    }

    /// Bookkeeping after a failed run: a refused token is registered with Ring
    /// again; credentials refused repeatedly are dropped (a new FCM
    /// registration, hence a new token, follows).
    async fn rejected(&mut self, e: &PushError) {
        let refused = match e {
            PushError::Refused { status, .. } => matches!(status, 401 | 403),
            PushError::Register(_) => false,
            _ => matches!(
                e.kind(),
                crate::base::ErrorKind::PermissionDenied | crate::base::ErrorKind::Unauthenticated
            ),
        };
        if let PushError::Refused {
            status: 401 | 403, ..
        } = e
        {
            // The push peer does not know our token: tell Ring again.
            self.registration.forget();
        }
        if !refused {
            self.rejections = 0;
            return;
        }
        self.rejections += 1;
        if self.rejections >= RESET_AFTER_REJECTIONS {
            self.rejections = 0;
            self.registration.forget();
            match self.transport.reset().await {
                Ok(()) => warn!("push credentials refused repeatedly; registering afresh"),
                Err(e) => warn!(err = %chain(&e), "dropping refused push credentials failed"),
            }
        }
    }

    async fn run_once(&mut self) -> Result<Ended, PushError> {
        self.set_state(PushState::Registering, None);
        let transport = self.transport.clone();
        let token = self
            .bounded("push token", self.opts.connect_timeout, transport.token())
            .await?;
        self.register(&token).await?;
        self.set_state(PushState::Connecting, None);
        let mut conn = self
            .bounded(
                "push connect",
                self.opts.connect_timeout,
                transport.connect(),
            )
            .await?;
        let connected_at = Instant::now();
        self.rejections = 0;
        // The watchdog judges this connection by events found while it is up.
        self.hub.reset_push_audit();
        info!(transport = self.transport.name(), "push connected");
        self.status.send_modify(|s| {
            s.state = PushState::Connected;
            s.connections += 1;
        });
        self.listen(conn.as_mut(), &token, connected_at).await
    }

    async fn register(&mut self, token: &str) -> Result<bool, PushError> {
        let ring = self.ring.clone();
        let limit = self.opts.connect_timeout.max(Duration::from_secs(60));
        let cancel = self.cancel.clone();
        let reg = &mut self.registration;
        tokio::select! {
            () = cancel.cancelled() => Err(PushError::Cancelled),
            r = tokio::time::timeout(limit, reg.ensure(ring.as_ref(), token)) => {
                r.unwrap_or(Err(PushError::Timeout { what: "push registration" }))
            }
        }
    }

    async fn listen(
        &mut self,
        conn: &mut dyn PushConnection,
        token: &str,
        connected_at: Instant,
    ) -> Result<Ended, PushError> {
        let period = self.opts.session_check.max(Duration::from_millis(100));
        let mut session_check = tokio::time::interval_at(Instant::now() + period, period);
        let every = self.opts.watchdog_interval.max(Duration::from_millis(50));
        let mut watchdog = tokio::time::interval_at(Instant::now() + every, every);
        let mut last_item = Instant::now();
        enum Step {
            Item(Option<PushItem>),
            CheckSession,
            Watchdog,
        }
        loop {
            let idle_left = self.opts.idle_timeout.saturating_sub(last_item.elapsed());
            let step = tokio::select! {
                () = self.cancel.cancelled() => return Err(PushError::Cancelled),
                () = tokio::time::sleep(idle_left) => return Ok(Ended::Idle),
                _ = session_check.tick() => Step::CheckSession,
                _ = watchdog.tick() => Step::Watchdog,
                item = conn.next() => Step::Item(item?),
            };
            let item = match step {
                Step::Item(item) => item,
                Step::Watchdog => {
                    let missed = self.hub.take_push_misses(self.opts.watchdog_grace);
                    if missed.is_empty() {
                        continue;
                    }
                    self.degrade(&missed).await;
                    return Ok(Ended::Degraded);
                }
                Step::CheckSession => {
                    // A new Ring session needs the token again (ring-api.md §7.1).
                    match self.register(token).await {
                        Ok(_) => {}
                        Err(PushError::Cancelled) => return Err(PushError::Cancelled),
                        Err(e) => {
                            warn!(err = %chain(&e), "re-registering the push token failed; will retry")
                        }
                    }
                    continue;
                }
            };
            let Some(item) = item else {
                return Ok(Ended::Closed);
            };
            last_item = Instant::now();
            self.backoff.reset();
            match item {
                PushItem::Heartbeat => {
                    self.hub.push_seen();
                    self.status.send_modify(|s| s.heartbeats += 1);
                }
                PushItem::Message(raw) => {
                    self.status.send_modify(|s| s.messages += 1);
                    if connected_at.elapsed() < self.opts.replay_grace {
                        debug!(
                            message_id = raw.message_id.as_deref().unwrap_or("-"),
                            "ignoring a push right after connecting (replay)"
                        );
                        self.status.send_modify(|s| s.replays_ignored += 1);
                        continue;
                    }
                    self.deliver(&raw);
                }
            }
        }
    }

    /// Push missed `missed` (ding ids): marks it degraded and drops the
    /// transport's credentials and the Ring registration, so the next run
    /// registers afresh.
    async fn degrade(&mut self, missed: &[String]) {
        warn!(
            missed = missed.len(),
            ding_ids = %missed.join(","),
            grace_s = self.opts.watchdog_grace.as_secs_f32(),
            "push did not deliver events that polling found; push is degraded, re-registering"
        );
        self.status.send_modify(|s| {
            s.degraded = true;
            s.missed_events += missed.len() as u64;
            s.reregistrations += 1;
        });
        self.registration.forget();
        let transport = self.transport.clone();
        let reset = self
            .bounded(
                "dropping push credentials",
                self.opts.connect_timeout,
                transport.reset(),
            )
            .await;
        if let Err(e) = reset {
            warn!(err = %chain(&e), "dropping the push credentials failed; registering the old ones again");
        }
    }

    /// An event came through push: a degraded push has recovered.
    fn push_delivered(&mut self) {
        self.reregister_backoff.reset();
        let was = self.status.send_if_modified(|s| {
            let was = s.degraded;
            s.degraded = false;
            was
        });
        if was {
            info!("push delivers events again; no longer degraded");
        }
    }

    fn deliver(&mut self, raw: &super::transport::RawPush) {
        match payload::parse(raw) {
            Ok(ev) => {
                self.push_delivered();
                let (camera, ding_id, kind) = (ev.camera_id, ev.ding_id.clone(), ev.kind);
                let fresh = self.hub.publish(CameraEvent {
                    camera_id: ev.camera_id,
                    ding_id: ev.ding_id,
                    kind: ev.kind,
                    person_detected: ev.person_detected,
                    created_at: ev.created_at,
                    snapshot_uuid: ev.snapshot_uuid,
                    source: EventSource::Push,
                });
                if fresh {
                    self.status.send_modify(|s| s.events += 1);
                    info!(%camera, %ding_id, kind = kind.as_str(), "event pushed");
                } else {
                    debug!(%camera, %ding_id, "pushed event already seen");
                }
            }
            Err(Ignored::NotCameraEvent(what)) => {
                // Counts as life: Ring's push path works.
                self.hub.push_seen();
                debug!(%what, "push is not a camera event");
            }
            Err(e @ Ignored::Malformed(_)) => warn!(err = %e, "push ignored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(4));
        let d: Vec<f64> = (0..4).map(|_| b.next_delay().as_secs_f64()).collect();
        for (got, want) in d.iter().zip([1.0, 2.0, 4.0, 4.0]) {
            assert!(*got >= want * 0.75 && *got <= want * 1.25, "{d:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1250));
    }
}
