//! The hub's unit of media: one depacketized access unit ([`Frame`]), the stream's
//! video codec ([`VideoCodec`]) and the parameters a consumer needs to describe the
//! stream ([`VideoParams`]).
//!
//! This module owns only plain data types; it never touches RTP, GStreamer or WebRTC.

use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;

/// Video clock rate of [`Frame::pts`] for [`MediaKind::Video`] (90 kHz, RFC 6184).
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
/// Audio clock rate of [`Frame::pts`] for [`MediaKind::Audio`] (48 kHz, RFC 7587 Opus).
pub const AUDIO_CLOCK_RATE: u32 = 48_000;

/// Which elementary stream a [`Frame`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Video (H.264 or H.265, see [`VideoParams::codec`]), Annex-B access units.
    Video,
    /// Opus audio, one packet per frame.
    Audio,
}

impl MediaKind {
    /// The clock rate of this kind's [`Frame::pts`] and [`Frame::duration`], in Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            MediaKind::Video => VIDEO_CLOCK_RATE,
            MediaKind::Audio => AUDIO_CLOCK_RATE,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            MediaKind::Video => 0,
            MediaKind::Audio => 1,
        }
    }
}

/// One depacketized access unit, shared between subscribers as `Arc<Frame>`.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Video or audio.
    pub kind: MediaKind,
    /// Video: one Annex-B access unit (start codes included); a key frame carries its
    /// parameter sets (H.264 SPS/PPS, H.265 VPS/SPS/PPS) before the IDR/IRAP slices
    /// (the hub inserts them if the source did not).
    /// Opus: exactly one packet.
    pub data: Bytes,
    /// True for an H.264 IDR or H.265 IRAP access unit. Always false for audio.
    pub keyframe: bool,
    /// Presentation timestamp at [`MediaKind::clock_rate`] (90 kHz video, 48 kHz audio).
    /// Sources give any 64-bit monotonic base; frames published by the hub are rebased so
    /// that they never go backwards per kind, across session renewals and recoveries.
    pub pts: u64,
    /// Best-effort duration at the same clock rate; 0 when unknown.
    pub duration: u32,
    /// When the hub received this frame (set by the hub on ingest), for latency metrics.
    pub received_at: Instant,
    /// Hub-assigned sequence number, strictly increasing per camera over all kinds and
    /// sessions. Sources may leave it 0.
    pub seq: u64,
}

impl Frame {
    /// A frame with `received_at = now` and `seq = 0`, as a source would build it.
    pub fn new(kind: MediaKind, data: Bytes, keyframe: bool, pts: u64, duration: u32) -> Self {
        Frame {
            kind,
            data,
            keyframe,
            pts,
            duration,
            received_at: Instant::now(),
            seq: 0,
        }
    }

    /// True for a video key frame: where a decoder (and a new subscriber) can start.
    pub fn is_video_keyframe(&self) -> bool {
        self.kind == MediaKind::Video && self.keyframe
    }
}

/// The video codec of a stream. Ring sends H.264 unless the offer lists H.265 and the
/// camera is in HEVC mode (`docs/design/0009-h265.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoCodec {
    /// H.264 / AVC (RFC 6184).
    #[default]
    H264,
    /// H.265 / HEVC (RFC 7798).
    H265,
}

impl VideoCodec {
    /// The codec of an RTP media type (`video/H264`, `video/H265`, as webrtc-rs
    /// spells a track's MIME type; case-insensitive), `None` for anything else.
    pub fn from_mime_type(mime: &str) -> Option<Self> {
        if mime.eq_ignore_ascii_case("video/H264") {
            Some(VideoCodec::H264)
        } else if mime.eq_ignore_ascii_case("video/H265") {
            Some(VideoCodec::H265)
        } else {
            None
        }
    }

    /// `h264` or `h265`.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
        }
    }
}

impl std::fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a consumer needs to describe the video stream (SDP `fmtp`, MSE codec string).
///
/// Parsed from the parameter sets of the first cached key frame; see
/// [`crate::media::h264`] and [`crate::media::h265`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoParams {
    /// The stream's codec.
    pub codec: VideoCodec,
    /// Displayed width in pixels (after SPS frame cropping).
    pub width: u32,
    /// Displayed height in pixels (after SPS frame cropping).
    pub height: u32,
    /// H.264: RFC 6184 `profile-level-id`, six lowercase hex digits (profile,
    /// constraints, level). H.265: the RFC 7798 `fmtp` parameters
    /// `profile-id=…;tier-flag=…;level-id=…`.
    pub profile_level_id: String,
    /// H.265: the VPS NAL unit, without start code. Empty for H.264.
    pub vps: Bytes,
    /// The SPS NAL unit, without start code.
    pub sps: Bytes,
    /// The PPS NAL unit, without start code.
    pub pps: Bytes,
}

impl VideoParams {
    /// H.264: the RFC 6184 `sprop-parameter-sets` value (base64 SPS and PPS joined
    /// by a comma). H.265: the RFC 7798 parameters `sprop-vps=…;sprop-sps=…;sprop-pps=…`.
    pub fn sprop_parameter_sets(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self.codec {
            VideoCodec::H264 => format!("{},{}", b64.encode(&self.sps), b64.encode(&self.pps)),
            VideoCodec::H265 => format!(
                "sprop-vps={};sprop-sps={};sprop-pps={}",
                b64.encode(&self.vps),
                b64.encode(&self.sps),
                b64.encode(&self.pps)
            ),
        }
    }

    /// The RFC 6381 codec string, for MSE, HLS and the stats: `avc1.640028` for
    /// H.264, `hvc1.1.6.L93.B0` for H.265 (from the SPS; `hvc1` alone if the SPS
    /// does not parse).
    pub fn rfc6381_codec(&self) -> String {
        match self.codec {
            VideoCodec::H264 => format!("avc1.{}", self.profile_level_id),
            VideoCodec::H265 => super::h265::parse_sps(&self.sps)
                .map_or_else(|_| "hvc1".to_owned(), |s| s.codec_string()),
        }
    }
}
