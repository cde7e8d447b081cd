//! Test seam: [`FakeOpener`], a scripted [`LiveOpener`] whose sessions emit synthetic
//! H.264/Opus frames (or a recorded clip of real ones) on Tokio time.
//!
//! Public so that other modules' tests (RTSP, WebRTC, end-to-end) can drive the hub
//! without Ring. Not used by production code.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::{
    Frame, LiveOpener, LiveSource, MediaKind, SourceError, TalkbackPacket, TalkbackSender,
    VideoCodec, h264,
};

use crate::base::CameraId;

/// A real SPS (x264, High profile, 1920x1080) used in synthetic key frames.
pub const FAKE_SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x5a, 0x80, 0x80, 0x80,
    0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe3, 0x06, 0x32, 0xc0,
];
/// A PPS matching [`FAKE_SPS`].
pub const FAKE_PPS: &[u8] = &[0x68, 0xeb, 0xec, 0xb2, 0x2c];

/// Recorded real frames to replay in a loop (the video clip must start with an IDR).
#[derive(Clone, Debug, Default)]
pub struct FakeClip {
    /// Annex-B access units; IDR ones are flagged as key frames.
    pub video: Vec<Bytes>,
    /// Opus packets of 20 ms.
    pub audio: Vec<Bytes>,
}

/// How one fake session behaves.
#[derive(Clone, Debug)]
pub struct FakeSpec {
    /// Delay before `open` returns.
    pub open_delay: Duration,
    /// If set, `open` fails with this error (after `open_delay`).
    pub open_error: Option<SourceError>,
    /// Video frames per second. Default 30.
    pub fps: u32,
    /// A key frame every `gop` video frames. Default 30.
    pub gop: u32,
    /// Index (0-based) of the first key frame; earlier frames are deltas. Default 0.
    pub first_keyframe: u32,
    /// Emit Opus-like audio packets every 20 ms. Default false.
    pub audio: bool,
    /// Delay from open until the first frame. Default 0.
    pub first_frame_delay: Duration,
    /// Source PTS of the first video frame (audio uses half of it). Default 1_000_000.
    pub start_pts: u64,
    /// End (`None`) after this many video frames.
    pub end_after: Option<u32>,
    /// Fail with this error after this many video frames.
    pub fail_after: Option<(u32, SourceError)>,
    /// Reported session cap.
    pub cap: Option<Duration>,
    /// Replay real frames instead of synthetic ones.
    pub clip: Option<Arc<FakeClip>>,
    /// Whether `request_keyframe` makes the next video frame a key frame. Default true.
    pub honor_keyframe_requests: bool,
    /// Whether the session takes talkback (received packets:
    /// [`FakeOpener::talkback`]). Its codec is Opus with `audio`, else PCMU, as
    /// [`crate::media::CameraStream::talkback_codec`] infers. Default false.
    pub talkback: bool,
    /// The codec of the clip's frames (key frames are IDR for H.264, IRAP for H.265).
    /// Default H.264. Synthetic frames are always H.264-like.
    pub codec: VideoCodec,
}

impl Default for FakeSpec {
    fn default() -> Self {
        FakeSpec {
            open_delay: Duration::ZERO,
            open_error: None,
            fps: 30,
            gop: 30,
            first_keyframe: 0,
            audio: false,
            first_frame_delay: Duration::ZERO,
            start_pts: 1_000_000,
            end_after: None,
            fail_after: None,
            cap: None,
            clip: None,
            honor_keyframe_requests: true,
            talkback: false,
            codec: VideoCodec::H264,
        }
    }
}

/// Counters shared by a [`FakeOpener`] and its sessions.
#[derive(Debug, Default)]
struct Stats {
    opens: AtomicUsize,
    keyframe_requests: AtomicUsize,
    closes: watch::Sender<usize>,
    talkback: Mutex<Vec<(Instant, TalkbackPacket)>>,
}

/// A scripted [`LiveOpener`]: each `open` takes the next [`FakeSpec`] from the script,
/// or the default spec when the script is empty.
pub struct FakeOpener {
    script: Mutex<VecDeque<FakeSpec>>,
    default: FakeSpec,
    stats: Arc<Stats>,
}

impl FakeOpener {
    /// An opener whose every session follows `default`.
    pub fn new(default: FakeSpec) -> Arc<Self> {
        Self::scripted(default, Vec::new())
    }

    /// An opener whose first sessions follow `script`, later ones `default`.
    pub fn scripted(default: FakeSpec, script: Vec<FakeSpec>) -> Arc<Self> {
        Arc::new(FakeOpener {
            script: Mutex::new(script.into()),
            default,
            stats: Arc::default(),
        })
    }

    /// Number of `open` calls so far (successful or not).
    pub fn opens(&self) -> usize {
        self.stats.opens.load(Ordering::SeqCst)
    }

    /// Number of sessions closed so far.
    pub fn closes(&self) -> usize {
        *self.stats.closes.borrow()
    }

    /// Number of key-frame requests received by all sessions.
    pub fn keyframe_requests(&self) -> usize {
        self.stats.keyframe_requests.load(Ordering::SeqCst)
    }

