//! Starting, waiting for and stopping viewers of both kinds against one
//! running daemon.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::viewer::{SharedLog, ViewerKind, ViewerLog, Window};
use super::whep::{self, WhepStartError};

/// The daemon as the viewers see it.
#[derive(Clone)]
pub struct Target {
    /// `http://127.0.0.1:PORT`.
    pub http_base: String,
    /// RTSP server address.
    pub rtsp: SocketAddr,
    /// Shared HTTP client.
    pub client: reqwest::Client,
    /// Set when the daemon answered 404 to a WHEP offer.
    pub whep_missing: Arc<AtomicBool>,
}

impl Target {
    /// A target for a daemon at `http` / `rtsp`.
    pub fn new(http: SocketAddr, rtsp: SocketAddr) -> anyhow::Result<Self> {
        Ok(Target {
            http_base: format!("http://{http}"),
            rtsp,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .context("building the HTTP client")?,
            whep_missing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Whether WebRTC viewers can be used (no 404 seen so far).
    pub fn whep_available(&self) -> bool {
        !self.whep_missing.load(Ordering::SeqCst)
    }

    /// Probes the WHEP endpoint with OPTIONS; a 404 marks it missing.
    pub async fn probe_whep(&self, camera: &str) -> bool {
        match whep::probe(&self.client, &self.http_base, camera).await {
            Ok(true) => true,
            Ok(false) => {
                self.whep_missing.store(true, Ordering::SeqCst);
                false
            }
            Err(e) => {
                tracing::warn!(err = %format!("{e:#}"), "WHEP probe failed");
                true
            }
        }
    }

    /// The stream state of `camera` (`inactive`, `activating`, `active`, `failed`).
    pub async fn stream_state(&self, camera: &str) -> anyhow::Result<String> {
        let v = self.live(camera).await?;
        Ok(v["status"].as_str().unwrap_or("unknown").to_string())
    }

    /// `GET /api/ring/cameras/<camera>/live`.
    async fn live(&self, camera: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self
            .client
            .get(format!("{}/api/ring/cameras/{camera}/live", self.http_base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Video RTP packets and video bytes the daemon has received from Ring for
    /// `camera` in its current session (`stats.packets_received` and
    /// `stats.video_bytes` of `GET …/live`; 0 without one).
    pub async fn ring_video_received(&self, camera: &str) -> anyhow::Result<(u64, u64)> {
        let v = self.live(camera).await?;
        let stat = |k: &str| v["stats"][k].as_u64().unwrap_or(0);
        Ok((stat("packets_received"), stat("video_bytes")))
    }

    /// Holds `camera`'s live session open without a viewer, as a user's
    /// `POST …/live/start` does (for an hour, the longest hold).
    pub async fn hold(&self, camera: &str) -> anyhow::Result<()> {
        self.client
            .post(format!(
                "{}/api/ring/cameras/{camera}/live/start",
                self.http_base
            ))
            .json(&serde_json::json!({ "duration_s": 3600 }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Ends every hold (`POST /api/ingest/stop` without a camera).
    pub async fn release_holds(&self) -> anyhow::Result<()> {
        self.client
            .post(format!("{}/api/ingest/stop", self.http_base))
            .json(&serde_json::json!({}))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Waits (at most `timeout`) until `camera` has no live session.
    pub async fn wait_inactive(&self, camera: &str, timeout: Duration) -> anyhow::Result<()> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            if self.stream_state(camera).await? == "inactive" {
                return Ok(());
            }
            if tokio::time::Instant::now() >= end {
                bail!("{camera} still has a live session after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One started viewer.
pub struct Viewer {
    /// What it recorded.
    pub log: SharedLog,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), WhepStartError>>,
}

impl Viewer {
    /// Starts a viewer of `kind` on `camera`; its clock starts now.
    pub fn start(
        t: &Target,
        kind: ViewerKind,
        camera: &str,
        window: &Window,
        late_after: Duration,
    ) -> Viewer {
        let log = ViewerLog::new(kind, camera, window.clone(), late_after);
        let cancel = CancellationToken::new();
        let task = match kind {
            ViewerKind::Rtsp => {
                let url = url::Url::parse(&format!("rtsp://{}/{camera}", t.rtsp));
                let (log, cancel) = (log.clone(), cancel.clone());
                tokio::spawn(async move {
                    let url = url.map_err(|e| anyhow::anyhow!("bad RTSP URL: {e}"))?;
                    super::rtsp::run_viewer(url, log, cancel).await;
                    Ok(())
                })
            }
            ViewerKind::Webrtc => {
                let (log, cancel) = (log.clone(), cancel.clone());
                let (client, base, cam) = (t.client.clone(), t.http_base.clone(), camera.into());
                let missing = t.whep_missing.clone();
                tokio::spawn(async move {
                    let r = whep::run_viewer(client, base, cam, log.clone(), cancel).await;
                    match &r {
                        Err(WhepStartError::Unavailable) => missing.store(true, Ordering::SeqCst),
                        Err(WhepStartError::Other(e)) => {
                            if let Ok(mut l) = log.lock() {
                                l.on_error(e);
                            }
                        }
                        Ok(()) => {}
                    }
                    r
                })
            }
        };
        Viewer { log, cancel, task }
    }

    /// Waits until the first key frame arrived (its time-to-first-frame), the
    /// viewer failed, or `timeout`.
    pub async fn first_keyframe(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(l) = self.log.lock() {
                if let Some(d) = l.first_keyframe {
                    return Ok(d);
                }
                if let Some(e) = &l.error {
                    bail!("{} viewer of {} failed: {e}", l.kind.as_str(), l.camera);
                }
            }
            if self.task.is_finished() {
                match (&mut self.task).await {
                    Ok(Err(WhepStartError::Unavailable)) => {
                        return Err(WhepStartError::Unavailable.into());
                    }
                    Ok(Err(WhepStartError::Other(e))) => return Err(e),
                    _ => bail!("viewer ended before its first key frame"),
                }
            }
            if tokio::time::Instant::now() >= end {
                bail!("no key frame within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the viewer and waits (bounded) for it to hang up.
    pub async fn stop(self) -> SharedLog {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        self.log
    }
}

/// Whether an error is the "WHEP unavailable" one.
pub fn is_whep_unavailable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<WhepStartError>()
        .is_some_and(|w| matches!(w, WhepStartError::Unavailable))
}
