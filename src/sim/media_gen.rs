//! Real media for the simulator, made with GStreamer: one short H.264 + AAC MP4 per
//! event kind (`videotestsrc ! textoverlay ! clockoverlay ! x264enc ! mp4mux`) and
//! one JPEG per camera (`videotestsrc ! textoverlay text=<name> ! jpegenc`, or the
//! first frame of the user's own MP4).
//!
//! This is the simulator's only GStreamer code. Generation runs on the blocking
//! pool, never on a GLib main loop, and every pipeline waits on its bus with a
//! timeout, so a broken plugin cannot hang a request. Results are cached in memory
//! for the whole process (all simulators share them); a failed generation is
//! retried on the next request.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::AppSink;
use tokio::sync::OnceCell;

use super::data::events::EventKind;

/// Width and height of all generated media.
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
/// Length of the generated recordings in seconds (15 fps), unless an event
/// asked for another length (`clip_seconds` of `POST /_sim/cameras/{id}/motion`).
pub(crate) const SECONDS: u32 = 4;
/// The longest recording an event may ask for, in seconds.
pub(crate) const MAX_SECONDS: u32 = 30;
/// The longest any one pipeline may run.
const PIPELINE_TIMEOUT_S: u64 = 30;

type Cache = Mutex<HashMap<String, Arc<OnceCell<Bytes>>>>;

fn cache_cell(key: String) -> Arc<OnceCell<Bytes>> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(key).or_default().clone()
}

async fn cached(
    key: String,
    make: impl FnOnce() -> anyhow::Result<Vec<u8>> + Send + 'static,
) -> anyhow::Result<Bytes> {
    let cell = cache_cell(key);
    cell.get_or_try_init(|| async move {
        tokio::task::spawn_blocking(make)
            .await
            .map_err(|e| anyhow!("media generation task failed: {e}"))?
            .map(Bytes::from)
    })
    .await
    .cloned()
}

/// The MP4 recording served for events of `kind`, `seconds` long (default
/// [`SECONDS`]; cached per kind and length).
pub(crate) async fn recording_mp4(kind: EventKind, seconds: Option<u32>) -> anyhow::Result<Bytes> {
    let seconds = seconds.unwrap_or(SECONDS).clamp(1, MAX_SECONDS);
    cached(format!("mp4:{}:{seconds}", kind.as_str()), move || {
        let (label, pattern) = match kind {
            EventKind::Motion => ("MOTION", "ball"),
            EventKind::Ding => ("DING", "smpte"),
            EventKind::OnDemand => ("LIVE VIEW", "pinwheel"),
        };
        generate_mp4(label, pattern, seconds)
    })
    .await
}

