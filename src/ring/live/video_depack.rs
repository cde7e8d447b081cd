//! The live call's video depacketizer for the codec Ring answered: RFC 6184 for
//! H.264 (`super::h264`), RFC 7798 for H.265 (`crate::media::h265::rtp`). One enum so
//! the per-packet video task stays codec-neutral; no allocation beyond the frames.

use bytes::Bytes;

use super::h264;
use crate::media::h265;

/// One access unit, whatever the codec.
pub(crate) struct Au {
    /// Annex-B bytes, parameter sets in front of key frames.
    pub data: Bytes,
    /// IDR (H.264) or IRAP (H.265) with known parameter sets.
    pub keyframe: bool,
    /// RTP timestamp (90 kHz).
    pub rtp_timestamp: u32,
}

/// Depacketizer of one video track.
pub(crate) enum VideoDepacketizer {
    H264(h264::Depacketizer),
    H265(h265::rtp::Depacketizer),
}

impl VideoDepacketizer {
    /// The depacketizer for a track's MIME type (`video/H265` → H.265, else H.264).
    pub fn for_mime(mime: &str) -> Self {
        if mime.eq_ignore_ascii_case(webrtc::api::media_engine::MIME_TYPE_HEVC) {
            VideoDepacketizer::H265(h265::rtp::Depacketizer::default())
        } else {
            VideoDepacketizer::H264(h264::Depacketizer::default())
        }
    }

    /// Feeds one RTP packet.
    pub fn push(&mut self, seq: u16, ts: u32, marker: bool, payload: &Bytes) {
        match self {
            VideoDepacketizer::H264(d) => d.push(seq, ts, marker, payload),
            VideoDepacketizer::H265(d) => d.push(seq, ts, marker, payload),
        }
    }

    /// The next completed access unit.
    pub fn pull(&mut self) -> Option<Au> {
        match self {
            VideoDepacketizer::H264(d) => d.pull().map(|a| Au {
                data: a.data,
                keyframe: a.keyframe,
                rtp_timestamp: a.rtp_timestamp,
            }),
            VideoDepacketizer::H265(d) => d.pull().map(|a| Au {
                data: a.data,
                keyframe: a.keyframe,
                rtp_timestamp: a.rtp_timestamp,
            }),
        }
    }

    /// Waits for the next key frame.
    pub fn resync(&mut self) {
        match self {
            VideoDepacketizer::H264(d) => d.resync(),
            VideoDepacketizer::H265(d) => d.resync(),
        }
    }

    /// Whether a key frame should be requested; clears the flag.
    pub fn take_pli_request(&mut self) -> bool {
        match self {
            VideoDepacketizer::H264(d) => d.take_pli_request(),
            VideoDepacketizer::H265(d) => d.take_pli_request(),
        }
    }
}
