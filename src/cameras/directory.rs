//! The camera directory: the daemon's cached view of the account's cameras.
//!
//! A supervisor task refreshes `ring_devices` every `poll_interval` (with
//! jittered backoff on errors) and publishes the list on a `watch`. Readers
//! (REST API, RTSP mounts, MQTT) never call Ring for the list themselves, so a
//! slow or failing Ring never blocks them: they keep the last good list and see
//! the last error. Readers that act per camera (RTSP mounts) take
//! [`Directory::changes`]: batches of [`Change`]s, computed by diffing the
//! snapshots they see.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::base::CameraId;
use crate::base::error::chain;
use crate::ring::{Camera, RingApi};

/// One camera as the outputs see it: Ring's data plus our stable slug.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Ring's data.
    pub camera: Camera,
    /// URL-safe name, unique in this directory (e.g. `front-door`).
    pub slug: String,
}

/// A snapshot of the directory.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Cameras, in Ring's order. Empty until the first successful load.
    pub cameras: Vec<Entry>,
    /// Whether at least one load has succeeded.
    pub loaded: bool,
    /// The last refresh error, cleared on success.
    pub last_error: Option<String>,
}

impl Snapshot {
    /// Finds a camera by numeric id, hex device id or slug.
    pub fn find(&self, key: &str) -> Option<&Entry> {
        let key = key.trim();
        let id = key.parse::<CameraId>().ok();
        self.cameras.iter().find(|e| {
            id == Some(e.camera.id) || e.camera.device_id.eq_ignore_ascii_case(key) || e.slug == key
        })
    }
}

/// How the directory refreshes.
#[derive(Clone, Debug)]
pub struct DirectoryOptions {
    /// Period of `ring_devices` refreshes (errors back off, capped at this).
    pub poll_interval: Duration,
    /// Ring location ids to keep; empty: every location.
    pub location_ids: Vec<String>,
}

/// Handle to the directory (cheap to clone).
#[derive(Clone)]
pub struct Directory {
    rx: watch::Receiver<Snapshot>,
    refresh: Arc<tokio::sync::Notify>,
}

impl Directory {
    /// A handle over a snapshot channel (the refresh task or a test feed holds
    /// the sender).
    pub(super) fn from_channel(rx: watch::Receiver<Snapshot>) -> Self {
        Directory {
            rx,
            refresh: Arc::default(),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.rx.borrow().clone()
    }

    /// The camera with Ring id `id`, if listed.
    pub fn get(&self, id: CameraId) -> Option<Entry> {
        self.rx
            .borrow()
            .cameras
            .iter()
            .find(|e| e.camera.id == id)
            .cloned()
    }

    /// The camera with this numeric id, device id or slug, if listed.
    pub fn find(&self, key: &str) -> Option<Entry> {
        self.rx.borrow().find(key).cloned()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.rx.clone()
    }

    /// Per-camera changes from now on. The first batch lists every camera
    /// already known as [`Change::Added`] (none until the first load).
    pub fn changes(&self) -> Changes {
        Changes {
            rx: self.rx.clone(),
            known: Vec::new(),
            first: true,
        }
    }

    /// Asks for a refresh now (e.g. after a command changed a camera).
    pub fn refresh_now(&self) {
        self.refresh.notify_one();
    }

    /// Waits until the first load finished (successfully or not), bounded.
    pub async fn wait_loaded(&self, timeout: Duration) -> Snapshot {
        let mut rx = self.rx.clone();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| s.loaded || s.last_error.is_some()))
            .await;
        self.snapshot()
    }

    /// Starts the refresh task on its own; it runs until `cancel` fires. The
    /// daemon starts the directory through [`super::Cameras`], which owns the
    /// task; this is for tests and tools that need a directory alone.
    pub fn start(
        ring: Arc<dyn RingApi>,
        opts: DirectoryOptions,
        cancel: CancellationToken,
    ) -> (Directory, tokio::task::JoinHandle<()>) {
        let (dir, refresh) = Directory::new(ring, opts, cancel);
        (dir, tokio::spawn(refresh))
    }

    /// The directory and its refresh loop, for the caller to spawn on the
    /// tracker that owns it. The loop ends when `cancel` fires; the directory
    /// then keeps its last list and [`Changes::next`] returns `None`.
    pub fn new(
        ring: Arc<dyn RingApi>,
        opts: DirectoryOptions,
        cancel: CancellationToken,
    ) -> (Directory, impl Future<Output = ()> + Send + 'static) {
        let DirectoryOptions {
            poll_interval,
            location_ids,
        } = opts;
        let (tx, rx) = watch::channel(Snapshot::default());
        let dir = Directory::from_channel(rx);
        let refresh = dir.refresh.clone();
        let run = async move {
            let mut failures = 0u32;
            loop {
                let wait = match ring.cameras().await {
                    Ok(cams) => {
                        failures = 0;
                        let cams = filter_locations(cams, &location_ids);
                        let entries = with_slugs(cams);
                        tx.send_if_modified(|s| {
                            let changed =
                                !s.loaded || s.last_error.is_some() || s.cameras != entries;
                            if changed && !s.loaded {
                                info!(cameras = entries.len(), "camera list loaded");
                            }
                            s.cameras = entries;
                            s.loaded = true;
                            s.last_error = None;
                            changed
                        });
                        poll_interval
                    }
                    Err(e) => {
                        failures += 1;
                        let msg = chain(&e);
                        warn!(err = %msg, failures, "refreshing camera list failed");
                        tx.send_modify(|s| s.last_error = Some(msg));
                        backoff(failures, poll_interval)
                    }
                };
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                    _ = refresh.notified() => {}
                }
            }
        };
        (dir, run)
    }
}

