//! Receive side of the live call: turns the RTP packets the peer's pump hands
//! over into the hub's [`Frame`]s (H.264 or H.265 access units at 90 kHz, by
//! the payload type's codec; Opus packets at 48 kHz), and asks for PLIs after
//! loss. Plain state, driven from the pump task (`pump.rs`).
//!
//! Runs per packet: no allocation beyond the frame itself, never blocks on the
//! consumer (a full queue drops frames and resyncs video at the next IDR).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::media::{
    AUDIO_CLOCK_RATE, Frame, MediaKind, SeqGaps, TransportStats, VIDEO_CLOCK_RATE, VideoCodec,
    VideoDepacketizer,
};

/// Minimum spacing of PLIs the depacketizer asks for by itself.
const AUTO_PLI_INTERVAL: Duration = Duration::from_millis(500);

/// State shared by the track tasks of one call.
pub(crate) struct MediaShared {
    pub frames_tx: mpsc::Sender<Frame>,
    /// Call start: PTS 0.
    pub start: Instant,
    /// `request_keyframe()` wakes the video task through this.
    pub pli: Notify,
    pub tasks: TaskTracker,
    pub cancel: CancellationToken,
    /// The call's span (`camera`, `dialog`, `session`), for the call's tasks.
    pub span: tracing::Span,
    /// Video RTP loss, NACKs and PLIs sent, read by the hub's stats.
    pub transport: Arc<TransportStats>,
}

/// Maps 32-bit RTP timestamps of one track onto a 64-bit PTS in `out_rate`
/// units that starts at the first packet's arrival time (relative to the call
/// start) and never decreases.
#[derive(Debug)]
pub(crate) struct PtsMapper {
    in_rate: i64,
    out_rate: i64,
    base: Option<i64>,
    last_ts: u32,
    ext: i64,
    last_pts: u64,
}

impl PtsMapper {
    pub fn new(in_rate: u32, out_rate: u32) -> Self {
        PtsMapper {
            in_rate: i64::from(in_rate.max(1)),
            out_rate: i64::from(out_rate),
            base: None,
            last_ts: 0,
            ext: 0,
            last_pts: 0,
        }
    }

    /// PTS for `ts`; `since_start` is only used for the first packet.
    pub fn map(&mut self, ts: u32, since_start: Duration) -> u64 {
        let base = match self.base {
            Some(b) => {
                self.ext += i64::from(ts.wrapping_sub(self.last_ts) as i32);
                b
            }
            None => {
                let b = i64::try_from(since_start.as_micros()).unwrap_or(i64::MAX / 2)
                    * self.out_rate
                    / 1_000_000;
                self.base = Some(b);
                b
            }
        };
        self.last_ts = ts;
        let pts = u64::try_from(base + self.ext * self.out_rate / self.in_rate).unwrap_or(0);
        self.last_pts = self.last_pts.max(pts);
        self.last_pts
    }
}

/// The video receive state of one call: RTP in, access units out to the hub.
pub(crate) struct VideoIn {
    codec: VideoCodec,
    depack: VideoDepacketizer,
    pts: PtsMapper,
    gaps: SeqGaps,
    last_auto_pli: Option<Instant>,
}

/// What the caller does after a packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing.
    Continue,
    /// Send a PLI now (the depacketizer lost sync; spaced by [`AUTO_PLI_INTERVAL`]).
    Pli,
    /// The call's consumer is gone.
    Closed,
}

impl VideoIn {
    /// State for a stream in `codec`.
    pub(crate) fn new(codec: VideoCodec) -> Self {
        debug!(%codec, "video stream");
        VideoIn {
            codec,
            depack: VideoDepacketizer::new(codec),
            pts: PtsMapper::new(VIDEO_CLOCK_RATE, VIDEO_CLOCK_RATE),
            gaps: SeqGaps::default(),
            last_auto_pli: None,
        }
    }

    /// The codec this state depacketizes.
    pub(crate) fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// One video RTP packet: counts loss, depacketizes, queues complete access
    /// units for the hub (a full queue drops video until the next key frame).
    pub(crate) fn push(
        &mut self,
        shared: &MediaShared,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &Bytes,
    ) -> Next {
        shared.transport.add_packet(self.gaps.push(seq));
        self.depack.push(seq, timestamp, marker, payload);
        while let Some(au) = self.depack.pull() {
            let pts = self.pts.map(au.rtp_timestamp, shared.start.elapsed());
            let frame = Frame::new(MediaKind::Video, au.data, au.keyframe, pts, 0);
            match shared.frames_tx.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    debug!("frame queue full; dropping video until the next key frame");
                    self.depack.resync();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Next::Closed,
            }
        }
        if self.depack.take_pli_request()
            && self
                .last_auto_pli
                .is_none_or(|t| t.elapsed() >= AUTO_PLI_INTERVAL)
        {
            self.last_auto_pli = Some(Instant::now());
            return Next::Pli;
        }
        Next::Continue
    }
}

/// The audio receive state of one call: Opus packets go to the hub as they are;
/// PCMU (which no output can send as Opus) is dropped here and never queued.
pub(crate) struct AudioIn {
    pts: PtsMapper,
}

impl AudioIn {
    /// State for Opus audio (48 kHz RTP clock).
    pub(crate) fn new() -> Self {
        AudioIn {
            pts: PtsMapper::new(AUDIO_CLOCK_RATE, AUDIO_CLOCK_RATE),
        }
    }

    /// One Opus RTP packet.
    pub(crate) fn push(&mut self, shared: &MediaShared, timestamp: u32, payload: Bytes) -> Next {
        if payload.is_empty() {
            return Next::Continue;
        }
        let pts = self.pts.map(timestamp, shared.start.elapsed());
        let frame = Frame::new(MediaKind::Audio, payload, false, pts, 0);
        match shared.frames_tx.try_send(frame) {
            Err(mpsc::error::TrySendError::Closed(_)) => Next::Closed,
            _ => Next::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pts_unwraps_and_rescales() {
        let mut m = PtsMapper::new(8_000, 48_000);
        assert_eq!(m.map(u32::MAX - 79, Duration::from_secs(1)), 48_000);
        assert_eq!(m.map(80, Duration::ZERO), 48_000 + 160 * 6);
        // reordered packet: PTS does not go back
        assert_eq!(m.map(0, Duration::ZERO), 48_000 + 160 * 6);
        let mut v = PtsMapper::new(90_000, 90_000);
        assert_eq!(v.map(5, Duration::ZERO), 0);
        assert_eq!(v.map(6005, Duration::ZERO), 6000);
    }
}
