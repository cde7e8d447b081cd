//! A recorded clip as an RTSP media: the MP4 is demuxed once into memory
//! (`appsrc ! qtdemux ! appsink`, no decoding), then served by
//! `appsrc ! rtph264pay` (+ `appsrc ! rtpmp4gpay` for AAC audio) whose appsrcs are
//! fed from the samples on demand. H.264 and AAC pass through untouched.
//!
//! Pacing is the RTSP media's own: these appsrcs are not live and gst-rtsp-server's
//! sinks sync each packet to the clock (rate control stays on for event media), so
//! the clip plays at real-time pace. Looping repeats the samples with their
//! timestamps shifted by the clip's length, so RTP timestamps keep increasing; the
//! end of a clip that does not loop is EOS, after which gst-rtsp-server's RTP
//! session sends RTCP BYE.
//!
//! Everything here runs on GStreamer threads: [`demux`] on the RTSP client thread
//! inside `construct` (bounded by [`DEMUX_TIMEOUT_S`]), the feeding in the appsrcs'
//! `need-data` callbacks, which only push (never block).

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use gst::glib;
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

use super::feeder::{make, not_linked_guard};
use crate::media::mp4::Mp4Info;

/// The longest the in-memory demux of one recording may take.
const DEMUX_TIMEOUT_S: u64 = 30;
/// The most bytes each serving appsrc queues ahead of the payloader.
const QUEUE_BYTES: u64 = 512 * 1024;

/// Why a recording cannot be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClipError {
    /// The MP4 has no H.264 video track.
    #[error("the recording has no H.264 video track")]
    NoH264,
    /// GStreamer could not build or run a pipeline.
    #[error("GStreamer: {0}")]
    Gst(String),
    /// The demuxer gave no video samples.
    #[error("the recording has no video frames")]
    Empty,
}

impl From<glib::BoolError> for ClipError {
    fn from(e: glib::BoolError) -> Self {
        ClipError::Gst(e.to_string())
    }
}

/// One elementary stream of a clip: caps and buffers with running-time
/// timestamps from 0.
pub(crate) struct ClipTrack {
    caps: gst::Caps,
    buffers: Vec<gst::Buffer>,
}

/// A demuxed clip.
pub(crate) struct Clip {
    video: ClipTrack,
    audio: Option<ClipTrack>,
    /// The clip's length: the end of its last sample (the loop period).
    duration: gst::ClockTime,
}

impl Clip {
    /// The clip's length.
    pub(crate) fn duration(&self) -> gst::ClockTime {
        self.duration
    }

    /// Whether the clip has an audio track that is served.
    pub(crate) fn has_audio(&self) -> bool {
        self.audio.is_some()
    }
}

/// A random-access appsrc over `data` (qtdemux then reads it in pull mode,
/// wherever the `moov` box is).
fn bytes_src(data: Bytes) -> Result<gst_app::AppSrc, ClipError> {
    let src = gst_app::AppSrc::builder()
        .name("mp4src")
        .stream_type(gst_app::AppStreamType::RandomAccess)
        .format(gst::Format::Bytes)
        .size(i64::try_from(data.len()).unwrap_or(i64::MAX))
        .build();
    let cursor = Arc::new(Mutex::new(0usize));
    let seek_cursor = cursor.clone();
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .seek_data(move |_, offset| {
                *seek_cursor.lock().unwrap_or_else(PoisonError::into_inner) =
                    usize::try_from(offset).unwrap_or(usize::MAX);
                true
            })
            .need_data(move |src, len| {
                let mut at = cursor.lock().unwrap_or_else(PoisonError::into_inner);
                if *at >= data.len() {
                    let _ = src.end_of_stream();
                    return;
                }
                // Pull mode wants exactly `len` bytes (less only at the end).
                let end = at.saturating_add(len as usize).min(data.len());
                let mut buf = gst::Buffer::from_slice(data.slice(*at..end));
                if let Some(b) = buf.get_mut() {
                    b.set_offset(*at as u64);
                }
                *at = end;
                let _ = src.push_buffer(buf);
            })
            .build(),
    );
    Ok(src)
}

fn appsink(name: &str) -> Result<gst_app::AppSink, ClipError> {
    let sink = gst_app::AppSink::builder().name(name).sync(false).build();
    Ok(sink)
}