/// The JPEG of a camera (cached per name, pattern and file).
pub(crate) async fn camera_jpeg(
    name: &str,
    pattern: &'static str,
    media_file: Option<PathBuf>,
) -> anyhow::Result<Bytes> {
    let key = format!(
        "jpg:{pattern}:{name}:{}",
        media_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let name = name.to_string();
    cached(key, move || match &media_file {
        Some(file) => generate_jpeg_from_file(&name, file).or_else(|e| {
            tracing::warn!(file = %file.display(), err = %format!("{e:#}"), "no frame from media file; using a test pattern");
            generate_jpeg(&name, pattern)
        }),
        None => generate_jpeg(&name, pattern),
    })
    .await
}

/// Generates the recordings and the given cameras' JPEGs (camera name, test
/// pattern, media file), so the first request finds them ready. Failures are
/// logged; requests retry them.
pub(crate) async fn prewarm(cameras: Vec<(String, &'static str, Option<PathBuf>)>) {
    for kind in [EventKind::Motion, EventKind::Ding, EventKind::OnDemand] {
        if let Err(e) = recording_mp4(kind, None).await {
            tracing::warn!(err = %format!("{e:#}"), "simulator: generating a recording failed");
        }
    }
    for (name, pattern, file) in cameras {
        if let Err(e) = camera_jpeg(&name, pattern, file).await {
            tracing::warn!(err = %format!("{e:#}"), camera = %name, "simulator: generating a snapshot failed");
        }
    }
}

fn launch(desc: &str) -> anyhow::Result<gst::Pipeline> {
    gst::init().context("initialising GStreamer")?;
    gst::parse::launch(desc)
        .with_context(|| format!("building pipeline {desc:?}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("pipeline description did not give a pipeline"))
}

fn set_text(p: &gst::Pipeline, element: &str, text: &str) -> anyhow::Result<()> {
    p.by_name(element)
        .ok_or_else(|| anyhow!("pipeline has no element {element}"))?
        .set_property("text", gst::glib::markup_escape_text(text).as_str());
    Ok(())
}

/// Runs a pipeline to EOS (or error / timeout) and stops it.
fn run_to_eos(p: &gst::Pipeline) -> anyhow::Result<()> {
    let bus = p.bus().ok_or_else(|| anyhow!("pipeline has no bus"))?;
    p.set_state(gst::State::Playing)
        .context("starting pipeline")?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(PIPELINE_TIMEOUT_S),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let result = match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => Err(anyhow!(
            "pipeline error from {}: {} ({:?})",
            e.src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_default(),
            e.error(),
            e.debug()
        )),
        _ => Err(anyhow!("pipeline timed out after {PIPELINE_TIMEOUT_S} s")),
    };
    let _ = p.set_state(gst::State::Null);
    result
}

/// Generates a `seconds` s 640x360 H.264 + AAC MP4 (15 fps, a key frame every second).
pub(crate) fn generate_mp4(label: &str, pattern: &str, seconds: u32) -> anyhow::Result<Vec<u8>> {
    gst::init().context("initialising GStreamer")?;
    let fps = 15;
    let video = format!(
        "videotestsrc num-buffers={n} pattern={pattern} \
         ! video/x-raw,width={WIDTH},height={HEIGHT},framerate={fps}/1 \
         ! textoverlay name=label valignment=top halignment=left font-desc=\"Sans 20\" \
         ! clockoverlay valignment=bottom halignment=right font-desc=\"Sans 16\" \
         ! x264enc speed-preset=ultrafast key-int-max={fps} bframes=0 \
         ! video/x-h264,profile=constrained-baseline ! h264parse \
         ! mp4mux name=mux faststart=true ! filesink name=out",
        n = seconds * fps,
    );
    // 44100 Hz / 15 = 2940 samples per buffer, one per video frame.
    let audio = format!(
        " audiotestsrc num-buffers={n} samplesperbuffer=2940 wave=sine freq=440 volume=0.2 \
         ! audio/x-raw,rate=44100,channels=1 ! voaacenc ! aacparse ! mux.",
        n = seconds * fps,
    );
    let p = launch(&format!("{video}{audio}"))?;
    set_text(&p, "label", label)?;
    let path = std::env::temp_dir().join(format!("ring-bridge-sim-{}.mp4", uuid::Uuid::new_v4()));
    p.by_name("out")
        .ok_or_else(|| anyhow!("pipeline has no filesink"))?
        .set_property("location", path.to_string_lossy().as_ref());
    let run = run_to_eos(&p);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()));
    let _ = std::fs::remove_file(&path);
    run?;
    let bytes = bytes?;
    if bytes.get(4..8) != Some(b"ftyp") {
        bail!("generated MP4 does not start with an ftyp box");
    }
    Ok(bytes)
}

fn pull_jpeg(p: &gst::Pipeline) -> anyhow::Result<Vec<u8>> {
    let sink = p
        .by_name("sink")
        .and_then(|e| e.downcast::<AppSink>().ok())
        .ok_or_else(|| anyhow!("pipeline has no appsink"))?;
    p.set_state(gst::State::Playing)
        .context("starting pipeline")?;
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(PIPELINE_TIMEOUT_S));
    let bus_error = p
        .bus()
        .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]));
    let _ = p.set_state(gst::State::Null);
    let sample = sample.ok_or_else(|| match bus_error.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Error(e)) => {
            anyhow!("pipeline error: {} ({:?})", e.error(), e.debug())
        }
        _ => anyhow!("no JPEG within {PIPELINE_TIMEOUT_S} s"),
    })?;
    let buffer = sample
        .buffer()
        .ok_or_else(|| anyhow!("JPEG sample has no buffer"))?;
    let map = buffer.map_readable().context("mapping JPEG buffer")?;
    let bytes = map.as_slice().to_vec();
    if !(bytes.starts_with(&[0xFF, 0xD8]) && bytes.ends_with(&[0xFF, 0xD9])) {
        bail!("generated JPEG lacks SOI/EOI markers");
    }
    Ok(bytes)
}

