//! H.265 (HEVC) bitstream helpers for the hub, the live call and the consumers:
//! NAL unit types (ITU-T H.265 Table 7-1), IRAP key frames, access-unit boundaries,
//! the VPS/SPS/PPS cache ([`ParamSets`]) that puts parameter sets in front of every
//! key frame, and [`VideoParams`] for a stream (size from the SPS, RFC 7798 `fmtp`).
//!
//! - [`sps`]: the SPS parser (size after the conformance window, profile/tier/level).
//! - [`rtp`]: the RFC 7798 depacketizer (single NAL, AP, FU) → Annex-B access units.
//! - [`pay`]: the RFC 7798 packetizer, Annex-B access units → RTP payloads (WHEP).
//!
//! Annex-B splitting is codec-neutral and shared with H.264 ([`super::h264::nal_units`]).
//! Nothing here decodes slices, touches RTP sockets or GStreamer.

pub mod pay;
pub mod rtp;
pub mod sps;

use bytes::{Bytes, BytesMut};

use super::{VideoCodec, VideoParams};

pub use sps::{Sps, SpsError, parse_sps};

/// First IRAP type: BLA_W_LP (H.265 Table 7-1).
pub const NAL_BLA_W_LP: u8 = 16;
/// IDR_W_RADL: an IDR picture that may have leading pictures.
pub const NAL_IDR_W_RADL: u8 = 19;
/// IDR_N_LP: an IDR picture without leading pictures.
pub const NAL_IDR_N_LP: u8 = 20;
/// CRA_NUT: clean random access.
pub const NAL_CRA: u8 = 21;
/// Last type of the IRAP range (22 and 23 are reserved IRAP types).
pub const NAL_IRAP_LAST: u8 = 23;
/// Video parameter set.
pub const NAL_VPS: u8 = 32;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// Picture parameter set.
pub const NAL_PPS: u8 = 34;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 35;
/// Prefix SEI (benchmark stamps go here).
pub const NAL_PREFIX_SEI: u8 = 39;
/// Suffix SEI.
pub const NAL_SUFFIX_SEI: u8 = 40;

/// The `nal_unit_type` of a NAL unit (2-byte header, no start code), or 0 if empty.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// Whether `t` is a VCL (slice) NAL unit type (0..=31).
pub fn is_vcl(t: u8) -> bool {
    t < 32
}

/// Whether `t` is an IRAP picture (BLA, IDR, CRA; 16..=23): where decoding can start.
pub fn is_irap(t: u8) -> bool {
    (NAL_BLA_W_LP..=NAL_IRAP_LAST).contains(&t)
}

/// Whether a NAL unit of type `t` that follows a picture's slices begins the next
/// access unit (H.265 §7.4.2.4.4): VPS/SPS/PPS, AUD, prefix SEI and the reserved
/// 41..=44 and unspecified 48..=55 types.
pub fn starts_access_unit(t: u8) -> bool {
    matches!(t, NAL_VPS..=NAL_AUD | NAL_PREFIX_SEI | 41..=44 | 48..=55)
}

/// For a VCL NAL unit: `first_slice_segment_in_pic_flag`, the first bit after the
/// 2-byte header. A set flag starts a new picture (and so a new access unit).
pub fn first_slice_in_picture(nal: &[u8]) -> bool {
    is_vcl(nal_type(nal)) && nal.get(2).is_some_and(|b| b & 0x80 != 0)
}

/// Offset of the start code of the first slice (VCL) NAL unit in an Annex-B access
/// unit: where a prefix SEI goes. `None` if the access unit has no slice.
pub fn first_slice_offset(au: &[u8]) -> Option<usize> {
    super::h264::first_nal_offset(au, |n| !n.is_empty() && is_vcl(nal_type(n)))
}

/// True if the Annex-B access unit contains an IRAP slice.
pub fn contains_irap(au: &Bytes) -> bool {
    super::h264::nal_units(au).any(|n| is_irap(nal_type(&n)))
}

/// The first VPS, SPS and PPS of an Annex-B access unit.
pub fn find_parameter_sets(au: &Bytes) -> ParamSets {
    let mut ps = ParamSets::default();
    for n in super::h264::nal_units(au) {
        ps.remember_first(&n);
    }
    ps
}

/// A stream's VPS, SPS and PPS (NAL units without start codes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamSets {
    /// Video parameter set.
    pub vps: Option<Bytes>,
    /// Sequence parameter set.
    pub sps: Option<Bytes>,
    /// Picture parameter set.
    pub pps: Option<Bytes>,
}

impl ParamSets {
    /// Stores `nal` if it is a parameter set (replacing an older one); returns
    /// whether it was one.
    pub fn remember(&mut self, nal: &Bytes) -> bool {
        let slot = match nal_type(nal) {
            NAL_VPS => &mut self.vps,
            NAL_SPS => &mut self.sps,
            NAL_PPS => &mut self.pps,
            _ => return false,
        };
        *slot = Some(nal.clone());
        true
    }

    fn remember_first(&mut self, nal: &Bytes) {
        let slot = match nal_type(nal) {
            NAL_VPS => &mut self.vps,
            NAL_SPS => &mut self.sps,
            NAL_PPS => &mut self.pps,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(nal.clone());
        }
    }

    /// Whether all three are known.
    pub fn complete(&self) -> bool {
        self.vps.is_some() && self.sps.is_some() && self.pps.is_some()
    }

    /// Copies the sets `other` has into `self`; returns whether anything changed.
    pub fn update_from(&mut self, other: &ParamSets) -> bool {
        let mut changed = false;
        for (mine, theirs) in [
            (&mut self.vps, &other.vps),
            (&mut self.sps, &other.sps),
            (&mut self.pps, &other.pps),
        ] {
            if theirs.is_some() && mine != theirs {
                mine.clone_from(theirs);
                changed = true;
            }
        }
        changed
    }

    /// Writes the known sets, each with a 4-byte start code, into `out`.
    pub fn write_annex_b(&self, out: &mut BytesMut) {
        for n in [&self.vps, &self.sps, &self.pps].into_iter().flatten() {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(n);
        }
    }

    /// `au` with the known sets in front, unless `au` already has all three.
    pub fn prepend_to(&self, au: &Bytes) -> Bytes {
        if find_parameter_sets(au).complete() {
            return au.clone();
        }
        let mut out = BytesMut::with_capacity(au.len() + 128);
        self.write_annex_b(&mut out);
        for n in super::h264::nal_units(au)
            .filter(|n| !matches!(nal_type(n), NAL_VPS | NAL_SPS | NAL_PPS))
        {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(&n);
        }
        out.freeze()
    }

    /// [`VideoParams`] for these sets: size and profile from the SPS.
    pub fn video_params(&self) -> Result<VideoParams, SpsError> {
        let (Some(vps), Some(sps), Some(pps)) = (&self.vps, &self.sps, &self.pps) else {
            return Err(SpsError::Missing);
        };
        let parsed = parse_sps(sps)?;
        Ok(VideoParams {
            codec: VideoCodec::H265,
            width: parsed.width,
            height: parsed.height,
            profile_level_id: parsed.fmtp(),
            vps: vps.clone(),
            sps: sps.clone(),
            pps: pps.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