/// One camera's change between two snapshots of the directory.
#[derive(Clone, Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a few per directory change, moved not copied; boxing buys nothing"
)]
pub enum Change {
    /// A camera appeared (or was there when [`Directory::changes`] was called).
    Added(Entry),
    /// A camera is gone.
    Removed(Entry),
    /// A camera's data or slug changed (same Ring id).
    Updated {
        /// As it was.
        old: Entry,
        /// As it is now.
        new: Entry,
    },
}

/// A stream of per-camera changes from [`Directory::changes`].
pub struct Changes {
    rx: watch::Receiver<Snapshot>,
    /// The cameras as of the last batch handed out.
    known: Vec<Entry>,
    /// Whether the current snapshot has not been looked at yet.
    first: bool,
}

impl Changes {
    /// The next non-empty batch of changes, in the directory's order (removals
    /// last). `None` once the directory stopped (its refresh task ended).
    pub async fn next(&mut self) -> Option<Vec<Change>> {
        loop {
            if !self.first && self.rx.changed().await.is_err() {
                return None;
            }
            self.first = false;
            let now = self.rx.borrow_and_update().cameras.clone();
            let batch = diff(&self.known, &now);
            self.known = now;
            if !batch.is_empty() {
                return Some(batch);
            }
        }
    }
}

/// The changes that turn `old` into `new`, keyed by Ring id.
fn diff(old: &[Entry], new: &[Entry]) -> Vec<Change> {
    let mut out = Vec::new();
    for n in new {
        match old.iter().find(|o| o.camera.id == n.camera.id) {
            None => out.push(Change::Added(n.clone())),
            Some(o) if o != n => out.push(Change::Updated {
                old: o.clone(),
                new: n.clone(),
            }),
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|n| n.camera.id == o.camera.id) {
            out.push(Change::Removed(o.clone()));
        }
    }
    out
}

/// Jittered exponential backoff: 2 s, 4 s, ... capped at `cap`.
fn backoff(failures: u32, cap: Duration) -> Duration {
    let base = Duration::from_secs(2u64.saturating_pow(failures.min(10))).min(cap);
    let jitter = rand::random::<f64>() * 0.3 + 0.85;
    base.mul_f64(jitter)
}