/// A 640x360 JPEG of a test pattern with `text` written on it.
pub(crate) fn generate_jpeg(text: &str, pattern: &str) -> anyhow::Result<Vec<u8>> {
    let p = launch(&format!(
        "videotestsrc num-buffers=1 pattern={pattern} ! video/x-raw,width={WIDTH},height={HEIGHT} \
         ! textoverlay name=label valignment=center halignment=center font-desc=\"Sans 32\" \
         ! jpegenc quality=85 ! appsink name=sink sync=false"
    ))?;
    set_text(&p, "label", text)?;
    pull_jpeg(&p)
}

/// A 640x360 JPEG of the first video frame of `file`, with `text` written on it.
pub(crate) fn generate_jpeg_from_file(
    text: &str,
    file: &std::path::Path,
) -> anyhow::Result<Vec<u8>> {
    let p = launch(&format!(
        "filesrc name=src ! decodebin ! videoconvert ! videoscale \
         ! video/x-raw,width={WIDTH},height={HEIGHT} \
         ! textoverlay name=label valignment=top halignment=left font-desc=\"Sans 20\" \
         ! jpegenc snapshot=true ! appsink name=sink sync=false"
    ))?;
    set_text(&p, "label", text)?;
    p.by_name("src")
        .ok_or_else(|| anyhow!("pipeline has no filesrc"))?
        .set_property("location", file.to_string_lossy().as_ref());
    pull_jpeg(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_has_markers() {
        let j = generate_jpeg("Front Door \"quoted\" <b>", "smpte").expect("jpeg");
        assert!(j.len() > 1000);
    }

    /// Decodes the whole generated MP4 (video and audio) like a player would.
    #[test]
    fn mp4_decodes_fully() {
        let m = generate_mp4("TEST", "ball", SECONDS).expect("mp4");
        assert_eq!(&m[4..8], b"ftyp");
        assert!(m.windows(4).any(|w| w == b"moov"));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.mp4");
        std::fs::write(&path, &m).expect("write");
        let p = launch(
            "filesrc name=src ! qtdemux name=d \
             d.video_0 ! queue ! h264parse ! avdec_h264 ! appsink name=sink sync=false \
             d.audio_0 ! queue ! aacparse ! avdec_aac ! fakesink sync=false",
        )
        .expect("pipeline");
        p.by_name("src")
            .expect("src")
            .set_property("location", path.to_string_lossy().as_ref());
        let sink = p
            .by_name("sink")
            .and_then(|e| e.downcast::<AppSink>().ok())
            .expect("appsink");
        p.set_state(gst::State::Playing).expect("play");
        let mut frames = 0;
        while sink
            .try_pull_sample(gst::ClockTime::from_seconds(10))
            .is_some()
        {
            frames += 1;
        }
        let err = p
            .bus()
            .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]));
        let _ = p.set_state(gst::State::Null);
        assert!(err.is_none(), "{err:?}");
        assert!(sink.is_eos());
        assert_eq!(frames, 60);
    }
}
