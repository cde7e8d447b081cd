//! The hub's unit of media: one depacketized access unit ([`Frame`]) and the H.264
//! parameters a consumer needs to describe the stream ([`VideoParams`]).
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
    /// H.264 video, Annex-B access units.
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
    /// H.264: one Annex-B access unit (start codes included); a key frame carries its
    /// SPS and PPS before the IDR slice (the hub inserts them if the source did not).
    /// Opus: exactly one packet.
    pub data: Bytes,
    /// True for an H.264 IDR access unit. Always false for audio.
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

/// What a consumer needs to describe the H.264 stream (SDP `fmtp`, MSE codec string).
///
/// Parsed from the SPS of the first cached key frame; see [`crate::media::h264`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoParams {
    /// Displayed width in pixels (after SPS frame cropping).
    pub width: u32,
    /// Displayed height in pixels (after SPS frame cropping).
    pub height: u32,
    /// RFC 6184 `profile-level-id`: six lowercase hex digits (profile, constraints, level).
    pub profile_level_id: String,
    /// The SPS NAL unit, without start code.
    pub sps: Bytes,
    /// The PPS NAL unit, without start code.
    pub pps: Bytes,
}

impl VideoParams {
    /// RFC 6184 `sprop-parameter-sets`: base64 SPS and PPS joined by a comma.
    pub fn sprop_parameter_sets(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        format!("{},{}", b64.encode(&self.sps), b64.encode(&self.pps))
    }

    /// RFC 6381 codec string, e.g. `avc1.640028`, for MSE and HLS.
    pub fn rfc6381_codec(&self) -> String {
        format!("avc1.{}", self.profile_level_id)
    }
}
