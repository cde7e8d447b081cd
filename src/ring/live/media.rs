//! Receive side of the live call's peer: one task per remote track turns RTP
//! into the hub's [`Frame`]s (H.264 or H.265 access units at 90 kHz, by the
//! track's codec; Opus packets at 48 kHz) and a side task drains each receiver's
//! RTCP. The video task also sends PLIs, on request and after loss. The audio
//! task knows the codec: Opus goes to the hub, PCMU (which no output can send as
//! Opus) is dropped here and never queued.
//!
//! Runs per packet: no allocation beyond the frame itself, never blocks on the
//! consumer (a full queue drops frames and resyncs video at the next IDR).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, trace};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::rtp_transceiver::rtp_receiver::RTCRtpReceiver;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_remote::TrackRemote;

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
    /// The call's span (`camera`, `dialog`, `session`), for the track tasks.
    pub span: tracing::Span,
    /// Video RTP loss and PLIs sent, read by the hub's stats.
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

/// Installs the `on_track` handler that spawns the per-track tasks.
pub(crate) fn install(pc: &Arc<RTCPeerConnection>, shared: Arc<MediaShared>) {
    let weak = Arc::downgrade(pc);
    pc.on_track(Box::new(move |track, receiver, _transceiver| {
        let shared = Arc::clone(&shared);
        let weak = weak.clone();
        let span = shared.span.clone();
        Box::pin(async move {
            let _entered = span.enter();
            debug!(kind = %track.kind(), ssrc = track.ssrc(), codec = %track.codec().capability.mime_type, "remote track");
            spawn_rtcp_drain(&shared, RtcpSource::Receiver(receiver));
            let s = Arc::clone(&shared);
            match track.kind() {
                RTPCodecType::Video => {
                    shared.tasks.spawn(video_task(track, s, weak).instrument(span.clone()));
                }
                RTPCodecType::Audio => {
                    shared.tasks.spawn(audio_task(track, s).instrument(span.clone()));
                }
                _ => {}
            }
        })
    }));
}

/// Where RTCP is read from (reading runs the interceptors: NACK, reports).
pub(crate) enum RtcpSource {
    /// Sender reports about a remote track.
    Receiver(Arc<RTCRtpReceiver>),
    /// Receiver reports and NACKs about our talkback track.
    Sender(Arc<RTCRtpSender>),
}

/// Drains RTCP from `src` until the call ends.
pub(crate) fn spawn_rtcp_drain(shared: &Arc<MediaShared>, src: RtcpSource) {
    let cancel = shared.cancel.clone();
    shared.tasks.spawn(async move {
        loop {
            let ok = tokio::select! {
                _ = cancel.cancelled() => false,
                r = async {
                    match &src {
                        RtcpSource::Receiver(r) => r.read_rtcp().await.is_ok(),
                        RtcpSource::Sender(s) => s.read_rtcp().await.is_ok(),
                    }
                } => r,
            };
            if !ok {
                break;
            }
        }
    });
}

async fn send_pli(pc: &Weak<RTCPeerConnection>, media_ssrc: u32, stats: &TransportStats) {
    let Some(pc) = pc.upgrade() else { return };
    let pli = PictureLossIndication {
        sender_ssrc: 0,
        media_ssrc,
    };
    if let Err(e) = pc.write_rtcp(&[Box::new(pli)]).await {
        debug!(err = %e, "sending PLI failed");
    } else {
        stats.add_pli();
        trace!(media_ssrc, "sent PLI");
    }
}

/// The codec of a remote video track: H.265 when Ring answered `video/H265`,
/// otherwise H.264 (the only other video codec the offer lists).
fn track_codec(mime: &str) -> VideoCodec {
    VideoCodec::from_mime_type(mime).unwrap_or(VideoCodec::H264)
}

async fn video_task(
    track: Arc<TrackRemote>,
    shared: Arc<MediaShared>,
    pc: Weak<RTCPeerConnection>,
) {
    let ssrc = track.ssrc();
    let codec = track_codec(&track.codec().capability.mime_type);
    debug!(%codec, "video track");
    let mut depack = VideoDepacketizer::new(codec);
    let mut pts = PtsMapper::new(VIDEO_CLOCK_RATE, VIDEO_CLOCK_RATE);
    let mut last_auto_pli: Option<Instant> = None;
    let mut gaps = SeqGaps::default();
    // Pinned once, not re-created per packet: each fresh `cancelled()`/`notified()`
    // registers (and on drop unregisters) a waiter under a lock, at ~200 packets/s.
    let mut cancelled = std::pin::pin!(shared.cancel.cancelled());
    let mut pli = std::pin::pin!(shared.pli.notified());
    loop {
        let pkt = tokio::select! {
            _ = &mut cancelled => break,
            _ = &mut pli => {
                pli.set(shared.pli.notified());
                send_pli(&pc, ssrc, &shared.transport).await;
                continue;
            }
            r = track.read_rtp() => match r {
                Ok((pkt, _)) => pkt,
                Err(e) => {
                    debug!(err = %e, "video track ended");
                    break;
                }
            },
        };
        let h = &pkt.header;
        shared.transport.add_packet(gaps.push(h.sequence_number));
        depack.push(h.sequence_number, h.timestamp, h.marker, &pkt.payload);
        while let Some(au) = depack.pull() {
            let pts = pts.map(au.rtp_timestamp, shared.start.elapsed());
            let frame = Frame::new(MediaKind::Video, au.data, au.keyframe, pts, 0);
            match shared.frames_tx.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    debug!("frame queue full; dropping video until the next key frame");
                    depack.resync();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        if depack.take_pli_request()
            && last_auto_pli.is_none_or(|t| t.elapsed() >= AUTO_PLI_INTERVAL)
        {
            last_auto_pli = Some(Instant::now());
            send_pli(&pc, ssrc, &shared.transport).await;
        }
    }
}

async fn audio_task(track: Arc<TrackRemote>, shared: Arc<MediaShared>) {
    let codec = track.codec().capability;
    let opus = codec.mime_type.eq_ignore_ascii_case("audio/opus");
    if !opus {
        debug!(mime = %codec.mime_type, "audio is not Opus; dropping it at the source");
    }
    let mut pts = PtsMapper::new(codec.clock_rate, AUDIO_CLOCK_RATE);
    let mut cancelled = std::pin::pin!(shared.cancel.cancelled());
    loop {
        let pkt = tokio::select! {
            _ = &mut cancelled => break,
            r = track.read_rtp() => match r {
                Ok((pkt, _)) => pkt,
                Err(e) => {
                    debug!(err = %e, "audio track ended");
                    break;
                }
            },
        };
        // PCMU is still read (and thrown away) so the receiver never backs up.
        if !opus || pkt.payload.is_empty() {
            continue;
        }
        let pts = pts.map(pkt.header.timestamp, shared.start.elapsed());
        let frame = Frame::new(MediaKind::Audio, pkt.payload, false, pts, 0);
        if let Err(mpsc::error::TrySendError::Closed(_)) = shared.frames_tx.try_send(frame) {
            return;
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
