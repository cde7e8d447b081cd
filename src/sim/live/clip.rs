//! The simulated camera's media: a short H.264 (or H.265) + Opus clip, encoded
//! once per process with GStreamer and then looped by every session.
//!
//! Encoding 2 GOPs of 1080p at x264 `ultrafast` takes about a second; looping
//! the cached access units costs next to nothing, which keeps the simulator's
//! CPU low with many cameras. The clip is keyed by (size, fps, GOP) so
//! simulators with different options can share one process.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// One encoded video frame (an H.264 or H.265 access unit in Annex-B form).
#[derive(Debug)]
pub(crate) struct ClipFrame {
    pub data: Bytes,
    pub keyframe: bool,
}

/// The looped clip.
#[derive(Debug)]
pub(crate) struct Clip {
    /// Video access units, starting with a key frame.
    pub video: Vec<ClipFrame>,
    /// Duration of one video frame (rounded up to whole nanoseconds so that
    /// webrtc-rs's float → tick conversion never truncates a tick).
    pub frame_duration: Duration,
    /// Opus packets of 20 ms each.
    pub audio: Vec<Bytes>,
}

/// Duration of one Opus packet of the clip.
pub(crate) const AUDIO_FRAME: Duration = Duration::from_millis(20);

impl Clip {
    /// Index of the first key frame after `idx` (wrapping), for answering PLI.
    pub fn next_keyframe(&self, idx: usize) -> usize {
        let n = self.video.len();
        (1..=n)
            .map(|i| (idx + i) % n)
            .find(|&i| self.video[i].keyframe)
            .unwrap_or(0)
    }
}

/// What the clip is encoded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClipKey {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub gop_secs: u32,
    /// Encode H.265 (x265) instead of H.264 (x264).
    pub h265: bool,
}

type Cell = Arc<tokio::sync::OnceCell<Arc<Clip>>>;
static CACHE: LazyLock<Mutex<HashMap<ClipKey, Cell>>> = LazyLock::new(Default::default);

/// The clip for `key`, encoding it on first use (on a blocking thread).
pub(crate) async fn get(key: ClipKey) -> anyhow::Result<Arc<Clip>> {
    let cell: Cell = {
        let mut cache = CACHE
            .lock()
            .map_err(|_| anyhow::anyhow!("clip cache poisoned"))?;
        Arc::clone(cache.entry(key).or_default())
    };
    let clip = cell
        .get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || encode(key))
                .await
                .context("clip encoder thread")?
                .map(Arc::new)
        })
        .await?;
    Ok(Arc::clone(clip))
}

fn encode(key: ClipKey) -> anyhow::Result<Clip> {
    let started = std::time::Instant::now();
    let fps = key.fps.clamp(1, 60);
    let gop = fps * key.gop_secs.max(1);
    let frames = 2 * gop;
    let encoder = if key.h265 {
        // Parameter sets in every key frame, like a camera; no B-frames.
        format!(
            "x265enc key-int-max={gop} tune=zerolatency speed-preset=ultrafast bitrate=2000 \
               option-string=\"scenecut=0:repeat-headers=1:bframes=0:open-gop=0\" \
             ! video/x-h265,profile=main,stream-format=byte-stream,alignment=au"
        )
    } else {
        format!(
            "x264enc key-int-max={gop} bframes=0 tune=zerolatency speed-preset=ultrafast bitrate=2000 \
               aud=false option-string=scenecut=0 \
             ! video/x-h264,profile=high,stream-format=byte-stream,alignment=au"
        )
    };
    let launch = format!(
        "videotestsrc pattern=ball num-buffers={frames} \
         ! video/x-raw,width={w},height={h},framerate={fps}/1 \
         ! timeoverlay font-desc=\"Sans 48\" halignment=right valignment=bottom text=\"ring-bridge sim\" \
         ! videoconvert \
         ! {encoder} \
         ! appsink name=sink sync=false",
        w = key.width,
        h = key.height,
    );
    let video: Vec<ClipFrame> = pull_all(&launch)?
        .into_iter()
        .map(|(data, keyframe)| ClipFrame {
            data: if key.h265 {
                super::h265::for_webrtc_payloader(&data)
            } else {
                data
            },
            keyframe,
        })
        .collect();
    if !video.first().is_some_and(|f| f.keyframe) {
        bail!("encoded clip does not start with a key frame");
    }
    let audio = crate::codec::encode::opus_sine(
        Duration::from_secs(u64::from(2 * key.gop_secs.max(1))),
        440,
    )?;
    tracing::debug!(?key, video = video.len(), audio = audio.len(), took = ?started.elapsed(), "encoded the simulator clip");
    Ok(Clip {
        video,
        frame_duration: Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(fps))),
        audio,
    })
}

