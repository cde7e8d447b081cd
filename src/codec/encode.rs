//! Finite GStreamer encodes into memory: test tones and test pictures for the
//! simulator, tests and benchmarks.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Why an encode failed.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// GStreamer could not be initialised.
    #[error("initialising GStreamer")]
    Init(#[source] gst::glib::Error),
    /// The pipeline description was rejected (a plugin is missing?).
    #[error("building the pipeline {launch:?}")]
    Build {
        /// The pipeline description.
        launch: String,
        /// GStreamer's error.
        #[source]
        source: gst::glib::Error,
    },
    /// The pipeline has no `appsink name=sink`.
    #[error("the pipeline has no appsink named sink")]
    NoSink,
    /// The pipeline would not start.
    #[error("starting the pipeline")]
    Start(#[source] gst::StateChangeError),
    /// Nothing came out.
    #[error("the pipeline produced no buffers")]
    Empty,
}

/// Runs `launch` (a finite pipeline ending in `appsink name=sink`) to its end
/// and returns its buffers, stream headers left out. Blocking.
pub fn encode(launch: &str) -> Result<Vec<Bytes>, EncodeError> {
    gst::init().map_err(EncodeError::Init)?;
    let build = |source| EncodeError::Build {
        launch: launch.to_owned(),
        source,
    };
    let p = gst::parse::launch(launch)
        .map_err(build)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| EncodeError::NoSink)?;
    let sink = p
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or(EncodeError::NoSink)?;
    p.set_state(gst::State::Playing)
        .map_err(EncodeError::Start)?;
    let mut out = Vec::new();
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        if let Some(buf) = s.buffer()
            && !buf.flags().contains(gst::BufferFlags::HEADER)
            && let Ok(map) = buf.map_readable()
        {
            out.push(Bytes::copy_from_slice(&map));
        }
    }
    let _ = p.set_state(gst::State::Null);
    if out.is_empty() {
        return Err(EncodeError::Empty);
    }
    Ok(out)
}

/// `len` of a half-amplitude sine at `freq` Hz as 20 ms Opus packets
/// (48 kHz stereo, 64 kbit/s).
pub fn opus_sine(len: Duration, freq: u32) -> Result<Vec<Bytes>, EncodeError> {
    let buffers = (len.as_millis() / 20).max(1);
    encode(&format!(
        "audiotestsrc wave=sine freq={freq} volume=0.5 num-buffers={buffers} samplesperbuffer=960 \
         ! audio/x-raw,rate=48000,channels=2 \
         ! opusenc frame-size=20 bitrate=64000 \
         ! appsink name=sink sync=false"
    ))
}

/// `frames` access units of a `width`×`height` SMPTE test picture at 30 fps as
/// Annex-B H.264 (constrained baseline, a key frame every `gop` frames).
pub fn h264_test_pattern(
    frames: u32,
    width: u32,
    height: u32,
    gop: u32,
) -> Result<Vec<Bytes>, EncodeError> {
    test_pattern(
        frames,
        width,
        height,
        &format!(
            "x264enc key-int-max={gop} tune=zerolatency speed-preset=ultrafast \
             ! video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline"
        ),
    )
}

/// `frames` access units of a `width`×`height` SMPTE test picture at 30 fps as
/// Annex-B H.265 (Main, a key frame every `gop` frames, parameter sets in front of
/// each key frame, no B-frames).
pub fn h265_test_pattern(
    frames: u32,
    width: u32,
    height: u32,
    gop: u32,
) -> Result<Vec<Bytes>, EncodeError> {
    test_pattern(
        frames,
        width,
        height,
        &format!(
            "x265enc key-int-max={gop} tune=zerolatency speed-preset=ultrafast \
               option-string=\"repeat-headers=1:bframes=0:open-gop=0\" \
             ! video/x-h265,stream-format=byte-stream,alignment=au,profile=main"
        ),
    )
}

/// `frames` SMPTE test pictures at 30 fps through `encoder` (an encoder and its
/// output caps, as a launch fragment) into access units.
fn test_pattern(
    frames: u32,
    width: u32,
    height: u32,
    encoder: &str,
) -> Result<Vec<Bytes>, EncodeError> {
    encode(&format!(
        "videotestsrc num-buffers={frames} pattern=smpte \
         ! video/x-raw,width={width},height={height},framerate=30/1 \
         ! {encoder} ! appsink name=sink sync=false"
    ))
}