/// The first error on `bus`, if any.
fn bus_error(bus: Option<&gst::Bus>) -> Option<ClipError> {
    let msg = bus?.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(ClipError::Gst(format!("demuxing: {}", e.error()))),
        _ => None,
    }
}

/// Pulls every sample of `sink` until EOS, as buffers with running-time PTS/DTS.
/// Fails on a pipeline error or after `deadline`.
fn drain(
    sink: &gst_app::AppSink,
    bus: Option<&gst::Bus>,
    deadline: std::time::Instant,
) -> Result<Option<ClipTrack>, ClipError> {
    let mut caps = None;
    let mut buffers = Vec::new();
    loop {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
            if sink.is_eos() {
                break;
            }
            if let Some(e) = bus_error(bus) {
                return Err(e);
            }
            if std::time::Instant::now() > deadline {
                return Err(ClipError::Gst(format!(
                    "demuxing took longer than {DEMUX_TIMEOUT_S} s"
                )));
            }
            continue;
        };
        let (Some(buffer), Some(segment)) = (sample.buffer_owned(), sample.segment()) else {
            continue;
        };
        if caps.is_none() {
            caps = sample.caps_owned();
        }
        let seg = segment.downcast_ref::<gst::ClockTime>();
        let running =
            |t: Option<gst::ClockTime>| t.and_then(|t| seg.and_then(|s| s.to_running_time(t)));
        let (pts, dts) = (running(buffer.pts()), running(buffer.dts()));
        let mut buffer = buffer;
        {
            let b = buffer.make_mut();
            b.set_pts(pts);
            b.set_dts(dts);
        }
        buffers.push(buffer);
    }
    Ok(caps.map(|caps| ClipTrack { caps, buffers }))
}

fn end_of(track: &ClipTrack) -> gst::ClockTime {
    track
        .buffers
        .iter()
        .filter_map(|b| {
            let t = b.pts().or(b.dts())?;
            Some(t + b.duration().unwrap_or(gst::ClockTime::ZERO))
        })
        .max()
        .unwrap_or(gst::ClockTime::ZERO)
}

/// Demuxes `mp4` (whose tracks `info` lists) into memory. Blocking, bounded.
pub(crate) fn demux(mp4: Bytes, info: &Mp4Info) -> Result<Clip, ClipError> {
    if !info.tracks.iter().any(|t| t.is_h264()) {
        return Err(ClipError::NoH264);
    }
    let with_audio = info.tracks.iter().any(|t| t.is_aac());
    gst::init().map_err(|e| ClipError::Gst(e.to_string()))?;
    let pipeline = gst::Pipeline::new();
    let src = bytes_src(mp4)?;
    let demux = make("qtdemux", None)?;
    let vq = make("queue", None)?;
    let vsink = appsink("video")?;
    pipeline.add_many([src.upcast_ref(), &demux, &vq, vsink.upcast_ref()])?;
    src.link(&demux)?;
    vq.link(&vsink)?;
    let aparts = if with_audio {
        let aq = make("queue", None)?;
        let asink = appsink("audio")?;
        pipeline.add_many([&aq, asink.upcast_ref()])?;
        aq.link(&asink)?;
        Some((aq, asink))
    } else {
        None
    };
    let vpad = vq.static_pad("sink");
    let apad = aparts.as_ref().and_then(|(q, _)| q.static_pad("sink"));
    demux.connect_pad_added(move |_, pad| {
        let name = pad.name();
        let target = if name.starts_with("video_") {
            vpad.as_ref()
        } else if name.starts_with("audio_") {
            apad.as_ref()
        } else {
            None
        };
        if let Some(t) = target.filter(|t| !t.is_linked()) {
            let _ = pad.link(t);
        }
    });
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| ClipError::Gst(format!("starting the demuxer: {e}")))?;
    // Unbounded appsinks: draining one fully before the other cannot stall.
    let bus = pipeline.bus();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(DEMUX_TIMEOUT_S);
    let drained = drain(&vsink, bus.as_ref(), deadline).and_then(|video| {
        let audio = match &aparts {
            Some((_, s)) => drain(s, bus.as_ref(), deadline)?,
            None => None,
        };
        Ok((video, audio))
    });
    let error = bus_error(bus.as_ref());
    let _ = pipeline.set_state(gst::State::Null);
    let (video, audio) = drained?;
    if let Some(e) = error {
        return Err(e);
    }
    let video = video
        .filter(|v| !v.buffers.is_empty())
        .ok_or(ClipError::Empty)?;
    let audio = audio.filter(|a| !a.buffers.is_empty());
    let mut duration = end_of(&video).max(audio.as_ref().map(end_of).unwrap_or_default());
    if duration.is_zero() {
        duration = gst::ClockTime::from_mseconds(info.duration_ms.unwrap_or(1000).max(1));
    }
    Ok(Clip {
        video,
        audio,
        duration,
    })
}

