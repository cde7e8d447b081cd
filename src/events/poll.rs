//! The polling fallback: reads each online camera's newest history and feeds
//! new motion/ding events into the [`EventHub`].
//!
//! Push (FCM) is the primary intake but is known to go silent for days
//! (peers.md §3, pain point 1). This task polls `history(limit)` per camera
//! every [`PollOptions::interval`] while push is silent, and only every
//! [`PollOptions::healthy_interval`] while push is healthy
//! ([`EventHub::push_seen`] within [`PollOptions::push_window`]). The hub's
//! de-duplication drops events that push already delivered.
//!
//! Events created before this task started are never emitted. A camera whose
//! history call fails or hangs never delays the other cameras: calls run
//! concurrently, each under [`PollOptions::call_timeout`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::{CameraEvent, EventHub, EventKind, EventSource};
use crate::base::CameraId;
use crate::base::error::chain;
use crate::cameras::Directory;
use crate::ring::{HistoryPage, HistoryQuery, RingApi};

/// Tuning of the polling fallback.
#[derive(Clone, Debug)]
pub struct PollOptions {
    /// Poll period while push is silent (default 60 s, like ring-mqtt).
    pub interval: Duration,
    /// Poll period while push is healthy (default 600 s): a slow safety net.
    pub healthy_interval: Duration,
    /// Push counts as healthy if [`EventHub::push_seen`] was called within this
    /// window (default 600 s).
    pub push_window: Duration,
    /// History entries fetched per camera per poll (default 5, 1..=200).
    pub history_limit: u32,
    /// Timeout of one camera's history call (default 20 s).
    pub call_timeout: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            interval: Duration::from_secs(60),
            healthy_interval: Duration::from_secs(600),
            push_window: Duration::from_secs(600),
            history_limit: 5,
            call_timeout: Duration::from_secs(20),
        }
    }
}

/// What the polling task needs.
#[derive(Clone)]
pub struct PollDeps {
    /// Ring, for `history`.
    pub ring: Arc<dyn RingApi>,
    /// Which cameras exist and are online.
    pub directory: Directory,
    /// Where new events go.
    pub hub: EventHub,
}

/// Starts the polling task; it runs until `cancel` fires.
pub fn start(opts: PollOptions, deps: PollDeps, cancel: CancellationToken) -> JoinHandle<()> {
    let span = info_span!("event_poll");
    tokio::spawn(
        async move {
            let mut poller = Poller::new(opts, deps);
            poller.run(cancel).await;
        }
        .instrument(span),
    )
}

/// Per-camera bookkeeping.
#[derive(Default)]
struct CamPoll {
    /// At least one successful poll happened.
    polled: bool,
    /// Consecutive failures (for log rate limiting).
    failures: u32,
}

struct Poller {
    opts: PollOptions,
    deps: PollDeps,
    started_at: OffsetDateTime,
    cams: HashMap<CameraId, CamPoll>,
    last_poll: Option<Instant>,
}

impl Poller {
    fn new(opts: PollOptions, deps: PollDeps) -> Self {
        Poller {
            opts,
            deps,
            started_at: OffsetDateTime::now_utc(),
            cams: HashMap::new(),
            last_poll: None,
        }
    }

    async fn run(&mut self, cancel: CancellationToken) {
        info!(interval = ?self.opts.interval, "event polling fallback started");
        let mut push_was_healthy = false;
        loop {
            let healthy = self.deps.hub.push_healthy(self.opts.push_window);
            if healthy != push_was_healthy {
                info!(
                    push_healthy = healthy,
                    "push {}",
                    if healthy {
                        "delivers; polling backs off"
                    } else {
                        "is silent; polling takes over"
                    }
                );
                push_was_healthy = healthy;
            }
            let period = if healthy {
                self.opts.healthy_interval
            } else {
                self.opts.interval
            };
            let due = self.last_poll.is_none_or(|t| t.elapsed() >= period);
            if due {
                self.last_poll = Some(Instant::now());
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.poll_once() => {}
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.opts.interval.max(Duration::from_millis(50))) => {}
            }
        }
        debug!("event polling stopped");
    }

    /// Polls every online camera once, concurrently.
    async fn poll_once(&mut self) {
        let dir = self.deps.directory.snapshot();
        let cams: Vec<CameraId> = dir
            .cameras
            .iter()
            .filter(|e| e.camera.online)
            .map(|e| e.camera.id)
            .collect();
        let limit = self.opts.history_limit.clamp(1, 200);
        let calls = cams.iter().map(|&id| {
            let ring = self.deps.ring.clone();
            let timeout = self.opts.call_timeout;
            async move {
                let q = HistoryQuery {
                    limit,
                    older_than: None,
                };
                let r = tokio::time::timeout(timeout, ring.history(id, q)).await;
                (id, r)
            }
        });
        let results = futures::future::join_all(calls).await;
        for (id, r) in results {
            match r {
                Ok(Ok(page)) => {
                    let st = self.cams.entry(id).or_default();
                    if st.failures > 0 {
                        info!(camera = %id, "history polling recovered");
                    }
                    st.failures = 0;
                    let first = !st.polled;
                    st.polled = true;
                    self.ingest(id, page, first);
                }
                Ok(Err(e)) => self.failed(id, &chain(&e)),
                Err(_) => self.failed(id, "timed out"),
            }
        }
    }

    fn failed(&mut self, id: CameraId, why: &str) {
        let st = self.cams.entry(id).or_default();
        st.failures += 1;
        if st.failures == 1 || st.failures.is_multiple_of(10) {
            warn!(camera = %id, failures = st.failures, err = %why, "polling camera history failed");
        }
    }

    /// Emits the page's new events, oldest first.
    fn ingest(&self, camera_id: CameraId, page: HistoryPage, first_poll: bool) {
        let hub = &self.deps.hub;
        let mut emitted = HashSet::new();
        for ev in page.events.iter().rev() {
            let Some(kind) = EventKind::from_ring(&ev.kind) else {
                continue;
            };
            if hub.is_seen(&ev.id) || !emitted.insert(ev.id.clone()) {
                continue;
            }
            let fresh = match OffsetDateTime::parse(&ev.created_at, &Rfc3339) {
                Ok(t) => t >= self.started_at,
                // No usable time: trust only what appears after the first poll.
                Err(_) => !first_poll,
            };
            if !fresh {
                hub.mark_seen(&ev.id);
                continue;
            }
            let delivered = hub.publish(CameraEvent {
                camera_id,
                ding_id: ev.id.clone(),
                kind,
                person_detected: ev.person_detected,
                created_at: ev.created_at.clone(),
                snapshot_uuid: None,
                source: EventSource::Poll,
            });
            if delivered {
                info!(camera = %camera_id, ding_id = %ev.id, kind = kind.as_str(), "event found by polling");
            }
        }
    }
}
