//! Motion and ding intake: the one place where camera events enter ring-bridge.
//!
//! Producers are the push (FCM) listener in [`push`], which calls [`EventHub::publish`] with
//! [`EventSource::Push`], and the polling fallback in [`poll`], which reads the
//! camera history. Consumers (MQTT, the console) call [`EventHub::subscribe`] and
//! get a `broadcast` of [`CameraEvent`]s. The hub de-duplicates by ding id, so an
//! event seen both by push and by polling is delivered once (ring-api.md §7.2).
//!
//! The hub itself owns no network connection. Only [`push`] holds one (the push
//! transport) and calls Ring (push registration); the polling task calls Ring
//! only through the [`crate::ring::RingApi`] handed to it.

mod audit;
pub mod poll;
pub mod push;
pub mod replay;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::base::CameraId;

pub use poll::{PollDeps, PollOptions};

/// What happened at the camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Motion (including person/other-motion subtypes).
    Motion,
    /// Someone pressed the doorbell button.
    Ding,
}

impl EventKind {
    /// `motion` or `ding`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Motion => "motion",
            EventKind::Ding => "ding",
        }
    }

    /// Maps a Ring event kind (`motion`, `ding`, `on_demand`, ...) to ours;
    /// `None` for kinds that are not motion or ding.
    pub fn from_ring(kind: &str) -> Option<EventKind> {
        match kind {
            "motion" => Some(EventKind::Motion),
            "ding" => Some(EventKind::Ding),
            _ => None,
        }
    }
}

/// Which intake path delivered an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// Real-time push (FCM).
    Push,
    /// The polling fallback (camera history).
    Poll,
}

/// One motion or ding event of one camera.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraEvent {
    /// Ring's numeric camera id (`doorbot_id`).
    pub camera_id: CameraId,
    /// Ring's ding id as a string (64-bit; never through f64). The de-duplication key.
    pub ding_id: String,
    /// Motion or ding.
    pub kind: EventKind,
    /// Ring's computer vision saw a person.
    pub person_detected: bool,
    /// RFC 3339 creation time as Ring reported it.
    pub created_at: String,
    /// Push only: `img.snapshot_uuid` (cut at the first `:`), for fetching the
    /// event's own snapshot (ring-api.md §5).
    pub snapshot_uuid: Option<String>,
    /// Which path delivered it.
    pub source: EventSource,
}

/// A set of the most recent `capacity` keys; the oldest key is forgotten first.
#[derive(Debug)]
pub struct RecentSet {
    capacity: usize,
    order: VecDeque<String>,
    keys: HashSet<String>,
}

impl RecentSet {
    /// An empty set remembering at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RecentSet {
            capacity,
            order: VecDeque::with_capacity(capacity),
            keys: HashSet::with_capacity(capacity),
        }
    }

    /// Inserts `key`; returns `false` if it was already present.
    pub fn insert(&mut self, key: &str) -> bool {
        if self.keys.contains(key) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.keys.remove(&old);
        }
        self.order.push_back(key.to_owned());
        self.keys.insert(key.to_owned());
        true
    }

    /// Whether `key` is remembered.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// Number of remembered keys (≤ capacity).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// How many ding ids the hub remembers for de-duplication.
pub const DEFAULT_DEDUPE_CAPACITY: usize = 4096;
/// Broadcast buffer: a consumer further behind than this gets `Lagged`.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 256;

struct HubInner {
    tx: broadcast::Sender<CameraEvent>,
    seen: Mutex<RecentSet>,
    last_push: Mutex<Option<Instant>>,
    audit: Mutex<audit::PushAudit>,
}

/// The event fan-out. Cheap to clone; all clones share one channel and one
/// de-duplication set.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<HubInner>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new(DEFAULT_DEDUPE_CAPACITY)
    }
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("subscribers", &self.inner.tx.receiver_count())
            .finish()
    }
}

impl EventHub {
    /// A hub remembering the last `dedupe_capacity` ding ids.
    pub fn new(dedupe_capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(DEFAULT_CHANNEL_CAPACITY);
        EventHub {
            inner: Arc::new(HubInner {
                tx,
                seen: Mutex::new(RecentSet::new(dedupe_capacity)),
                last_push: Mutex::new(None),
                audit: Mutex::new(audit::PushAudit::default()),
            }),
        }
    }

