//! Hub → viewer: reads a [`Subscriber`] and packetizes its access units onto the
//! session's RTP tracks ourselves (no transcoding): H.264 per RFC 6184
//! (STAP-A for SPS+PPS, FU-A for large NAL units, via webrtc-rs's `H264Payloader`),
//! H.265 per RFC 7798 with our own [`crate::media::h265::pay`] (AP, FU, no DONL;
//! webrtc-rs's `HevcPayloader` cannot carry Ring's stream, see
//! `docs/design/0009-h265.md`), each video frame once for all viewers of the
//! camera ([`super::payloads`]), and Opus one packet per frame (RFC 7587). RTP
//! timestamps come from the hub's PTS (90 kHz video, 48 kHz audio), so frame
//! durations are the real ones.
//!
//! A viewer that joins mid-stream first gets the hub's cached GOP from its key
//! frame. Those frames are old, so their timestamps are compressed (1 tick apart)
//! to let the browser decode through them at once instead of adding the GOP's age
//! as latency; stale audio is dropped. After a [`RecvError::Lagged`] the subscriber
//! resumes at a key frame by itself. A session is sent one codec (the answer's): if
//! the camera's stream changes codec (a new live call answered differently), the
//! session ends and the viewer reconnects.
//!
//! Also drains RTCP from every sender: a PLI or FIR from the viewer becomes
//! [`CameraStream::request_keyframe`] (the hub forwards it to Ring when its cached
//! key frame is stale).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, trace};
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::TrackLocalWriter;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;

use super::activity::Activity;
use super::payloads::PayloadCache;
use crate::media::{CameraStream, Frame, MediaKind, RecvError, VideoCodec, ViewerKind};

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
            seq: rand::random(),
        }
    }

    /// RTP packets (payload type and SSRC are filled in by the track) carrying
    /// `payloads`, the RTP payloads of `frame` (video: [`PayloadCache::video`];
    /// Opus: the frame's one packet).
    pub fn packets(
        &mut self,
        frame: &Frame,
        stale: bool,
        payloads: &[Bytes],
    ) -> Vec<rtp::packet::Packet> {
        let timestamp = self.clock.timestamp(frame.pts, stale);
        let n = payloads.len();
        payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| {
                let sequence_number = self.seq;
                self.seq = self.seq.wrapping_add(1);
                rtp::packet::Packet {
                    header: rtp::header::Header {
                        version: 2,
                        // Video: last packet of the access unit (RFC 6184
                        // §5.1, RFC 7798 §4.1).
                        // Audio: unused (no talkspurt tracking).
                        marker: self.kind == MediaKind::Video && i + 1 == n,
                        sequence_number,
                        timestamp,
                        ..Default::default()
                    },
                    payload: payload.clone(),
                }
            })
            .collect()
    }
}

/// The session's outgoing tracks.
pub(crate) struct Tracks {
    /// The codec the video track was negotiated for.
    pub codec: VideoCodec,
    pub video: Arc<TrackLocalStaticRTP>,
    pub audio: Option<Arc<TrackLocalStaticRTP>>,
    /// The camera's video payloads, shared with its other viewers.
    pub payloads: Arc<PayloadCache>,
}

async fn write(track: &TrackLocalStaticRTP, packets: Vec<rtp::packet::Packet>) -> bool {
    for p in &packets {
        if let Err(e) = track.write_rtp(p).await {
            trace!(err = %e, "RTP write failed");
            return false;
        }
    }
    true
}