fn filter_locations(cams: Vec<Camera>, location_ids: &[String]) -> Vec<Camera> {
    if location_ids.is_empty() {
        return cams;
    }
    cams.into_iter()
        .filter(|c| location_ids.iter().any(|l| l == &c.location_id))
        .collect()
}

/// Turns a camera name into a URL-safe slug: `"Front Door"` → `front-door`.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Entries with unique slugs for `cams`, in order: the slug of the name, or
/// `camera-<id>` for a name without letters, suffixed with `-<id>` on a clash.
pub(super) fn with_slugs(cams: Vec<Camera>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::with_capacity(cams.len());
    for camera in cams {
        let mut slug = slugify(&camera.name);
        if slug.is_empty() || slug.chars().all(|c| c.is_ascii_digit()) {
            slug = format!("camera-{}", camera.id);
        }
        if entries.iter().any(|e| e.slug == slug) {
            slug = format!("{slug}-{}", camera.id);
        }
        entries.push(Entry { camera, slug });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Front Door"), "front-door");
        assert_eq!(slugify("  Küche / Garten!! "), "k-che-garten");
        assert_eq!(slugify("***"), "");
    }

    fn entry(id: u64, name: &str) -> Entry {
        super::super::testutil::entry(id, name)
    }

    #[test]
    fn diff_reports_added_updated_removed() {
        let a = entry(1, "A");
        let b = entry(2, "B");
        let mut b2 = b.clone();
        b2.slug = "b-renamed".into();
        let c = entry(3, "C");
        assert_eq!(
            diff(&[], &[a.clone(), b.clone()]),
            vec![Change::Added(a.clone()), Change::Added(b.clone())]
        );
        assert_eq!(
            diff(&[a.clone(), b.clone()], &[b2.clone(), c.clone()]),
            vec![
                Change::Updated {
                    old: b,
                    new: b2.clone()
                },
                Change::Added(c.clone()),
                Change::Removed(a),
            ]
        );
        assert!(diff(&[b2.clone(), c.clone()], &[b2, c]).is_empty());
    }

    #[test]
    fn find_by_id_device_id_or_slug() {
        let snap = Snapshot {
            cameras: vec![entry(10001, "Front Door"), entry(10002, "Back")],
            loaded: true,
            last_error: None,
        };
        let id = |key: &str| snap.find(key).map(|e| e.camera.id.get());
        assert_eq!(id("10002"), Some(10002));
        assert_eq!(id(" 10001 "), Some(10001));
        assert_eq!(id("000000002712"), Some(10002), "device id (hex)");
        assert_eq!(id("front-door"), Some(10001));
        // Only the exact decimal text names an id, as before the typed id.
        assert_eq!(id("010001"), None);
        assert_eq!(id("+10001"), None);
        assert_eq!(id("10003"), None);
    }

    #[tokio::test]
    async fn changes_start_with_the_current_cameras_and_end_with_the_feed() {
        let a = entry(1, "A");
        let b = entry(2, "B");
        let (dir, feed) = super::super::testutil::fixed(vec![a.clone()]);
        let mut changes = dir.changes();
        assert_eq!(changes.next().await, Some(vec![Change::Added(a.clone())]));
        feed.set(vec![a.clone(), b.clone()]);
        assert_eq!(changes.next().await, Some(vec![Change::Added(b)]));
        feed.set(vec![]);
        let removed = changes.next().await.expect("a batch");
        assert_eq!(removed.len(), 2);
        assert!(removed.iter().all(|c| matches!(c, Change::Removed(_))));
        drop(feed);
        assert_eq!(changes.next().await, None);
        assert_eq!(dir.get(CameraId::new(1)), None);
    }

    #[test]
    fn backoff_is_bounded() {
        assert!(backoff(1, Duration::from_secs(20)) < Duration::from_secs(3));
        assert!(backoff(30, Duration::from_secs(20)) <= Duration::from_secs(23));
    }
}
