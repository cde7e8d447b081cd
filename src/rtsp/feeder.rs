//! The appsrc side of one RTSP media: builds the element bin (appsrc → the crate's
//! video payloader, appsrc → rtpopuspay; no transcoding) and the Tokio task that feeds it from a hub
//! [`crate::media::Subscriber`].
//!
//! Cost per packet matters here (`docs/PERFORMANCE.md`): every buffer pushed wakes
//! the appsrc's streaming thread. So the hub's access units (Annex-B, parameter sets
//! in front of each key frame, `alignment=au`) go straight to the payloader without an
//! `h264parse`/`h265parse` pass, and Opus is pushed only while some client receives the audio
//! stream ([`AudioGate`]): a client that sets up video only (as Retina does)
//! then costs no audio work, not even a wake-up of the feeder (it then reads the
//! hub's video-only channel).
//!
//! A camera that negotiated audio but sends none (its audio switched off in the
//! Ring app, or silent) still gets described: after [`AUDIO_PRIME_AFTER`] without an
//! Opus packet the feeder pushes one packet of silence, because gst-rtsp-server
//! prepares a media only once each of its streams has had a buffer.
//!
//! GLib/GStreamer callbacks here only send on a `watch` channel; the feeding task only
//! calls non-blocking appsrc methods. Nothing here blocks either side on the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as gst_rtsp_server;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::join::JoinGate;
use super::pay::VideoPay;
use crate::media::{CameraStream, Frame, MediaKind, RecvError, VideoCodec, ViewerKind};

/// The most bytes an appsrc queues; the leaky queue is only a safety net, because the
/// feeder already skips to the next key frame above [`HIGH_WATER_BYTES`].
const MAX_QUEUE_BYTES: u64 = 8 * 1024 * 1024;
/// Above this many queued video bytes the feeder drops frames until the next key frame
/// (a clean resync instead of appsrc dropping arbitrary frames).
const HIGH_WATER_BYTES: u64 = 4 * 1024 * 1024;
/// How often the feeder reads the appsrc's queue level against [`HIGH_WATER_BYTES`]
/// (the leaky [`MAX_QUEUE_BYTES`] covers what arrives in between).
const LEVEL_RECHECK: Duration = Duration::from_millis(100);

/// The element bin for one media, plus what the feeder needs.
pub(crate) struct MediaElements {
    /// The bin handed to gst-rtsp-server (contains `pay0` and maybe `pay1`).
    pub(crate) bin: gst::Bin,
    pub(crate) video: gst_app::AppSrc,
    pub(crate) audio: Option<gst_app::AppSrc>,
    /// Becomes true once the video appsrc asks for data (pipeline started).
    pub(crate) started: watch::Receiver<bool>,
    /// Holds joiners of a running shared media back to a key frame; it watches
    /// the video payloader's output.
    pub(crate) gate: Arc<JoinGate>,
}

fn appsrc(name: &str, caps: &gst::Caps) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .name(name)
        .caps(caps)
        .is_live(true)
        .format(gst::Format::Time)
        .do_timestamp(false)
        .max_bytes(MAX_QUEUE_BYTES)
        .leaky_type(gst_app::AppLeakyType::Downstream)
        .block(false)
        .build()
}

pub(crate) fn make(factory: &str, name: Option<&str>) -> Result<gst::Element, glib::BoolError> {
    let b = gst::ElementFactory::make(factory);
    match name {
        Some(n) => b.name(n).build(),
        None => b.build(),
    }
}

/// A `tee allow-not-linked=true`: a client may set up only some streams (Retina
/// skips Opus), and a shared media must not fail with `not-linked` on the others.
pub(crate) fn not_linked_guard() -> Result<gst::Element, glib::BoolError> {
    let tee = make("tee", None)?;
    tee.set_property("allow-not-linked", true);
    Ok(tee)
}

/// Builds `appsrc ! tee ! pay0` with the crate's video payloader ([`VideoPay`],
/// pt 96, its caps carrying the key frame's parameter sets into the SDP) and, with
/// `audio`, `appsrc ! tee ! rtpopuspay name=pay1 pt=97` inside one bin.
pub(crate) fn build_elements(
    codec: VideoCodec,
    audio: bool,
) -> Result<MediaElements, glib::BoolError> {
    let bin = gst::Bin::new();
    let caps_name = match codec {
        VideoCodec::H264 => "video/x-h264",
        VideoCodec::H265 => "video/x-h265",
    };
    let vcaps = gst::Caps::builder(caps_name)
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build();
    let video = appsrc("videosrc", &vcaps);
    let vtee = not_linked_guard()?;
    // One RTP buffer list per access unit (see `pay`).
    let pay0: gst::Element = VideoPay::new("pay0", 96, codec).upcast();
    bin.add_many([video.upcast_ref(), &vtee, &pay0])?;
    gst::Element::link_many([video.upcast_ref(), &vtee, &pay0])?;
    let gate = Arc::new(JoinGate::new(codec));
    watch_payloader(&pay0, Arc::clone(&gate));

    let (tx, started) = watch::channel(false);
    video.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |_, _| {
                tx.send_if_modified(|s| !std::mem::replace(s, true));
            })
            .build(),
    );

    let audio = if audio {
        let acaps = gst::Caps::builder("audio/x-opus")
            .field("channel-mapping-family", 0i32)
            .field("rate", 48_000i32)
            .field("channels", 2i32)
            .build();
        let asrc = appsrc("audiosrc", &acaps);
        let atee = not_linked_guard()?;
        let pay1 = make("rtpopuspay", Some("pay1"))?;
        pay1.set_property("pt", 97u32);
        bin.add_many([asrc.upcast_ref(), &atee, &pay1])?;
        gst::Element::link_many([asrc.upcast_ref(), &atee, &pay1])?;
        Some(asrc)
    } else {
        None
    };
    Ok(MediaElements {
        bin,
        video,
        audio,
        started,
        gate,
    })
}

