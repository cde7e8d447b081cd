//! Hub → viewer: turns a [`Subscriber`]'s access units into the RTP packets of
//! one viewer (no transcoding): H.264 per RFC 6184 with our own
//! [`crate::media::h264::pay`] (STAP-A for small NAL units such as SPS+PPS, FU-A
//! for large ones), H.265 per RFC 7798 with [`crate::media::h265::pay`] (AP, FU,
//! no DONL; see `docs/design/0009-h265.md`), each video frame once for all viewers of the
//! camera ([`super::payloads`]), and Opus one packet per frame (RFC 7587). RTP
//! timestamps come from the hub's PTS (90 kHz video, 48 kHz audio), so frame
//! durations are the real ones. The session's pump (`pump.rs`) hands the packets
//! to the WebRTC stack.
//!
//! A viewer that joins mid-stream first gets the hub's cached GOP from its key
//! frame. Those frames are old, so their timestamps are compressed (1 tick apart)
//! to let the browser decode through them at once instead of adding the GOP's age
//! as latency; stale audio is dropped. After a [`RecvError::Lagged`] the subscriber
//! resumes at a key frame by itself. A session is sent one codec (the answer's): if
//! the camera's stream changes codec (a new live call answered differently), the
//! session ends and the viewer reconnects.
//!
//! [`Subscriber`]: crate::media::Subscriber
//! [`RecvError::Lagged`]: crate::media::RecvError::Lagged

use std::sync::Arc;
use std::time::Duration;

use super::payloads::{Payload, PayloadCache};
use crate::media::{Frame, MediaKind, VideoCodec};

/// A frame the hub received longer ago than this is backlog (the cached GOP).
const STALE_AFTER: Duration = Duration::from_millis(250);

/// Maps hub PTS to 32-bit RTP timestamps: a random base, and backlog frames
/// squeezed to 1 tick apart so the live edge follows right after them.
#[derive(Debug)]
pub(crate) struct RtpClock {
    base: u32,
    shift: u64,
    last_pts: Option<u64>,
}

impl RtpClock {
    pub fn new(base: u32) -> Self {
        RtpClock {
            base,
            shift: 0,
            last_pts: None,
        }
    }

    /// The RTP timestamp of a frame with `pts`; `stale` frames advance by 1 tick.
    pub fn timestamp(&mut self, pts: u64, stale: bool) -> u32 {
        if let Some(last) = self.last_pts {
            let delta = pts.saturating_sub(last);
            if stale && delta > 1 {
                self.shift += delta - 1;
            }
        }
        self.last_pts = Some(pts);
        // Truncation to 32 bits is the RTP timestamp's wrap-around.
        (pts.wrapping_sub(self.shift) as u32).wrapping_add(self.base)
    }
}

/// One RTP packet for the stack: our header fields (payload type and SSRC are
/// the stream's) and a payload that may be shared with other viewers.
#[derive(Clone, Debug)]
pub(crate) struct RtpOut {
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Payload,
}

/// One viewer's RTP headers for one kind: its own sequence numbers and
/// timestamps in front of payloads that may be shared with other viewers.
pub(crate) struct Packetizer {
    kind: MediaKind,
    clock: RtpClock,
    seq: u16,
}

impl Packetizer {
    pub fn new(kind: MediaKind) -> Self {
        Packetizer {
            kind,
            clock: RtpClock::new(rand::random()),
            // Below 2^15: the stack extends sequence numbers and warns when the
            // first one would look like a wrap-around.
            seq: rand::random::<u16>() >> 1,
        }
    }

    /// RTP packets carrying `payloads`, the RTP payloads of `frame` (video:
    /// [`PayloadCache::video`]; Opus: the frame's one packet).
    pub fn packets(&mut self, frame: &Frame, stale: bool, payloads: &[Payload]) -> Vec<RtpOut> {
        let timestamp = self.clock.timestamp(frame.pts, stale);
        let n = payloads.len();
        payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| {
                let seq = self.seq;
                self.seq = self.seq.wrapping_add(1);
                RtpOut {
                    seq,
                    timestamp,
                    // Video: last packet of the access unit (RFC 6184 §5.1, RFC
                    // 7798 §4.1). Audio: unused (no talkspurt tracking).
                    marker: self.kind == MediaKind::Video && i + 1 == n,
                    payload: Arc::clone(payload),
                }
            })
            .collect()
    }
}

/// What to do with one frame from the hub.
pub(crate) enum Step {
    /// Send these packets on the stream of this kind.
    Send(MediaKind, Vec<RtpOut>),
    /// Nothing to send (stale audio, or no audio stream).
    Skip,
    /// The camera's stream now has another codec than the session's.
    CodecChanged(VideoCodec),
}

/// One viewer's outbound media: its packetizers and the camera's shared payloads.
pub(crate) struct Outbound {
    /// The codec the session was answered with.
    codec: VideoCodec,
    payloads: Arc<PayloadCache>,
    /// The viewer receives audio.
    audio_on: bool,
    video: Packetizer,
    audio: Packetizer,
    /// Backlog frames sent (the cached GOP, squeezed).
    pub backlog: u64,
}

impl Outbound {
    pub fn new(codec: VideoCodec, payloads: Arc<PayloadCache>, audio_on: bool) -> Self {
        Outbound {
            codec,
            payloads,
            audio_on,
            video: Packetizer::new(MediaKind::Video),
            audio: Packetizer::new(MediaKind::Audio),
            backlog: 0,
        }
    }

