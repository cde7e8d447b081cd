//! The H.264 sequence parameter set parser (ITU-T H.264 §7.3.2.1.1): what the
//! hub needs for [`VideoParams`] (size after cropping, `profile-level-id`),
//! plus RFC 6184 `profile-level-id` values ([`ProfileLevel`], [`Profile`]).
//! Emulation-prevention bytes are removed first ([`super::unescape`]).

use bytes::Bytes;

use super::{NAL_SPS, nal_type, unescape};
use crate::media::VideoParams;
use crate::media::h264::bits::{BitReader, BitsError};

/// Why an SPS could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpsError {
    /// The NAL unit ended before the syntax did.
    #[error("SPS truncated")]
    Truncated,
    /// The NAL unit is not an SPS.
    #[error("not an SPS NAL unit (type {0})")]
    NotSps(u8),
    /// A field has a value the spec forbids.
    #[error("SPS field {0} out of range")]
    OutOfRange(&'static str),
}

impl From<BitsError> for SpsError {
    fn from(e: BitsError) -> Self {
        match e {
            BitsError::Truncated => SpsError::Truncated,
            BitsError::ExpGolomb => SpsError::OutOfRange("exp-Golomb code"),
        }
    }
}

/// Fields of an SPS that the hub uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc` (66 baseline, 77 main, 100 high, …).
    pub profile_idc: u8,
    /// The constraint-set flags byte.
    pub constraints: u8,
    /// `level_idc` (e.g. 40 = level 4.0).
    pub level_idc: u8,
    /// Width in pixels after cropping.
    pub width: u32,
    /// Height in pixels after cropping.
    pub height: u32,
}

impl Sps {
    /// RFC 6184 `profile-level-id`: six lowercase hex digits.
    pub fn profile_level_id(&self) -> String {
        format_profile_level_id(self.profile_idc, self.constraints, self.level_idc)
    }
}

/// RFC 6184 `profile-level-id` of an SPS NAL unit without parsing it: the three
/// bytes after its header (`profile_idc`, constraint flags, `level_idc`; never
/// escaped, as `profile_idc` is not zero). `None` when the unit is too short.
pub fn profile_level_id_of(nal: &[u8]) -> Option<String> {
    match nal.get(1..4)? {
        &[p, c, l] => Some(format_profile_level_id(p, c, l)),
        _ => None,
    }
}

fn format_profile_level_id(profile_idc: u8, constraints: u8, level_idc: u8) -> String {
    format!("{profile_idc:02x}{constraints:02x}{level_idc:02x}")
}

/// H.264 profiles as RFC 6184 `profile-level-id` tells them apart: `profile_idc`
/// plus the constraint flags (RFC 6184 §8.1, Table 5). Different bytes may name the
/// same profile: `42c0` and `42e0` are both Constrained Baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Baseline with constraint_set1 (or Main/Extended constrained to it).
    ConstrainedBaseline,
    /// Baseline.
    Baseline,
    /// Main.
    Main,
    /// High with constraint_set4 and 5 (no B-frames).
    ConstrainedHigh,
    /// High (what Ring's cameras send).
    High,
    /// High 4:4:4 Predictive.
    PredictiveHigh444,
    /// Anything else: `profile_idc` and the constraint flags as they are.
    Other(u8, u8),
}

/// An RFC 6184 `profile-level-id`: `profile_idc`, the constraint flags
/// (`profile-iop`) and `level_idc`, as in the SPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileLevel {
    /// `profile_idc` (66 Baseline, 77 Main, 100 High, …).
    pub profile_idc: u8,
    /// The constraint-set flags byte.
    pub iop: u8,
    /// `level_idc` (e.g. 40 = level 4.0).
    pub level_idc: u8,
}

