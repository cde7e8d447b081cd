//! Recorded-event streams: `/<slug>/event` and `/<device_id>_event` play the
//! camera's selected recording ([`crate::events::replay`]) from its start.
//!
//! [`EventFactory`] is not shared: every DESCRIBE builds its own media, after
//! asking Ring for a fresh recording URL (they expire) and downloading the MP4,
//! so a new client (or a new DESCRIBE) plays the clip again, and a new selection
//! applies to the next client. A recording that cannot be had (not ready, not
//! recorded, Ring refuses) fails DESCRIBE at once with a log line naming why. The
//! `loop` query (`?loop=1` / `?loop=0`) overrides the configured default per
//! client. Media are [`EventMedia`], which [`super::connect_play_hooks`] leaves
//! paced by the clock (see [`super::clip`]).
//!
//! Thread rules as in `factory`: the vfuncs run on gst-rtsp-server client
//! threads, block only on bounded waits, never panic, and report failures as
//! `None`.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gst::glib;
use gst_rtsp_server::prelude::*;
use gst_rtsp_server::subclass::prelude::*;
use gstreamer as gst;
use gstreamer_rtsp_server as gst_rtsp_server;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn};

use super::clip;
use crate::base::CameraId;
use crate::base::error::chain;
use crate::events::replay::{Recording, Replay};
use crate::media::mp4;

/// Everything an event factory needs, set once at creation.
pub(crate) struct EventCtx {
    /// Numeric Ring camera id.
    pub(crate) camera_id: CameraId,
    /// The selections (and the recording download).
    pub(crate) replay: Replay,
    pub(crate) rt: tokio::runtime::Handle,
    /// Longest wait for Ring + the download.
    pub(crate) timeout: Duration,
    pub(crate) cancel: CancellationToken,
    /// The server's tasks (the download waits), joined at shutdown.
    pub(crate) tasks: tokio_util::task::TaskTracker,
}

/// Whether the client asked for looping: `loop=1|true|yes|on` or
/// `loop=0|false|no|off` in the query; anything else keeps `default`.
fn loop_query(query: Option<&str>, default: bool) -> bool {
    let Some(q) = query else { return default };
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        if k != "loop" {
            continue;
        }
        match v.to_ascii_lowercase().as_str() {
            "" | "1" | "true" | "yes" | "on" => return true,
            "0" | "false" | "no" | "off" => return false,
            _ => {}
        }
    }
    default
}