/// Shows `gate` the first RTP packet of every sample (one NAL unit, or one FU-A
/// list) the video payloader `pay0` sends; a no-op while no joiner waits.
fn watch_payloader(pay0: &gst::Element, gate: Arc<JoinGate>) {
    let Some(pad) = pay0.static_pad("src") else {
        return;
    };
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            if !gate.watching() {
                return gst::PadProbeReturn::Ok;
            }
            let first = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => Some(b.as_ref()),
                Some(gst::PadProbeData::BufferList(l)) => l.get(0),
                _ => None,
            };
            if let Some(b) = first {
                // Header, CSRCs and a short extension, and the payload's first bytes.
                let mut head = [0u8; 96];
                let n = b.size().min(head.len());
                if b.copy_to_slice(0, &mut head[..n]).is_ok() {
                    gate.on_sample(&head[..n]);
                }
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Maps hub PTS (one continuous timeline per kind) to pipeline running time: the first
/// video key frame lands at the running time of its push, later frames keep their
/// spacing. Audio and video share the nanosecond offset.
struct Rebase {
    running_at_first: gst::ClockTime,
    first_ns: u64,
}

fn pts_ns(f: &Frame) -> u64 {
    let rate = u128::from(f.kind.clock_rate());
    u64::try_from(u128::from(f.pts) * 1_000_000_000 / rate).unwrap_or(u64::MAX)
}

fn duration_ns(f: &Frame) -> Option<gst::ClockTime> {
    (f.duration > 0).then(|| {
        gst::ClockTime::from_nseconds(
            u64::from(f.duration) * 1_000_000_000 / u64::from(f.kind.clock_rate()),
        )
    })
}

/// How long after its first video frame a media with an audio stream waits for the
/// camera's first Opus packet before it primes that stream with [`OPUS_SILENCE`].
const AUDIO_PRIME_AFTER: Duration = Duration::from_millis(500);

/// One 20 ms Opus packet of silence (TOC: CELT fullband 20 ms, one frame; then the
/// range-coded silence flag). gst-rtsp-server prepares a media only once every
/// stream has had a buffer: a camera that negotiated audio but sends none (its
/// audio switched off, or a long silence) would otherwise hold every DESCRIBE.
const OPUS_SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];

/// How often [`AudioGate`] looks at the media's transports again.
const AUDIO_GATE_RECHECK: Duration = Duration::from_millis(250);

/// Whether Opus frames should be pushed into a media: yes while its audio stream has
/// a transport (a client set it up and plays), and yes while its video stream has
/// none either (before the first PLAY: gst-rtsp-server needs the audio caps to
/// describe the media). Otherwise a video-only client would cost an appsrc wake-up,
/// payloading and an RTP session update per 20 ms Opus packet for nothing.
/// Rechecked every [`AUDIO_GATE_RECHECK`]; a client that sets up audio on a shared
/// media gets it from the next check on.
pub(crate) struct AudioGate {
    streams: Option<(gst_rtsp_server::RTSPStream, gst_rtsp_server::RTSPStream)>,
    open: bool,
    checked: Option<Instant>,
}

impl AudioGate {
    /// A gate over `media`'s streams 0 (video) and 1 (audio); always open when the
    /// media has no audio stream to look at.
    pub(crate) fn new(media: &gst_rtsp_server::RTSPMedia) -> Self {
        AudioGate {
            streams: media.stream(0).zip(media.stream(1)),
            open: true,
            checked: None,
        }
    }

    /// Whether to push audio now. Cheap: looks at the transports at most every
    /// [`AUDIO_GATE_RECHECK`].
    fn open(&mut self) -> bool {
        let Some((video, audio)) = &self.streams else {
            return true;
        };
        if self
            .checked
            .is_none_or(|t| t.elapsed() >= AUDIO_GATE_RECHECK)
        {
            self.checked = Some(Instant::now());
            let playing = |s: &gst_rtsp_server::RTSPStream| !s.transport_filter(None).is_empty();
            let open = playing(audio) || !playing(video);
            if open != self.open {
                debug!(audio = open, "RTSP audio feeding switched");
            }
            self.open = open;
        }
        self.open
    }
}

