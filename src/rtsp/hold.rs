//! A shared media outlives its last client by a moment.
//!
//! gst-rtsp-server 1.22 unprepares a media when its last client leaves (a
//! DESCRIBE-only probe included) but keeps it in the factory's cache until the
//! unprepare has finished; a client that finds it there in between gets 503
//! ("can not reuse media"). ffprobe-then-ffmpeg scripts and NVRs that probe
//! before they connect do exactly that. So each shared media takes one prepare
//! count of its own when it is first prepared ([`take`], on the client thread
//! that prepared it, before that client can leave) and gives it back
//! ([`release_when_idle`]) once no client has played it for [`IDLE_FOR`]: first
//! the factory's media key moves on (new clients get a new media), then, after
//! [`GRACE`] for clients that found this one just before, the count is returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gst::glib;
use gst_rtsp_server::prelude::*;
use gstreamer as gst;
use gstreamer_rtsp_server as gst_rtsp_server;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How long a shared media stays prepared with no client playing it.
pub(crate) const IDLE_FOR: Duration = Duration::from_secs(1);
/// Between moving the media key on and giving the count back.
pub(crate) const GRACE: Duration = Duration::from_millis(500);
/// How often the media's transports are looked at.
const POLL: Duration = Duration::from_millis(250);

/// Takes one prepare count on `media` (already prepared). Call on the client
/// thread that prepared it, inside that client's request.
pub(crate) fn take(media: &gst_rtsp_server::RTSPMedia) -> bool {
    // `prepare` wants a media thread even when it only counts the call (it then
    // stops it): one from the client's pool, which ends by itself once stopped.
    let thread = gst_rtsp_server::RTSPContext::with_current_context(|c| {
        let pool = c.client()?.thread_pool()?;
        pool.thread(gst_rtsp_server::RTSPThreadType::Media, c)
    })
    .flatten();
    let Some(thread) = thread else {
        debug!("no client request in progress; the shared RTSP media is not held");
        return false;
    };
    match media.prepare(Some(thread)) {
        Ok(()) => true,
        Err(e) => {
            warn!(err = %e, "cannot hold the shared RTSP media; it ends with its last client");
            false
        }
    }
}

/// Gives the count taken by [`take`] back once `media` has had no playing
/// client for [`IDLE_FOR`] (or at shutdown), after moving `generation` on.
pub(crate) async fn release_when_idle(
    media: glib::WeakRef<gst_rtsp_server::RTSPMedia>,
    generation: Arc<AtomicU64>,
    cancel: CancellationToken,
) {
    let mut idle = Duration::ZERO;
    let mut tick = tokio::time::interval(POLL);
    while idle < IDLE_FOR {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => break,
        }
        let Some(m) = media.upgrade() else { return };
        if playing(&m) {
            idle = Duration::ZERO;
        } else {
            idle += POLL;
        }
    }
    generation.fetch_add(1, Ordering::AcqRel);
    tokio::select! {
        _ = tokio::time::sleep(GRACE) => {}
        _ = cancel.cancelled() => {}
    }
    debug!("shared RTSP media idle; releasing it");
    // Unpreparing sets the pipeline to NULL: blocking work, off the runtime.
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(m) = media.upgrade() {
            let _ = m.unprepare();
        }
    })
    .await;
}

/// Whether any client has an active transport on one of `media`'s streams.
fn playing(media: &gst_rtsp_server::RTSPMedia) -> bool {
    (0..media.n_streams())
        .filter_map(|i| media.stream(i))
        .any(|s| !s.transport_filter(None).is_empty())
}
