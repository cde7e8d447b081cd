//! The camera directory: the daemon's cached view of the account's cameras.
//!
//! A supervisor task refreshes `ring_devices` every `poll_interval` (with
//! jittered backoff on errors) and publishes the list on a `watch`. Readers
//! (REST API, RTSP mounts, MQTT) never call Ring for the list themselves, so a
//! slow or failing Ring never blocks them: they keep the last good list and see
//! the last error.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
        self.cameras.iter().find(|e| {
            e.camera.id.to_string() == key
                || e.camera.device_id.eq_ignore_ascii_case(key)
                || e.slug == key
        })
    }
}

/// Handle to the directory (cheap to clone).
#[derive(Clone)]
pub struct Directory {
    rx: watch::Receiver<Snapshot>,
    refresh: Arc<tokio::sync::Notify>,
}

impl Directory {
    /// The current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.rx.borrow().clone()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.rx.clone()
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

    /// Starts the refresh task. `location_ids` filters (empty: all).
    pub fn start(
        ring: Arc<dyn RingApi>,
        poll_interval: Duration,
        location_ids: Vec<String>,
        cancel: CancellationToken,
    ) -> (Directory, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(Snapshot::default());
        let refresh = Arc::new(tokio::sync::Notify::new());
        let dir = Directory {
            rx,
            refresh: refresh.clone(),
        };
        let join = tokio::spawn(async move {
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
        });
        (dir, join)
    }
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

fn with_slugs(cams: Vec<Camera>) -> Vec<Entry> {
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

    #[test]
    fn backoff_is_bounded() {
        assert!(backoff(1, Duration::from_secs(20)) < Duration::from_secs(3));
        assert!(backoff(30, Duration::from_secs(20)) <= Duration::from_secs(23));
    }
}
