//! One H.264 or H.265 key frame → one JPEG, with GStreamer:
//! `appsrc ! h264parse ! avdec_h264 ! videoconvert ! videoscale ! jpegenc ! appsink`
//! (H.265: `h265parse ! avdec_h265`).
//!
//! Runs on Tokio's blocking pool, never on a GLib main loop and never on an
//! async worker. Every wait is bounded: the pipeline is stopped after
//! [`DECODE_TIMEOUT`] whatever happens.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::{AppSink, AppSrc};

use super::SnapshotError;
use crate::media::VideoCodec;

/// Longest time one decode may take.
pub const DECODE_TIMEOUT: Duration = Duration::from_secs(5);

fn pipeline(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H264 => {
            "appsrc name=src is-live=false format=time \
             caps=video/x-h264,stream-format=byte-stream,alignment=au \
             ! h264parse ! avdec_h264 ! videoconvert ! videoscale \
             ! jpegenc quality=85 ! appsink name=sink sync=false max-buffers=1"
        }
        VideoCodec::H265 => {
            "appsrc name=src is-live=false format=time \
             caps=video/x-h265,stream-format=byte-stream,alignment=au \
             ! h265parse ! avdec_h265 ! videoconvert ! videoscale \
             ! jpegenc quality=85 ! appsink name=sink sync=false max-buffers=1"
        }
    }
}

/// Decodes one H.264 Annex-B key-frame access unit (SPS and PPS included, as the
/// media hub caches it) to a JPEG of the same size. Runs on the blocking
/// pool; at most [`DECODE_TIMEOUT`].
pub async fn jpeg_from_keyframe(au: &[u8]) -> Result<Bytes, SnapshotError> {
    jpeg_from_video_keyframe(VideoCodec::H264, au).await
}

/// [`jpeg_from_keyframe`] for a stream of `codec`: H.265 key frames (IRAP with
/// VPS/SPS/PPS in front, as the hub caches them) decode with `avdec_h265`.
pub async fn jpeg_from_video_keyframe(
    codec: VideoCodec,
    au: &[u8],
) -> Result<Bytes, SnapshotError> {
    let au = Bytes::copy_from_slice(au);
    let key = match codec {
        VideoCodec::H264 => crate::media::h264::contains_idr(&au),
        VideoCodec::H265 => crate::media::h265::contains_irap(&au),
    };
    if !key {
        return Err(SnapshotError::NotAKeyframe { bytes: au.len() });
    }
    tokio::task::spawn_blocking(move || decode_video_blocking(codec, au, DECODE_TIMEOUT))
        .await
        .map_err(|_| SnapshotError::Aborted)?
}

/// The blocking H.264 decode. `timeout` bounds the wait for the JPEG.
pub fn decode_blocking(au: Bytes, timeout: Duration) -> Result<Bytes, SnapshotError> {
    decode_video_blocking(VideoCodec::H264, au, timeout)
}

/// The blocking decode of a `codec` key frame. `timeout` bounds the wait for the JPEG.
pub fn decode_video_blocking(
    codec: VideoCodec,
    au: Bytes,
    timeout: Duration,
) -> Result<Bytes, SnapshotError> {
    gst::init().map_err(|e| SnapshotError::Gst {
        stage: "init",
        detail: e.to_string(),
    })?;
    let pipeline = gst::parse::launch(pipeline(codec))
        .map_err(|e| SnapshotError::Gst {
            stage: "building the pipeline",
            detail: e.to_string(),
        })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| SnapshotError::Gst {
            stage: "building the pipeline",
            detail: "not a pipeline".into(),
        })?;
    let result = run(&pipeline, au, timeout);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn element<T: IsA<gst::Element>>(p: &gst::Pipeline, name: &str) -> Result<T, SnapshotError> {
    p.by_name(name)
        .and_then(|e| e.downcast::<T>().ok())
        .ok_or_else(|| SnapshotError::Gst {
            stage: "building the pipeline",
            detail: format!("no element {name}"),
        })
}

fn run(p: &gst::Pipeline, au: Bytes, timeout: Duration) -> Result<Bytes, SnapshotError> {
    let src: AppSrc = element(p, "src")?;
    let sink: AppSink = element(p, "sink")?;
    p.set_state(gst::State::Playing)
        .map_err(|e| SnapshotError::Gst {
            stage: "starting the pipeline",
            detail: e.to_string(),
        })?;
    let mut buffer = gst::Buffer::from_slice(au);
    if let Some(b) = buffer.get_mut() {
        b.set_pts(gst::ClockTime::ZERO);
    }
    let pushed = src.push_buffer(buffer).and_then(|_| src.end_of_stream());
    if let Err(e) = pushed {
        return Err(SnapshotError::Gst {
            stage: "feeding the key frame",
            detail: format!("{e:?}"),
        });
    }
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let sample = sink.try_pull_sample(gst::ClockTime::from_mseconds(ms));
    let Some(sample) = sample else {
        let error = p
            .bus()
            .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]));
        return Err(match error.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(e)) => SnapshotError::Gst {
                stage: "decoding",
                detail: format!("{} ({:?})", e.error(), e.debug()),
            },
            _ if sink.is_eos() => SnapshotError::NoPicture,
            _ => SnapshotError::Timeout { waited: timeout },
        });
    };
    let buffer = sample.buffer().ok_or(SnapshotError::NoPicture)?;
    let map = buffer.map_readable().map_err(|e| SnapshotError::Gst {
        stage: "reading the JPEG",
        detail: e.to_string(),
    })?;
    let jpeg = Bytes::copy_from_slice(map.as_slice());
    if !(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9])) {
        return Err(SnapshotError::NoPicture);
    }
    Ok(jpeg)
}