    /// Receives every event published after this call. A receiver that falls
    /// more than [`DEFAULT_CHANNEL_CAPACITY`] events behind gets
    /// `RecvError::Lagged` and continues with newer events.
    pub fn subscribe(&self) -> broadcast::Receiver<CameraEvent> {
        self.inner.tx.subscribe()
    }

    /// Delivers `event` unless its ding id was seen before. Returns whether it
    /// was delivered (`false` for a duplicate). Events from
    /// [`EventSource::Push`] also count as a sign of push health
    /// ([`EventHub::push_seen`]), and every event feeds the push watchdog's
    /// audit ([`EventHub::take_push_misses`]). Never blocks; having no
    /// subscriber is fine.
    pub fn publish(&self, event: CameraEvent) -> bool {
        if event.source == EventSource::Push {
            self.push_seen();
        }
        let fresh = self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(&event.ding_id);
        self.audit().record(&event.ding_id, event.source, fresh);
        if fresh {
            // An error only means nobody listens right now.
            let _ = self.inner.tx.send(event);
        }
        fresh
    }

    /// Whether a ding id has already been delivered (or recorded by [`EventHub::mark_seen`]).
    pub fn is_seen(&self, ding_id: &str) -> bool {
        self.inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(ding_id)
    }

    /// Records a ding id as delivered without delivering anything (e.g. events
    /// that existed before start-up). Returns `false` if it was already known.
    pub fn mark_seen(&self, ding_id: &str) -> bool {
        self.inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(ding_id)
    }

    /// Tells the hub that the push path is alive (a push arrived, or the push
    /// connection reported a heartbeat). While push is healthy the polling
    /// fallback backs off; see [`PollOptions`].
    pub fn push_seen(&self) {
        *self
            .inner
            .last_push
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// How long ago push was last seen, `None` if never.
    pub fn push_age(&self) -> Option<Duration> {
        self.inner
            .last_push
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|t| t.elapsed())
    }

    /// Ding ids that polling delivered at least `grace` ago and push has not
    /// delivered since; each is returned once.
    pub fn take_push_misses(&self, grace: Duration) -> Vec<String> {
        self.audit().take_misses(grace)
    }

    /// Starts the push audit afresh (when a push connection opens).
    pub fn reset_push_audit(&self) {
        self.audit().clear();
    }

    fn audit(&self) -> std::sync::MutexGuard<'_, audit::PushAudit> {
        self.inner
            .audit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether push was seen within `window`.
    pub fn push_healthy(&self, window: Duration) -> bool {
        self.push_age().is_some_and(|age| age <= window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn ev(id: &str, source: EventSource) -> CameraEvent {
        CameraEvent {
            camera_id: CameraId::new(10001),
            ding_id: id.into(),
            kind: EventKind::Motion,
            person_detected: false,
            created_at: "2025-01-01T00:00:00Z".into(),
            snapshot_uuid: None,
            source,
        }
    }

    #[test]
    fn recent_set_is_bounded_and_forgets_oldest() {
        let mut s = RecentSet::new(2);
        assert!(s.insert("a"));
        assert!(!s.insert("a"));
        assert!(s.insert("b"));
        assert!(s.insert("c"));
        assert_eq!(s.len(), 2);
        assert!(!s.contains("a"));
        assert!(s.contains("b") && s.contains("c"));
        assert!(s.insert("a"));
    }

    #[tokio::test]
    async fn hub_delivers_each_ding_id_once() {
        let hub = EventHub::new(16);
        let mut rx = hub.subscribe();
        assert!(hub.publish(ev("1", EventSource::Push)));
        assert!(!hub.publish(ev("1", EventSource::Poll)));
        assert!(hub.publish(ev("2", EventSource::Poll)));
        assert_eq!(rx.recv().await.unwrap().ding_id, "1");
        assert_eq!(rx.recv().await.unwrap().ding_id, "2");
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn push_health_window() {
        let hub = EventHub::default();
        let window = Duration::from_millis(40);
        assert!(!hub.push_healthy(window));
        hub.publish(ev("9", EventSource::Push));
        assert!(hub.push_healthy(window));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(!hub.push_healthy(window));
        hub.push_seen();
        assert!(hub.push_healthy(window));
    }
}