/// Feeds one media until `cancel` (media unprepared) or the pipeline stops.
pub(crate) async fn feed(
    stream: CameraStream,
    video: gst_app::AppSrc,
    audio: Option<gst_app::AppSrc>,
    mut audio_gate: AudioGate,
    mut started: watch::Receiver<bool>,
    cancel: CancellationToken,
) {
    tokio::select! {
        r = started.wait_for(|s| *s) => if r.is_err() { return },
        _ = cancel.cancelled() => return,
    }
    // Subscribe only now: frames pushed before the appsrc started would be flushed, and
    // a fresh subscriber starts with the cached GOP at its key frame.
    let mut sub = stream.subscribe_as(ViewerKind::Rtsp);
    debug!("RTSP media started; feeding from the hub");
    let mut rebase: Option<Rebase> = None;
    let mut skip_to_key = false;
    let mut level_checked: Option<Instant> = None;
    // The audio stream still waits for its first buffer (see [`AUDIO_PRIME_AFTER`]),
    // since the first video frame after which none came (`None` before it).
    let mut audio_awaited: Option<Option<Instant>> = audio.is_some().then_some(None);
    // Pinned once: a fresh `cancelled()` per frame would register a waiter each time.
    let mut cancelled = std::pin::pin!(cancel.cancelled());
    loop {
        // A media without audio, or whose audio no client plays, reads video only.
        let audio_open = audio.is_some() && audio_gate.open();
        sub.set_audio(audio_open);
        let frame = tokio::select! {
            r = sub.recv() => r,
            _ = &mut cancelled => break,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(RecvError::Lagged { dropped }) => {
                debug!(dropped, "RTSP feeder lagged; resuming at a key frame");
                continue;
            }
            Err(RecvError::Closed) => {
                let _ = video.end_of_stream();
                if let Some(a) = &audio {
                    let _ = a.end_of_stream();
                }
                break;
            }
        };
        let src = match frame.kind {
            MediaKind::Video => &video,
            // Only while the gate is open: the subscriber reads video only otherwise.
            MediaKind::Audio => match &audio {
                Some(a) => a,
                None => continue,
            },
        };
        // A GObject property read that takes the appsrc's lock: not per frame.
        if level_checked.is_none_or(|t| t.elapsed() >= LEVEL_RECHECK) {
            level_checked = Some(Instant::now());
            if video.current_level_bytes() > HIGH_WATER_BYTES {
                skip_to_key = true;
            }
        }
        if skip_to_key {
            if !frame.is_video_keyframe() {
                continue;
            }
            skip_to_key = false;
        }
        let ns = pts_ns(&frame);
        let base = rebase.get_or_insert_with(|| Rebase {
            running_at_first: video.current_running_time().unwrap_or(gst::ClockTime::ZERO),
            first_ns: ns,
        });
        let pts =
            base.running_at_first + gst::ClockTime::from_nseconds(ns.saturating_sub(base.first_ns));
        let mut buffer = gst::Buffer::from_slice(frame.data.clone());
        {
            let Some(b) = buffer.get_mut() else {
                continue; // a fresh buffer is always writable
            };
            b.set_pts(pts);
            b.set_duration(duration_ns(&frame));
            if frame.kind == MediaKind::Video && !frame.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        if !push(src, buffer) {
            break;
        }
        if frame.kind == MediaKind::Audio {
            audio_awaited = None;
        } else if let Some(awaited) = &mut audio_awaited
            && audio_open
        {
            // Audio is read but none came (a closed gate means the media played
            // already, so its audio stream had its buffer).
            let since = *awaited.get_or_insert_with(Instant::now);
            if since.elapsed() >= AUDIO_PRIME_AFTER
                && let Some(a) = &audio
            {
                debug!("no audio from the camera yet; priming the RTSP audio stream with silence");
                let mut silence = gst::Buffer::from_slice(OPUS_SILENCE);
                if let Some(b) = silence.get_mut() {
                    b.set_pts(pts);
                    b.set_duration(gst::ClockTime::from_mseconds(20));
                }
                if !push(a, silence) {
                    break;
                }
                audio_awaited = None;
            }
        }
    }
}

/// Pushes `buffer` into `src`; false when the media stopped or refused it (the
/// feeder then ends).
fn push(src: &gst_app::AppSrc, buffer: gst::Buffer) -> bool {
    match src.push_buffer(buffer) {
        Ok(_) => true,
        Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => {
            debug!("RTSP media stopped; feeder ends");
            false
        }
        Err(e) => {
            warn!(err = ?e, "appsrc refused a buffer; feeder ends");
            false
        }
    }
}