impl ProfileLevel {
    /// Parses six hex digits, e.g. `640028`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.len() != 6 || !s.is_ascii() {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&s[i..i + 2], 16).ok();
        Some(ProfileLevel {
            profile_idc: byte(0)?,
            iop: byte(2)?,
            level_idc: byte(4)?,
        })
    }

    /// The profile these bytes name (RFC 6184 Table 5: `profile_idc` with a bit
    /// pattern of the constraint flags; the two reserved low bits must be 0).
    pub fn profile(&self) -> Profile {
        // (profile_idc, mask, value, profile), first match wins.
        const TABLE: [(u8, u8, u8, Profile); 9] = [
            (0x42, 0b0100_1111, 0b0100_0000, Profile::ConstrainedBaseline),
            (0x4D, 0b1000_1111, 0b1000_0000, Profile::ConstrainedBaseline),
            (0x58, 0b1100_1111, 0b1100_0000, Profile::ConstrainedBaseline),
            (0x42, 0b0100_1111, 0b0000_0000, Profile::Baseline),
            (0x58, 0b1100_1111, 0b1000_0000, Profile::Baseline),
            (0x4D, 0b1010_1111, 0b0000_0000, Profile::Main),
            (0x64, 0b1111_1111, 0b0000_0000, Profile::High),
            (0x64, 0b1111_1111, 0b0000_1100, Profile::ConstrainedHigh),
            (0xF4, 0b0111_1111, 0b0000_0000, Profile::PredictiveHigh444),
        ];
        TABLE
            .iter()
            .find(|(idc, mask, value, _)| *idc == self.profile_idc && self.iop & mask == *value)
            .map_or(Profile::Other(self.profile_idc, self.iop), |t| t.3)
    }
}

impl std::fmt::Display for ProfileLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02x}{:02x}{:02x}",
            self.profile_idc, self.iop, self.level_idc
        )
    }
}

/// Builds [`VideoParams`] from an SPS and PPS NAL unit (no start codes).
pub fn video_params(sps: Bytes, pps: Bytes) -> Result<VideoParams, SpsError> {
    let parsed = parse_sps(&sps)?;
    Ok(VideoParams {
        codec: crate::media::VideoCodec::H264,
        vps: Bytes::new(),
        width: parsed.width,
        height: parsed.height,
        profile_level_id: parsed.profile_level_id(),
        sps,
        pps,
    })
}