/// Longest part of a user's MP4 that is looped (bounds memory).
const MAX_FILE_CLIP: Duration = Duration::from_secs(60);

type FileCell = Arc<tokio::sync::OnceCell<Arc<Clip>>>;
static FILE_CACHE: LazyLock<Mutex<HashMap<std::path::PathBuf, FileCell>>> =
    LazyLock::new(Default::default);

/// The clip of a user's H.264 MP4 (`sim --media DIR`): its video passed through
/// untouched (first [`MAX_FILE_CLIP`]), with the simulator's tone as audio.
/// Read once per file, on a blocking thread.
pub(crate) async fn get_file(path: std::path::PathBuf) -> anyhow::Result<Arc<Clip>> {
    let cell: FileCell = {
        let mut cache = FILE_CACHE
            .lock()
            .map_err(|_| anyhow::anyhow!("clip cache poisoned"))?;
        Arc::clone(cache.entry(path.clone()).or_default())
    };
    let clip = cell
        .get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || read_file(&path))
                .await
                .context("clip reader thread")?
                .map(Arc::new)
        })
        .await?;
    Ok(Arc::clone(clip))
}

fn read_file(path: &std::path::Path) -> anyhow::Result<Clip> {
    let location = path
        .to_str()
        .context("media file path is not UTF-8")?
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let launch = format!(
        "filesrc location=\"{location}\" ! qtdemux name=d d.video_0 ! queue \
         ! h264parse config-interval=-1 \
         ! video/x-h264,stream-format=byte-stream,alignment=au \
         ! appsink name=sink sync=false"
    );
    let (frames, fps) = pull(&launch, Some(MAX_FILE_CLIP), false)?;
    // Loop on whole GOPs: start at the first key frame, end before the last one.
    let first = frames
        .iter()
        .position(|f| f.1)
        .context("no key frame in the file")?;
    let last = frames.iter().rposition(|f| f.1).unwrap_or(first);
    let end = if last > first { last } else { frames.len() };
    let video: Vec<ClipFrame> = frames[first..end]
        .iter()
        .map(|(data, keyframe)| ClipFrame {
            data: data.clone(),
            keyframe: *keyframe,
        })
        .collect();
    let len = Duration::from_secs_f64(video.len() as f64 / fps.max(1.0));
    let audio = crate::codec::encode::opus_sine(len.max(Duration::from_secs(1)), 440)?;
    Ok(Clip {
        video,
        frame_duration: Duration::from_nanos((1e9 / fps.max(1.0)).ceil() as u64),
        audio,
    })
}

