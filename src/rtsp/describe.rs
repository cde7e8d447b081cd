//! The DESCRIBE gate: how many clients may wait for a camera to start, and
//! the wait itself.
//!
//! A DESCRIBE of a camera that is not streaming yet waits for its first key
//! frame (bounded by [`super::RtspOptions::describe_timeout`]). That wait runs in
//! the client's `pre-describe-request` signal, on its own gst-rtsp-server client
//! thread and outside the factory's lock, so:
//!
//! - at most [`super::RtspOptions::describe_waiters`] clients wait per camera; the
//!   next ones are answered `503 Service Unavailable` at once (the first refusal
//!   per camera is logged at INFO);
//! - a waiting client that hangs up frees its place within a fraction of a
//!   second (its socket is checked while it waits);
//! - after a wait failed, DESCRIBEs of that camera fail at once for one describe
//!   timeout unless the stream became ready meanwhile.
//!
//! `construct` then finds the stream ready and answers without waiting again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use gst_rtsp_server::prelude::*;
use gstreamer_rtsp_server as gst_rtsp_server;
use tracing::{debug, info, info_span, warn};

use super::client;
use super::factory::FactoryCtx;
use super::mounts::CtxByPath;
use crate::base::log_throttle::{LogThrottle, Verdict};
use crate::media::{HubError, VideoParams};

type Status = gst_rtsp_server::gst_rtsp::RTSPStatusCode;

/// How often a waiting DESCRIBE checks whether its client hung up.
const GONE_CHECK: Duration = Duration::from_millis(200);

/// Counts the clients waiting for one camera.
pub(crate) struct DescribeGate {
    waiting: AtomicUsize,
    max: usize,
    log: LogThrottle,
}

/// One place in a [`DescribeGate`], given back on drop.
struct Place<'a>(&'a DescribeGate);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl DescribeGate {
    /// A gate letting `max` (at least 1) clients wait at once.
    pub(crate) fn new(max: usize) -> Self {
        DescribeGate {
            waiting: AtomicUsize::new(0),
            max: max.max(1),
            log: LogThrottle::new(Duration::from_secs(600)),
        }
    }

    fn enter(&self) -> Option<Place<'_>> {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Place(self))
    }

    /// Clients waiting right now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// Why a wait for the stream ended without it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WaitError {
    /// The client hung up.
    #[error("the client hung up")]
    Gone,
    /// The stream did not become ready (timeout, start failure, shutdown).
    #[error("{0}")]
    Failed(String),
}

/// Gates every DESCRIBE of `client` (see the module docs); `by_path` maps each
/// mount path to its camera.
pub(crate) fn connect(client: &gst_rtsp_server::RTSPClient, by_path: CtxByPath) {
    client.connect_pre_describe_request(move |client, ctx| {
        let fctx = ctx.uri().and_then(super::mount_of).and_then(|m| {
            let by_path = by_path.lock().unwrap_or_else(|p| p.into_inner());
            by_path.get(&m).cloned()
        });
        match fctx {
            Some(fctx) => admit(client, &fctx),
            None => Status::Ok, // not a camera: gst-rtsp-server answers 404
        }
    });
}

fn admit(client: &gst_rtsp_server::RTSPClient, ctx: &FactoryCtx) -> Status {
    if ctx.stream.video_params().is_some() {
        return Status::Ok;
    }
    let span = info_span!("rtsp", camera = %ctx.stream.id());
    let _enter = span.enter();
    if ctx.failing() {
        debug!("DESCRIBE refused at once: the camera failed to start moments ago");
        return Status::ServiceUnavailable;
    }
    let Some(place) = ctx.gate.enter() else {
        if let Verdict::Log { suppressed } = ctx.gate.log.check("full") {
            info!(
                waiting = ctx.gate.max,
                suppressed, "DESCRIBE refused: too many clients already wait for this camera"
            );
        }
        return Status::ServiceUnavailable;
    };
    debug!(
        waiting = place.0.waiting.load(Ordering::Acquire),
        "DESCRIBE waits for the camera to start"
    );
    // Starts the camera; `construct` takes its own lease right after (the hub
    // lingers in between, so the call is not hung up).
    let _lease = ctx.stream.lease();
    match wait_ready_blocking(ctx, || client::gone(client)) {
        Ok(_) => Status::Ok,
        Err(WaitError::Gone) => {
            debug!("DESCRIBE client hung up while waiting; its place is free");
            Status::ServiceUnavailable
        }
        Err(WaitError::Failed(e)) => {
            warn!(err = %e, "DESCRIBE refused: stream not ready");
            ctx.set_failing(true);
            Status::ServiceUnavailable
        }
    }
}

/// Waits (on this GStreamer thread) for the hub to have a key frame; the wait
/// itself runs on Tokio, this thread blocks on a std channel in short slices,
/// asking `gone` between them.
pub(crate) fn wait_ready_blocking(
    ctx: &FactoryCtx,
    gone: impl Fn() -> bool,
) -> Result<VideoParams, WaitError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let stream = ctx.stream.clone();
    let stop = ctx.cancel.child_token();
    let timeout = ctx.describe_timeout;
    {
        let stop = stop.clone();
        ctx.rt.spawn(async move {
            let r = tokio::select! {
                r = stream.wait_ready(timeout) => r.map_err(|e: HubError| e.to_string()),
                _ = stop.cancelled() => Err("RTSP server shutting down".to_owned()),
            };
            let _ = tx.send(r);
        });
    }
    // Ends the Tokio side too when we stop waiting early.
    let _stop = stop.drop_guard();
    let deadline = Instant::now() + timeout + Duration::from_secs(2);
    loop {
        let slice = deadline
            .saturating_duration_since(Instant::now())
            .min(GONE_CHECK);
        match rx.recv_timeout(slice) {
            Ok(r) => return r.map_err(WaitError::Failed),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(WaitError::Failed("waiting for the hub: task ended".into()));
            }
            Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                return Err(WaitError::Failed("waiting for the hub: timed out".into()));
            }
            Err(RecvTimeoutError::Timeout) => {
                if gone() {
                    return Err(WaitError::Gone);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_holds_max_places_and_gives_them_back() {
        let gate = DescribeGate::new(2);
        let a = gate.enter().expect("first");
        let b = gate.enter().expect("second");
        assert!(gate.enter().is_none(), "third is refused");
        assert_eq!(gate.waiting(), 2);
        drop(a);
        let c = gate.enter().expect("a place is free again");
        drop((b, c));
        assert_eq!(gate.waiting(), 0);
    }
}
