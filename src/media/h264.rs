//! Minimal H.264 bitstream helpers for the hub: Annex-B NAL splitting and an SPS
//! parser (ITU-T H.264 §7.3.2.1.1) sufficient for [`VideoParams`]: size after
//! cropping, `profile-level-id` and the raw SPS/PPS.
//!
//! It never decodes slices and never allocates per NAL except when removing
//! emulation-prevention bytes from an SPS.

use bytes::{Bytes, BytesMut};

use super::VideoParams;

/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;

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

/// Iterates over the NAL units of an Annex-B buffer (3- or 4-byte start codes),
/// yielding each unit without its start code. Bytes before the first start code are
/// yielded as a unit too (tolerates AVC-less "raw" single NALs).
pub fn nal_units(data: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        while pos < data.len() {
            let start = skip_start_code(data, pos);
            let end = find_start_code(data, start).unwrap_or(data.len());
            pos = end;
            // Trailing zero bytes belong to the next start code (trailing_zero_8bits).
            let mut stop = end;
            while stop > start && data[stop - 1] == 0 && end != data.len() {
                stop -= 1;
            }
            if stop > start {
                return Some(data.slice(start..stop));
            }
        }
        None
    })
}

fn skip_start_code(d: &[u8], mut pos: usize) -> usize {
    while pos < d.len() && d[pos] == 0 {
        pos += 1;
    }
    if pos < d.len() && d[pos] == 1 && pos >= 2 {
        pos + 1
    } else {
        pos
    }
}

fn find_start_code(d: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 3 <= d.len() {
        if d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The `nal_unit_type` of a NAL unit (without start code), or 0 if empty.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// True if the access unit contains an IDR slice.
pub fn contains_idr(au: &Bytes) -> bool {
    nal_units(au).any(|n| nal_type(&n) == NAL_IDR)
}

/// The first SPS and PPS found in an access unit.
pub fn find_parameter_sets(au: &Bytes) -> (Option<Bytes>, Option<Bytes>) {
    let (mut sps, mut pps) = (None, None);
    for n in nal_units(au) {
        match nal_type(&n) {
            NAL_SPS if sps.is_none() => sps = Some(n),
            NAL_PPS if pps.is_none() => pps = Some(n),
            _ => {}
        }
    }
    (sps, pps)
}

/// Returns `au` with `sps` and `pps` prepended (Annex-B, 4-byte start codes).
pub fn prepend_parameter_sets(au: &Bytes, sps: &Bytes, pps: &Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(au.len() + sps.len() + pps.len() + 8);
    for n in [sps, pps] {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(n);
    }
    if !au.starts_with(&[0, 0, 1]) && !au.starts_with(&[0, 0, 0, 1]) {
        out.extend_from_slice(&[0, 0, 0, 1]);
    }
    out.extend_from_slice(au);
    out.freeze()
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
        format!(
            "{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraints, self.level_idc
        )
    }
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
        codec: super::VideoCodec::H264,
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

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`) from a NAL unit's
/// payload (RBSP).
pub fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn bit(&mut self) -> Result<bool, SpsError> {
        let byte = self.data.get(self.pos / 8).ok_or(SpsError::Truncated)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(b == 1)
    }

    fn bits(&mut self, n: u32) -> Result<u32, SpsError> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.bit()?);
        }
        Ok(v)
    }

    /// Unsigned exp-Golomb.
    fn ue(&mut self) -> Result<u32, SpsError> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(SpsError::OutOfRange("exp-Golomb code"));
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// Signed exp-Golomb.
    fn se(&mut self) -> Result<i32, SpsError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// x264 High profile 1920x1080 (coded 1920x1088, cropped by 8 rows).
    const SPS_1080P: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x5a, 0x80, 0x80,
        0x80, 0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe3, 0x06, 0x32, 0xc0,
    ];
    /// x264 High profile 640x360 (coded 640x368).
    const SPS_360P: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x16, 0xa0, 0xc0, 0xc0,
        0xd4, 0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe2, 0xc5, 0xb2, 0xc0,
    ];
    /// x264 constrained baseline 1280x720 (no cropping, no high-profile fields).
    const SPS_720P_BASELINE: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80,
        0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x24,
    ];

    #[test]
    fn parses_1080p_with_cropping() {
        let sps = parse_sps(SPS_1080P).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.profile_level_id(), "640028");
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
    fn exp_golomb() {
        // bits: 1 | 010 | 011 | 00100 | 00101 → ue 0, 1, 2, 3 and se(4) = -2
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue().unwrap(), 0);
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        assert_eq!(r.se().unwrap(), -2);
    }

    #[test]
    fn splits_annexb_and_finds_parameter_sets() {
        let mut au = vec![0, 0, 0, 1];
        au.extend_from_slice(SPS_1080P);
        au.extend_from_slice(&[
            0, 0, 1, 0x68, 0xeb, 0xec, 0xb2, 0x2c, 0, 0, 0, 1, 0x65, 0x88, 0x84,
        ]);
        let au = Bytes::from(au);
        let nals: Vec<_> = nal_units(&au).collect();
        assert_eq!(nals.len(), 3);
        assert_eq!(&nals[0][..], SPS_1080P);
        assert_eq!(nal_type(&nals[1]), NAL_PPS);
        assert_eq!(&nals[2][..], &[0x65, 0x88, 0x84]);
        assert!(contains_idr(&au));
        let (sps, pps) = find_parameter_sets(&au);
        let params = video_params(sps.unwrap(), pps.unwrap()).unwrap();
        assert_eq!((params.width, params.height), (1920, 1080));
        assert_eq!(params.sprop_parameter_sets().split(',').count(), 2);
        assert_eq!(params.rfc6381_codec(), "avc1.640028");
    }

    #[test]
    fn prepends_parameter_sets() {
        let idr = Bytes::from_static(&[0, 0, 0, 1, 0x65, 0x88]);
        let out = prepend_parameter_sets(
            &idr,
            &Bytes::from_static(SPS_360P),
            &Bytes::from_static(&[0x68, 0xeb]),
        );
        let types: Vec<u8> = nal_units(&out).map(|n| nal_type(&n)).collect();
        assert_eq!(types, vec![NAL_SPS, NAL_PPS, NAL_IDR]);
    }
}
