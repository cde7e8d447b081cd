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
//!
//! Before the camera directory's first load is mounted ([`FirstLoad`]), a
//! DESCRIBE of a path that is not mounted waits for it (bounded, at most
//! `describe_waiters` clients at once) and then goes on as above; afterwards an
//! unknown path gets 404 at once.

use gst_rtsp_server::prelude::*;
use gstreamer_rtsp_server as gst_rtsp_server;
use tracing::{debug, info, info_span, warn};

use super::client;
use super::factory::{FactoryCtx, GONE_CHECK, WaitError, wait_ready_blocking};
use super::gate::FirstLoad;
use super::mounts::CtxByPath;
use crate::base::log_throttle::Verdict;
use crate::media::ViewerKind;

type Status = gst_rtsp_server::gst_rtsp::RTSPStatusCode;

/// Gates every DESCRIBE of `client` (see the module docs); `by_path` maps each
/// live mount path to its camera.
pub(crate) fn connect(
    client: &gst_rtsp_server::RTSPClient,
    by_path: CtxByPath,
    first_load: std::sync::Arc<FirstLoad>,
) {
    client.connect_pre_describe_request(move |client, ctx| {
        let mount = ctx.uri().and_then(super::mount_of);
        let lookup = || {
            let by_path = by_path.lock().unwrap_or_else(|p| p.into_inner());
            mount.as_ref().and_then(|m| by_path.get(m).cloned())
        };
        let mut fctx = lookup();
        if fctx.is_none() && !first_load.is_done() {
            let Some(_place) = first_load.gate.enter() else {
                return Status::ServiceUnavailable;
            };
            debug!(path = ?mount, "DESCRIBE waits for the camera list to be mounted");
            if !first_load.wait(GONE_CHECK, || client::gone(client)) && client::gone(client) {
                return Status::ServiceUnavailable;
            }
            fctx = lookup();
        }
        match fctx {
            Some(fctx) => admit(client, &fctx),
            // An event path (its factory waits itself) or not a camera:
            // gst-rtsp-server answers 404.
            None => Status::Ok,
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
    let Some(_place) = ctx.gate.enter() else {
        if let Verdict::Log { suppressed } = ctx.gate.log.check("full") {
            info!(
                waiting = ctx.gate.max,
                suppressed, "DESCRIBE refused: too many clients already wait for this camera"
            );
        }
        return Status::ServiceUnavailable;
    };
    debug!(
        waiting = ctx.gate.waiting(),
        "DESCRIBE waits for the camera to start"
    );
    // Starts the camera; `construct` takes its own lease right after (the hub
    // lingers in between, so the call is not hung up).
    let _lease = ctx.stream.lease_as(ViewerKind::Rtsp);
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