/// Sends the camera's frames until `cancel` fires or the hub shuts down. Call once
/// the peer is connected, so the first frame the viewer gets is a key frame.
pub(crate) async fn run(stream: CameraStream, tracks: Tracks, cancel: CancellationToken) {
    let mut sub = stream.subscribe_as(ViewerKind::Whep);
    let mut video = Packetizer::new(MediaKind::Video);
    let mut audio = Packetizer::new(MediaKind::Audio);
    let (mut frames, mut lagged, mut backlog) = (0u64, 0u64, 0u64);
    // Pinned once: a fresh `cancelled()` per frame would register a waiter each time.
    let mut cancelled = std::pin::pin!(cancel.cancelled());
    loop {
        let frame = tokio::select! {
            _ = &mut cancelled => break,
            r = sub.recv() => match r {
                Ok(f) => f,
                Err(RecvError::Lagged { dropped }) => {
                    lagged += dropped;
                    debug!(dropped, "viewer fell behind; resuming at a key frame");
                    continue;
                }
                Err(RecvError::Closed) => {
                    debug!("media hub closed");
                    break;
                }
            },
        };
        if frame.is_video_keyframe()
            && let Some(now) = stream.video_params().map(|p| p.codec)
            && now != tracks.codec
        {
            info!(sent = %tracks.codec, stream = %now, "the camera's stream changed codec; ending the session");
            cancel.cancel();
            break;
        }
        let stale = frame.received_at.elapsed() > STALE_AFTER;
        backlog += u64::from(stale);
        let ok = match frame.kind {
            MediaKind::Video => {
                let payloads = tracks.payloads.video(&frame, tracks.codec);
                write(&tracks.video, video.packets(&frame, stale, &payloads)).await
            }
            MediaKind::Audio if stale => true,
            MediaKind::Audio => match &tracks.audio {
                Some(t) => {
                    let payload = std::slice::from_ref(&frame.data);
                    write(t, audio.packets(&frame, false, payload)).await
                }
                None => true,
            },
        };
        frames += u64::from(ok);
    }
    debug!(frames, lagged, backlog, "media sender stopped");
}

/// What an RTCP drain does with what it reads.
pub(crate) struct RtcpSink {
    /// Gets key-frame requests (video sender only).
    pub stream: Option<CameraStream>,
    /// Marked on every RTCP packet (viewer liveness).
    pub activity: Arc<Activity>,
}

/// Reads RTCP from `sender` (this also runs the interceptors: NACK responses,
/// reports) until `cancel` fires or the sender closes.
pub(crate) async fn drain_rtcp(
    sender: Arc<RTCRtpSender>,
    sink: RtcpSink,
    cancel: CancellationToken,
) {
    loop {
        let pkts = tokio::select! {
            _ = cancel.cancelled() => break,
            r = sender.read_rtcp() => match r {
                Ok((pkts, _)) => pkts,
                Err(_) => break,
            },
        };
        sink.activity.touch();
        let Some(stream) = &sink.stream else { continue };
        let wants_key = pkts.iter().any(|p| {
            let any = p.as_any();
            any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
        });
        if wants_key {
            debug!("viewer asked for a key frame (PLI/FIR)");
            stream.request_keyframe();
        }
    }
}

#[cfg(test)]
mod tests {
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
        assert!(pkts.last().unwrap().header.marker);
        assert_eq!(pkts.iter().filter(|p| p.header.marker).count(), 1);
        let ts = pkts[0].header.timestamp;
        assert!(pkts.iter().all(|p| p.header.timestamp == ts));
        let seqs: Vec<u16> = pkts.iter().map(|p| p.header.sequence_number).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));

        let mut slice = frame(MediaKind::Video, &[0, 0, 0, 1, 0x41, 1, 2], 15_000);
        slice.seq = 1;
        let next = p.packets(&slice, false, &cache.video(&slice, VideoCodec::H264));
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].header.timestamp, ts.wrapping_add(6000));
        assert_eq!(next[0].payload[0], 0x41, "small slice as a single NAL unit");

        let mut a = Packetizer::new(MediaKind::Audio);
        let opus = frame(MediaKind::Audio, &[0xF8, 1, 2], 480);
        let pkts = a.packets(&opus, false, std::slice::from_ref(&opus.data));
        assert_eq!((pkts.len(), pkts[0].header.marker), (1, false));
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
        assert!(pkts.last().unwrap().header.marker);
        assert_eq!(pkts.iter().filter(|p| p.header.marker).count(), 1);
    }
}
