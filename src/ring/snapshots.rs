//! Camera snapshots (ring-api.md §5): `GET {snapshots}snapshots/next/{id}` first,
//! and when that host refuses or fails, the clients API's request/poll cycle —
//! `POST clients_api/snapshots/timestamps` `{doorbot_ids:[id]}` asks Ring for a
//! fresh capture, the same call is polled until the capture time is newer than
//! the request, then `GET clients_api/snapshots/image/{id}` fetches it.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use url::Url;

use super::client::RingClient;
use super::request::{Body, Call};
use super::{Error, ErrorInner, Snapshot};

use crate::base::CameraId;

/// Polls of `snapshots/timestamps` after the request (python makes 3).
const POLLS: u32 = 4;
/// Pause between polls (python waits 1 s).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct Timestamps {
    #[serde(default)]
    timestamps: Vec<Timestamp>,
}

#[derive(Deserialize)]
struct Timestamp {
    doorbot_id: Option<CameraId>,
    timestamp: Option<f64>,
}

fn decode(path: &Url, detail: impl Into<String>) -> Error {
    ErrorInner::Decode {
        path: path.path().to_owned(),
        detail: detail.into(),
    }
    .into()
}

/// Whether a `snapshots/next` failure is worth the request/poll cycle: the
/// snapshot host refused (4xx other than "device offline"), failed (5xx after
/// retries) or was unreachable. An answer that is not a JPEG stays an error.
fn fallback_worthy(e: &Error) -> bool {
    matches!(
        e.inner(),
        ErrorInner::Status { .. } | ErrorInner::Transport { .. }
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RingClient {
    /// `snapshots/next`, then the request/poll cycle when that host refused,
    /// failed or was unreachable ([`fallback_worthy`]); what
    /// `RingApi::snapshot` answers.
    pub(super) async fn snapshot_with_fallback(
        &self,
        camera_id: CameraId,
    ) -> Result<Snapshot, Error> {
        match self.next_snapshot(camera_id).await {
            Err(e) if fallback_worthy(&e) => {
                tracing::debug!(camera = %camera_id, err = %e, "snapshots/next failed; requesting a snapshot");
                self.requested_snapshot(camera_id).await
            }
            r => r,
        }
    }

    /// `GET {snapshots}snapshots/next/{id}` with `Accept: image/jpeg`; the
    /// capture time comes from `x-time-millis`.
    pub(super) async fn next_snapshot(&self, camera_id: CameraId) -> Result<Snapshot, Error> {
        let url = self
            .hosts
            .snapshots
            .join(&format!("snapshots/next/{camera_id}"))
            .map_err(|e| self.bad_url(e))?;
        self.jpeg(url, camera_id).await
    }

    /// The request/poll cycle (see the module docs). A capture that does not
    /// turn up within the polls still yields the latest image, with its older
    /// `captured_at_ms`, so the caller can judge its age.
    pub(super) async fn requested_snapshot(&self, camera_id: CameraId) -> Result<Snapshot, Error> {
        let ts_url = self.clients_url("snapshots/timestamps")?;
        let requested_ms = now_ms();
        let first = self.snapshot_time(&ts_url, camera_id).await?;
        let mut latest = first;
        let fresh = |t: Option<u64>| t.is_some_and(|t| t >= requested_ms || Some(t) > first);
        let mut polls = 0;
        while !fresh(latest) && polls < POLLS {
            self.engine.sleep(POLL_INTERVAL).await?;
            latest = self.snapshot_time(&ts_url, camera_id).await?;
            polls += 1;
        }
        if !fresh(latest) {
            tracing::debug!(
                camera = %camera_id,
                polls,
                "no fresh snapshot after the request; fetching the latest"
            );
        }
        let url = self.clients_url(&format!("snapshots/image/{camera_id}"))?;
        let mut snap = self.jpeg(url, camera_id).await?;
        snap.captured_at_ms = snap.captured_at_ms.or(latest);
        Ok(snap)
    }

    /// One `POST snapshots/timestamps` (which also asks for a capture): the
    /// camera's last capture time in ms, if Ring listed it.
    async fn snapshot_time(&self, url: &Url, camera_id: CameraId) -> Result<Option<u64>, Error> {
        let body = Body::Json(serde_json::json!({ "doorbot_ids": [camera_id] }));
        let call = Call::with(Method::POST, url.clone(), body).camera(camera_id);
        let t: Timestamps = self.engine.json(&call).await?;
        Ok(t.timestamps
            .iter()
            .filter(|t| t.doorbot_id.is_none_or(|id| id == camera_id))
            .find_map(|t| t.timestamp)
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|t| t as u64))
    }

    /// A GET of a JPEG: bytes plus `x-time-millis`. Not a JPEG is a `Decode`
    /// error.
    async fn jpeg(&self, url: Url, camera_id: CameraId) -> Result<Snapshot, Error> {
        let mut call = Call::get(url.clone()).camera(camera_id);
        call.accept = "image/jpeg";
        let resp = self.engine.send(&call).await?;
        let captured_at_ms = resp
            .headers()
            .get("x-time-millis")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64);
        let jpeg = resp.bytes().await.map_err(|source| ErrorInner::Transport {
            path: url.path().to_owned(),
            source,
        })?;
        if !jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Err(decode(&url, format!("not a JPEG ({} bytes)", jpeg.len())));
        }
        Ok(Snapshot {
            jpeg,
            captured_at_ms,
        })
    }
}