/// Parses an SPS NAL unit (with its one-byte NAL header, without start code).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, SpsError> {
    let t = nal_type(nal);
    if t != NAL_SPS {
        return Err(SpsError::NotSps(t));
    }
    let rbsp = unescape(nal.get(1..).ok_or(SpsError::Truncated)?);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    let constraints = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    let _sps_id = r.ue()?;
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(SpsError::OutOfRange("chroma_format_idc"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        let _bit_depth_luma = r.ue()?;
        let _bit_depth_chroma = r.ue()?;
        let _qpprime_bypass = r.bit()?;
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num = r.ue()?;
    match r.ue()? {
        0 => {
            let _log2_max_poc_lsb = r.ue()?;
        }
        1 => {
            let _delta_always_zero = r.bit()?;
            let _offset_non_ref = r.se()?;
            let _offset_top_bottom = r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(SpsError::OutOfRange(
                    "num_ref_frames_in_pic_order_cnt_cycle",
                ));
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return Err(SpsError::OutOfRange("pic_order_cnt_type")),
    }
    let _max_num_ref_frames = r.ue()?;
    let _gaps_allowed = r.bit()?;
    let width_mbs = r
        .ue()?
        .checked_add(1)
        .ok_or(SpsError::OutOfRange("width"))?;
    let height_map_units = r
        .ue()?
        .checked_add(1)
        .ok_or(SpsError::OutOfRange("height"))?;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        let _mb_adaptive = r.bit()?;
    }
    let _direct_8x8 = r.bit()?;
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? {
        (cl, cr, ct, cb) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let field_factor: u32 = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_x, crop_y): (u32, u32) = match chroma_array_type {
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let full_w = u64::from(width_mbs) * 16;
    let full_h = u64::from(height_map_units) * 16 * u64::from(field_factor);
    let crop_w = u64::from(crop_x) * (u64::from(cl) + u64::from(cr));
    let crop_h = u64::from(crop_y) * (u64::from(ct) + u64::from(cb));
    let width = full_w
        .checked_sub(crop_w)
        .and_then(|w| u32::try_from(w).ok())
        .ok_or(SpsError::OutOfRange("frame_crop_left/right_offset"))?;
    let height = full_h
        .checked_sub(crop_h)
        .and_then(|h| u32::try_from(h).ok())
        .ok_or(SpsError::OutOfRange("frame_crop_top/bottom_offset"))?;
    Ok(Sps {
        profile_idc,
        constraints,
        level_idc,
        width,
        height,
    })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), SpsError> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(r.se()?);
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::tests::{SPS_360P, SPS_720P_BASELINE, SPS_1080P};

    #[test]
    fn profile_level_ids_name_profiles() {
        let pl = |s: &str| ProfileLevel::parse(s).unwrap();
        let p = pl("640028");
        assert_eq!((p.profile_idc, p.iop, p.level_idc), (100, 0, 40));
        assert_eq!(p.to_string(), "640028");
        assert_eq!(pl("42E01F").to_string(), "42e01f");
        for bad in ["", "64002", "6400288", "zz0028", "6400é8"] {
            assert_eq!(ProfileLevel::parse(bad), None, "{bad}");
        }
        // x264's Constrained Baseline (cs0+cs1) and the browsers' (cs0+cs1+cs2).
        assert_eq!(pl("42c028").profile(), Profile::ConstrainedBaseline);
        assert_eq!(pl("42e01f").profile(), Profile::ConstrainedBaseline);
        assert_eq!(pl("4d8028").profile(), Profile::ConstrainedBaseline);
        assert_eq!(pl("42001f").profile(), Profile::Baseline);
        assert_eq!(pl("4d001f").profile(), Profile::Main);
        assert_eq!(pl("64001f").profile(), Profile::High);
        assert_eq!(pl("640c1f").profile(), Profile::ConstrainedHigh);
        assert_eq!(pl("f4001f").profile(), Profile::PredictiveHigh444);
        assert_eq!(pl("6e001f").profile(), Profile::Other(0x6e, 0));
        // Reserved bits set: no named profile.
        assert_eq!(pl("42e11f").profile(), Profile::Other(0x42, 0xe1));
    }

    #[test]
    fn parses_1080p_with_cropping() {
        let sps = parse_sps(SPS_1080P).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.profile_level_id(), "640028");
    }

    #[test]
    fn profile_level_id_of_reads_the_unparsed_unit_as_the_parser_does() {
        for nal in [SPS_1080P, SPS_360P, SPS_720P_BASELINE] {
            let parsed = parse_sps(nal).unwrap().profile_level_id();
            assert_eq!(profile_level_id_of(nal), Some(parsed));
        }
        assert_eq!(profile_level_id_of(&[0x67, 0x42, 0xc0]), None);
    }

    #[test]
    fn parses_360p_and_baseline_720p() {
        let sps = parse_sps(SPS_360P).unwrap();
        assert_eq!((sps.width, sps.height), (640, 360));
        assert_eq!(sps.profile_level_id(), "64001e");
        let sps = parse_sps(SPS_720P_BASELINE).unwrap();
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.profile_level_id(), "42c01f");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_sps(&[0x68, 0x01]), Err(SpsError::NotSps(8)));
        assert_eq!(parse_sps(&SPS_1080P[..6]), Err(SpsError::Truncated));
        assert_eq!(parse_sps(&[]), Err(SpsError::NotSps(0)));
    }

    #[test]
    fn parses_480p_constrained_baseline() {
        // x264 constrained baseline 640x480, as the simulator's 480p clip.
        let sps = [
            0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x16, 0xa0, 0xc0, 0xc0, 0xd4,
            0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe2, 0xc5, 0xc9,
        ];
        let sps = parse_sps(&sps).unwrap();
        assert_eq!((sps.width, sps.height), (640, 480));
    }
}