    /// The packets for `frame`; `stream_codec` is the camera's codec now (from
    /// its parameters), checked on key frames.
    pub fn frame(
        &mut self,
        frame: &Frame,
        stream_codec: impl FnOnce() -> Option<VideoCodec>,
    ) -> Step {
        if frame.is_video_keyframe()
            && let Some(now) = stream_codec()
            && now != self.codec
        {
            return Step::CodecChanged(now);
        }
        let stale = frame.received_at.elapsed() > STALE_AFTER;
        self.backlog += u64::from(stale);
        match frame.kind {
            MediaKind::Video => {
                let payloads = self.payloads.video(frame, self.codec);
                Step::Send(
                    MediaKind::Video,
                    self.video.packets(frame, stale, &payloads),
                )
            }
            MediaKind::Audio if stale || !self.audio_on => Step::Skip,
            MediaKind::Audio => {
                let payload = [Payload::from(&frame.data[..])];
                Step::Send(MediaKind::Audio, self.audio.packets(frame, false, &payload))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::base::CameraId;
    use crate::webrtc::payloads::{PAYLOAD_MTU, Payloads};

    #[test]
    fn clock_squeezes_backlog_then_follows_pts() {
        let mut c = RtpClock::new(u32::MAX - 10);
        assert_eq!(c.timestamp(1000, true), 989);
        assert_eq!(c.timestamp(7000, true), 990);
        assert_eq!(c.timestamp(13_000, true), 991);
        // Live: real deltas again.
        assert_eq!(c.timestamp(19_000, false), 6991);
        assert_eq!(c.timestamp(25_000, false), 12_991);
    }

    fn frame(kind: MediaKind, data: &'static [u8], pts: u64) -> Frame {
        Frame::new(
            kind,
            Bytes::from_static(data),
            kind == MediaKind::Video,
            pts,
            0,
        )
    }

    #[test]
    fn key_frame_becomes_stap_a_then_fu_a() {
        let mut idr = vec![
            0, 0, 0, 1, 0x67, 0x64, 0, 0x29, 0, 0, 0, 1, 0x68, 0xEE, 0, 0, 0, 1, 0x65,
        ];
        idr.extend(std::iter::repeat_n(0xAB, 3000));
        let idr: &'static [u8] = Box::leak(idr.into_boxed_slice());
        let cache = Payloads::default().for_camera(CameraId::new(1));
        let mut p = Packetizer::new(MediaKind::Video);
        let key = frame(MediaKind::Video, idr, 9000);
        let pkts = p.packets(&key, false, &cache.video(&key, VideoCodec::H264));
        assert_eq!(pkts[0].payload[0] & 0x1F, 24, "STAP-A with SPS+PPS first");
        assert!(pkts[1..].iter().all(|p| p.payload[0] & 0x1F == 28), "FU-A");
        assert!(pkts.iter().all(|p| p.payload.len() <= PAYLOAD_MTU));
        assert!(pkts.last().unwrap().marker);
        assert_eq!(pkts.iter().filter(|p| p.marker).count(), 1);
        let ts = pkts[0].timestamp;
        assert!(pkts.iter().all(|p| p.timestamp == ts));
        let seqs: Vec<u16> = pkts.iter().map(|p| p.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));

        let mut slice = frame(MediaKind::Video, &[0, 0, 0, 1, 0x41, 1, 2], 15_000);
        slice.seq = 1;
        let next = p.packets(&slice, false, &cache.video(&slice, VideoCodec::H264));
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].timestamp, ts.wrapping_add(6000));
        assert_eq!(next[0].payload[0], 0x41, "small slice as a single NAL unit");

        let mut a = Packetizer::new(MediaKind::Audio);
        let opus = frame(MediaKind::Audio, &[0xF8, 1, 2], 480);
        let pkts = a.packets(&opus, false, &[Payload::from(&opus.data[..])]);
        assert_eq!((pkts.len(), pkts[0].marker), (1, false));
    }

    #[test]
    fn h265_key_frame_becomes_ap_then_fus() {
        let mut au = vec![
            0, 0, 0, 1, 0x40, 1, 0x0c, 0, 0, 0, 1, 0x42, 1, 1, 0, 0, 0, 1, 0x44, 1, 0xc1,
        ];
        au.extend([0, 0, 0, 1, 0x26, 1, 0x80]); // IDR_W_RADL, first slice
        au.extend(std::iter::repeat_n(0xAB, 3000));
        let au: &'static [u8] = Box::leak(au.into_boxed_slice());
        let cache = Payloads::default().for_camera(CameraId::new(1));
        let mut p = Packetizer::new(MediaKind::Video);
        let key = frame(MediaKind::Video, au, 9000);
        let pkts = p.packets(&key, false, &cache.video(&key, VideoCodec::H265));
        assert_eq!(pkts[0].payload[0] >> 1, 48, "AP with VPS+SPS+PPS first");
        assert!(pkts[1..].iter().all(|p| p.payload[0] >> 1 == 49), "FU");
        assert_eq!(pkts[1].payload[2], 0x80 | 19, "S bit and IDR_W_RADL");
        assert_eq!(pkts.last().unwrap().payload[2], 0x40 | 19, "E bit");
        assert!(pkts.iter().all(|p| p.payload.len() <= PAYLOAD_MTU));
        assert!(pkts.last().unwrap().marker);
        assert_eq!(pkts.iter().filter(|p| p.marker).count(), 1);
    }
}