/// Where one appsrc is in the clip: the next sample and the current loop.
struct Cursor {
    next: usize,
    round: u64,
}

/// An appsrc serving `track` of `clip`, looping or ending with EOS.
fn serving_src(
    name: &str,
    clip: &Arc<Clip>,
    audio: bool,
    looping: bool,
) -> Result<Option<gst_app::AppSrc>, ClipError> {
    let track = if audio {
        clip.audio.as_ref()
    } else {
        Some(&clip.video)
    };
    let Some(track) = track else {
        return Ok(None);
    };
    let src = gst_app::AppSrc::builder()
        .name(name)
        .caps(&track.caps)
        .is_live(false)
        .format(gst::Format::Time)
        .max_bytes(QUEUE_BYTES)
        .block(false)
        .build();
    let clip = clip.clone();
    let cursor = Mutex::new(Cursor { next: 0, round: 0 });
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                let track = if audio {
                    clip.audio.as_ref()
                } else {
                    Some(&clip.video)
                };
                let Some(track) = track else { return };
                let mut c = cursor.lock().unwrap_or_else(PoisonError::into_inner);
                if c.next >= track.buffers.len() {
                    if !looping {
                        let _ = src.end_of_stream();
                        return;
                    }
                    c.next = 0;
                    c.round += 1;
                }
                let offset = clip.duration * c.round;
                let mut buffer = track.buffers[c.next].copy();
                c.next += 1;
                if offset > gst::ClockTime::ZERO {
                    let b = buffer.make_mut();
                    let (pts, dts) = (b.pts(), b.dts());
                    b.set_pts(pts.map(|t| t + offset));
                    b.set_dts(dts.map(|t| t + offset));
                }
                let _ = src.push_buffer(buffer);
            })
            .build(),
    );
    Ok(Some(src))
}

/// The element bin of one event media: `pay0` (H.264) and, when the clip has
/// AAC audio, `pay1` (MPEG-4 generic).
pub(crate) fn build_bin(clip: &Arc<Clip>, looping: bool) -> Result<gst::Bin, ClipError> {
    let bin = gst::Bin::new();
    if let Some(video) = serving_src("clipvideo", clip, false, looping)? {
        let tee = not_linked_guard()?;
        let pay0 = make("rtph264pay", Some("pay0"))?;
        pay0.set_property("pt", 96u32);
        // MP4 keeps SPS/PPS in codec_data only: send them before every IDR.
        pay0.set_property("config-interval", -1i32);
        bin.add_many([video.upcast_ref(), &tee, &pay0])?;
        gst::Element::link_many([video.upcast_ref(), &tee, &pay0])?;
    }
    if let Some(audio) = serving_src("clipaudio", clip, true, looping)? {
        let tee = not_linked_guard()?;
        let pay1 = make("rtpmp4gpay", Some("pay1"))?;
        pay1.set_property("pt", 97u32);
        bin.add_many([audio.upcast_ref(), &tee, &pay1])?;
        gst::Element::link_many([audio.upcast_ref(), &tee, &pay1])?;
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::mp4::probe;

    #[test]
    fn demuxes_a_whole_recording_into_memory() {
        let mp4 = Bytes::from(crate::sim::media_gen::generate_mp4("T", "ball", 2).expect("mp4"));
        let info = probe(&mp4).expect("probe");
        let clip = demux(mp4, &info).expect("demux");
        assert_eq!(clip.video.buffers.len(), 30);
        assert!(clip.has_audio());
        let d = clip.duration().mseconds();
        assert!((1900..=2200).contains(&d), "{d} ms");
        let pts: Vec<_> = clip.video.buffers.iter().filter_map(|b| b.pts()).collect();
        assert_eq!(pts.len(), 30);
        assert!(pts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(pts[0], gst::ClockTime::ZERO);
    }
}
