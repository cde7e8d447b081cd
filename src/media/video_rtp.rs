//! One RTP video depacketizer for whichever codec a stream carries: RFC 6184 for
//! H.264 ([`h264::rtp`]), RFC 7798 for H.265 ([`h265::rtp`]). One enum so a
//! per-packet video task (the live call's) stays codec-neutral; the producer
//! decides the codec (it knows what was negotiated), this only dispatches.
//! No I/O, no allocation beyond the access units.

use bytes::Bytes;

use super::h264::rtp::AccessUnit;
use super::{VideoCodec, h264, h265};

/// The depacketizer of one video SSRC.
#[derive(Debug)]
pub enum VideoDepacketizer {
    /// RFC 6184 (packetization-mode 1).
    H264(h264::rtp::Depacketizer),
    /// RFC 7798 (no DONL).
    H265(h265::rtp::Depacketizer),
}

impl VideoDepacketizer {
    /// The depacketizer for `codec`.
    pub fn new(codec: VideoCodec) -> Self {
        match codec {
            VideoCodec::H264 => VideoDepacketizer::H264(h264::rtp::Depacketizer::default()),
            VideoCodec::H265 => VideoDepacketizer::H265(h265::rtp::Depacketizer::default()),
        }
    }

    /// The codec this depacketizer reads.
    pub fn codec(&self) -> VideoCodec {
        match self {
            VideoDepacketizer::H264(_) => VideoCodec::H264,
            VideoDepacketizer::H265(_) => VideoCodec::H265,
        }
    }

    /// Feeds one RTP packet (sequence number, 90 kHz timestamp, marker, payload).
    pub fn push(&mut self, seq: u16, ts: u32, marker: bool, payload: &Bytes) {
        match self {
            VideoDepacketizer::H264(d) => d.push(seq, ts, marker, payload),
            VideoDepacketizer::H265(d) => d.push(seq, ts, marker, payload),
        }
    }

    /// The next completed access unit (Annex-B, parameter sets before key frames).
    pub fn pull(&mut self) -> Option<AccessUnit> {
        match self {
            VideoDepacketizer::H264(d) => d.pull(),
            VideoDepacketizer::H265(d) => d.pull(),
        }
    }

    /// Drops the current access unit and waits for the next key frame (IDR/IRAP).
    pub fn resync(&mut self) {
        match self {
            VideoDepacketizer::H264(d) => d.resync(),
            VideoDepacketizer::H265(d) => d.resync(),
        }
    }

    /// Whether a key frame should be requested (loss, or none yet); clears the flag.
    pub fn take_pli_request(&mut self) -> bool {
        match self {
            VideoDepacketizer::H264(d) => d.take_pli_request(),
            VideoDepacketizer::H265(d) => d.take_pli_request(),
        }
    }
}

/// Whether an RTP payload of `codec` carries a key frame's NAL unit or its
/// parameter sets (see `h264::rtp::payload_has_key_nal`,
/// `h265::rtp::payload_has_key_nal`).
pub fn payload_has_key_nal(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::H264 => h264::rtp::payload_has_key_nal(payload),
        VideoCodec::H265 => h265::rtp::payload_has_key_nal(payload),
    }
}