fn fetch_blocking(ctx: &EventCtx) -> Result<Recording, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let replay = ctx.replay.clone();
    let (id, cancel, timeout) = (ctx.camera_id, ctx.cancel.clone(), ctx.timeout);
    ctx.tasks.spawn_on(
        async move {
            let r = tokio::select! {
                r = tokio::time::timeout(timeout, replay.fetch(id, true)) => match r {
                    Ok(r) => r.map_err(|e| chain(&e)),
                    Err(_) => Err(format!("no recording within {} s", timeout.as_secs())),
                },
                _ = cancel.cancelled() => Err("RTSP server shutting down".to_owned()),
            };
            let _ = tx.send(r);
        },
        &ctx.rt,
    );
    rx.recv_timeout(timeout + Duration::from_secs(2))
        .map_err(|e| format!("waiting for the recording: {e}"))?
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct EventFactory {
        pub(super) ctx: OnceLock<EventCtx>,
        pub(super) pending: Mutex<Option<gst::Bin>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for EventFactory {
        const NAME: &'static str = "RingBridgeEventFactory";
        type Type = super::EventFactory;
        type ParentType = gst_rtsp_server::RTSPMediaFactory;
    }

    impl ObjectImpl for EventFactory {}

    impl RTSPMediaFactoryImpl for EventFactory {
        fn construct(
            &self,
            url: &gst_rtsp_server::gst_rtsp::RTSPUrl,
        ) -> Option<gst_rtsp_server::RTSPMedia> {
            let ctx = self.ctx.get()?;
            let uri = url.request_uri();
            let span = info_span!("rtsp_event", camera = %ctx.camera_id, uri = %uri);
            let _enter = span.enter();
            let query = url::Url::parse(uri.as_str()).ok();
            let looping = loop_query(
                query.as_ref().and_then(|u| u.query()),
                ctx.replay.options().loop_default,
            );
            let rec = match fetch_blocking(ctx) {
                Ok(r) => r,
                Err(e) => {
                    warn!(err = %e, "event stream refused: recording unavailable");
                    return None;
                }
            };
            let info = match mp4::probe(&rec.mp4) {
                Ok(i) => i,
                Err(e) => {
                    warn!(event = %rec.event.id, err = %e, "event stream refused: recording is not a usable MP4");
                    return None;
                }
            };
            let clip = match clip::demux(rec.mp4.clone(), &info) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    warn!(event = %rec.event.id, err = %e, "event stream refused: cannot demux the recording");
                    return None;
                }
            };
            let bin = match clip::build_bin(&clip, looping) {
                Ok(b) => b,
                Err(e) => {
                    error!(err = %e, "cannot build event media elements (GStreamer plugins missing?)");
                    return None;
                }
            };
            info!(
                event = %rec.event.id,
                kind = %rec.event.kind,
                seconds = clip.duration().seconds_f64(),
                audio = clip.has_audio(),
                looping,
                "playing recorded event"
            );
            *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(bin);
            let media = self.parent_construct(url);
            if media.is_none() {
                *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            media
        }

        fn create_element(
            &self,
            _url: &gst_rtsp_server::gst_rtsp::RTSPUrl,
        ) -> Option<gst::Element> {
            let bin = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if bin.is_none() {
                error!("event create_element called outside construct");
            }
            bin.map(|b| b.upcast())
        }
    }

    #[derive(Default)]
    pub struct EventMedia;

    #[glib::object_subclass]
    impl ObjectSubclass for EventMedia {
        const NAME: &'static str = "RingBridgeEventMedia";
        type Type = super::EventMedia;
        type ParentType = gst_rtsp_server::RTSPMedia;
    }

    impl ObjectImpl for EventMedia {}
    impl RTSPMediaImpl for EventMedia {}
}

glib::wrapper! {
    /// Media factory of one camera's event stream; see the module docs.
    pub struct EventFactory(ObjectSubclass<imp::EventFactory>)
        @extends gst_rtsp_server::RTSPMediaFactory;
}

glib::wrapper! {
    /// One client's playback of a recording (never shared).
    pub struct EventMedia(ObjectSubclass<imp::EventMedia>)
        @extends gst_rtsp_server::RTSPMedia;
}

impl EventFactory {
    /// A factory playing the selected recording of `ctx.camera_id`.
    pub(crate) fn new(ctx: EventCtx) -> Self {
        let f: EventFactory = glib::Object::new();
        // A fresh object: the cell is empty, so this cannot fail.
        let _ = f.imp().ctx.set(ctx);
        f.set_shared(false);
        f.set_media_gtype(EventMedia::static_type());
        f
    }
}

/// The mount paths of a camera's event stream: `/<slug>/event` and
/// `/<device_id>_event`.
pub(crate) fn event_paths(slug: &str, device_id: &str) -> [String; 2] {
    [format!("/{slug}/event"), format!("/{device_id}_event")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_query_overrides_the_default() {
        assert!(!loop_query(None, false));
        assert!(loop_query(None, true));
        assert!(loop_query(Some("loop=1"), false));
        assert!(loop_query(Some("a=b&loop"), false));
        assert!(!loop_query(Some("loop=0"), true));
        assert!(loop_query(Some("loop=maybe"), true));
        assert_eq!(
            event_paths("front-door", "a4c1"),
            ["/front-door/event".to_owned(), "/a4c1_event".to_owned()]
        );
    }
}