/// Runs a pipeline ending in `appsink name=sink` until EOS, or until `max` of
/// video at the caps' frame rate (default 15 fps), and returns its buffers with
/// their key-frame flag and that frame rate. `skip_headers` drops buffers
/// flagged HEADER (Opus headers; h264parse flags key frames carrying SPS/PPS
/// that way, so video keeps them).
fn pull(
    launch: &str,
    max: Option<Duration>,
    skip_headers: bool,
) -> anyhow::Result<(Vec<(Bytes, bool)>, f64)> {
    gst::init().context("initialising GStreamer")?;
    let pipeline = gst::parse::launch(launch)
        .with_context(|| format!("building pipeline {launch}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .context("no appsink")?;
    pipeline
        .set_state(gst::State::Playing)
        .context("starting the reader")?;
    let (mut out, mut fps) = (Vec::new(), 15.0f64);
    let result = loop {
        match sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
            Some(sample) => {
                if out.is_empty()
                    && let Some(f) = sample
                        .caps()
                        .and_then(|c| c.structure(0))
                        .and_then(|st| st.get::<gst::Fraction>("framerate").ok())
                    && f.numer() > 0
                    && f.denom() > 0
                {
                    fps = f64::from(f.numer()) / f64::from(f.denom());
                }
                let Some(buf) = sample.buffer() else { continue };
                if skip_headers && buf.flags().contains(gst::BufferFlags::HEADER) {
                    continue;
                }
                let map = buf.map_readable().context("mapping a buffer")?;
                out.push((
                    Bytes::copy_from_slice(map.as_slice()),
                    !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
                ));
                if max.is_some_and(|m| out.len() as f64 >= m.as_secs_f64() * fps) {
                    break Ok(());
                }
            }
            None if sink.is_eos() => break Ok(()),
            None => {
                break Err(anyhow::anyhow!(
                    "reading the media file timed out or failed"
                ));
            }
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    if out.is_empty() {
        bail!("the media file has no H.264 video");
    }
    Ok((out, fps))
}

/// Runs a finite pipeline ending in `appsink name=sink` to EOS and returns its
/// buffers with their key-frame flag (header buffers are skipped).
fn pull_all(launch: &str) -> anyhow::Result<Vec<(Bytes, bool)>> {
    pull(launch, None, true).map(|(frames, _)| frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264;

    #[tokio::test]
    async fn clip_is_cached_and_has_a_gop_structure() {
        let key = ClipKey {
            width: 320,
            height: 240,
            fps: 10,
            gop_secs: 1,
            h265: false,
        };
        let a = get(key).await.unwrap();
        let b = get(key).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.video.len(), 20);
        let keys: Vec<usize> = (0..a.video.len())
            .filter(|&i| a.video[i].keyframe)
            .collect();
        assert_eq!(keys, vec![0, 10]);
        assert_eq!(a.next_keyframe(3), 10);
        assert_eq!(a.next_keyframe(12), 0);
        let types: Vec<u8> = h264::nal_slices(&a.video[0].data)
            .map(h264::nal_type)
            .collect();
        assert!(
            types.contains(&7) && types.contains(&8) && types.contains(&5),
            "{types:?}"
        );
        let sps = h264::nal_slices(&a.video[10].data)
            .find(|n| h264::nal_type(n) == h264::NAL_SPS)
            .unwrap();
        let sps = h264::parse_sps(sps).unwrap();
        assert_eq!((sps.width, sps.height), (320, 240));
        assert!(a.audio.len() >= 99, "{}", a.audio.len());
        assert_eq!(a.frame_duration, Duration::from_millis(100));
    }

    #[tokio::test]
    async fn h265_clip_has_parameter_sets_in_each_key_frame() {
        use crate::media::h265;
        let key = ClipKey {
            width: 320,
            height: 240,
            fps: 10,
            gop_secs: 1,
            h265: true,
        };
        let a = get(key).await.unwrap();
        assert_eq!(a.video.len(), 20);
        for i in [0, 10] {
            assert!(a.video[i].keyframe, "frame {i}");
            let au = &a.video[i].data;
            assert!(h265::contains_irap(au), "frame {i}");
            let p = h265::find_parameter_sets(au).video_params().unwrap();
            assert_eq!((p.width, p.height), (320, 240));
        }
        assert!(!a.video[1].keyframe && !h265::contains_irap(&a.video[1].data));
    }
}