    /// Talkback packets every session received so far, with when (drained as
    /// the hub pulls frames, so within a frame interval of their arrival).
    pub fn talkback(&self) -> Vec<(Instant, TalkbackPacket)> {
        self.stats
            .talkback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until at least `n` sessions were closed; false on timeout.
    pub async fn wait_closes(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.stats.closes.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

#[async_trait]
impl LiveOpener for FakeOpener {
    async fn open(
        &self,
        _camera: CameraId,
        _cancel: CancellationToken,
    ) -> Result<Box<dyn LiveSource>, SourceError> {
        let session = self.stats.opens.fetch_add(1, Ordering::SeqCst);
        let spec = self
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or_else(|| self.default.clone());
        tokio::time::sleep(spec.open_delay).await;
        if let Some(e) = spec.open_error.clone() {
            return Err(e);
        }
        let start = Instant::now() + spec.first_frame_delay;
        let (talk_tx, talk_rx) = if spec.talkback {
            let (tx, rx) = TalkbackSender::channel(64);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Ok(Box::new(FakeSource {
            talk_tx,
            talk_rx,
            spec,
            session,
            opened: Instant::now(),
            start,
            video_n: 0,
            audio_n: 0,
            force_key: AtomicBool::new(false),
            stats: self.stats.clone(),
        }))
    }
}

struct FakeSource {
    talk_tx: Option<TalkbackSender>,
    talk_rx: Option<mpsc::Receiver<TalkbackPacket>>,
    spec: FakeSpec,
    session: usize,
    opened: Instant,
    start: Instant,
    video_n: u32,
    audio_n: u32,
    force_key: AtomicBool,
    stats: Arc<Stats>,
}

impl FakeSource {
    fn video_due(&self) -> Instant {
        self.start + Duration::from_secs(1) * self.video_n / self.spec.fps.max(1)
    }

    fn audio_due(&self) -> Option<Instant> {
        let has_audio =
            self.spec.audio || self.spec.clip.as_ref().is_some_and(|c| !c.audio.is_empty());
        has_audio.then(|| self.start + Duration::from_millis(20) * self.audio_n)
    }

    fn video_frame(&mut self) -> Frame {
        let n = self.video_n;
        self.video_n += 1;
        let interval = 90_000 / self.spec.fps.max(1);
        let pts = self.spec.start_pts + u64::from(n) * u64::from(interval);
        if let Some(clip) = self.spec.clip.as_ref().filter(|c| !c.video.is_empty()) {
            let au = clip.video[n as usize % clip.video.len()].clone();
            let key = match self.spec.codec {
                VideoCodec::H264 => h264::contains_idr(&au),
                VideoCodec::H265 => crate::media::h265::contains_irap(&au),
            };
            return Frame::new(MediaKind::Video, au, key, pts, interval);
        }
        let forced = self.force_key.swap(false, Ordering::SeqCst);
        let key = forced
            || (n >= self.spec.first_keyframe
                && (n - self.spec.first_keyframe).is_multiple_of(self.spec.gop.max(1)));
        let mut b = BytesMut::new();
        if key {
            for nal in [FAKE_SPS, FAKE_PPS] {
                b.put_slice(&[0, 0, 0, 1]);
                b.put_slice(nal);
            }
        }
        b.put_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
        b.put_u32(self.session as u32);
        b.put_u32(n);
        Frame::new(MediaKind::Video, b.freeze(), key, pts, interval)
    }

    fn audio_frame(&mut self) -> Frame {
        let n = self.audio_n;
        self.audio_n += 1;
        let pts = self.spec.start_pts / 2 + u64::from(n) * 960;
        let data = match self.spec.clip.as_ref().filter(|c| !c.audio.is_empty()) {
            Some(c) => c.audio[n as usize % c.audio.len()].clone(),
            None => {
                let mut b = BytesMut::new();
                b.put_u8(0xfc); // Opus TOC: CELT FB 20 ms
                b.put_u32(self.session as u32);
                b.put_u32(n);
                b.freeze()
            }
        };
        Frame::new(MediaKind::Audio, data, false, pts, 960)
    }
}

/// Which fake session and frame index produced a synthetic frame: `(session, index)`,
/// where `session` counts `open` calls from 0. `None` for clip frames.
pub fn fake_origin(frame: &Frame) -> Option<(u32, u32)> {
    let d = &frame.data;
    let tail = d.get(d.len().checked_sub(8)?..)?;
    let session = u32::from_be_bytes(tail[..4].try_into().ok()?);
    let index = u32::from_be_bytes(tail[4..].try_into().ok()?);
    Some((session, index))
}

#[async_trait]
impl LiveSource for FakeSource {
    async fn next(&mut self) -> Option<Result<Frame, SourceError>> {
        if let Some(rx) = self.talk_rx.as_mut() {
            let mut got = self
                .stats
                .talkback
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            while let Ok(p) = rx.try_recv() {
                got.push((Instant::now(), p));
            }
        }
        let video_due = self.video_due();
        let audio_due = self.audio_due().filter(|a| *a < video_due);
        sleep_until(audio_due.unwrap_or(video_due)).await;
        // Only mutate after the last await: cancel-safe.
        if audio_due.is_some() {
            return Some(Ok(self.audio_frame()));
        }
        if let Some((n, e)) = &self.spec.fail_after
            && self.video_n >= *n
        {
            return Some(Err(e.clone()));
        }
        if self.spec.end_after.is_some_and(|n| self.video_n >= n) {
            return None;
        }
        Some(Ok(self.video_frame()))
    }

    fn request_keyframe(&self) {
        self.stats.keyframe_requests.fetch_add(1, Ordering::SeqCst);
        if self.spec.honor_keyframe_requests {
            self.force_key.store(true, Ordering::SeqCst);
        }
    }

    async fn close(self: Box<Self>) {
        self.stats.closes.send_modify(|c| *c += 1);
    }

    fn session_age(&self) -> Duration {
        self.opened.elapsed()
    }

    fn session_cap(&self) -> Option<Duration> {
        self.spec.cap
    }

    fn has_audio(&self) -> bool {
        self.audio_due().is_some()
    }

    fn talkback(&self) -> Option<TalkbackSender> {
        self.talk_tx.clone()
    }

    fn video_codec(&self) -> VideoCodec {
        self.spec.codec
    }
}
