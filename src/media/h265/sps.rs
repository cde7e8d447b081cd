//! The H.265 sequence parameter set, parsed as far as the hub needs it
//! (ITU-T H.265 §7.3.2.2): profile, tier and level (for the RFC 7798 `fmtp`) and
//! the picture size after the conformance window.

use super::{NAL_SPS, nal_type};
use crate::media::h264::bits::{BitReader, BitsError};

/// Why an SPS could not be parsed (or parameter sets are missing).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpsError {
    /// The NAL unit ended before the syntax did.
    #[error("H.265 SPS truncated")]
    Truncated,
    /// The NAL unit is not an SPS.
    #[error("not an H.265 SPS NAL unit (type {0})")]
    NotSps(u8),
    /// A field has a value the spec forbids.
    #[error("H.265 SPS field {0} out of range")]
    OutOfRange(&'static str),
    /// VPS, SPS or PPS has not been seen yet.
    #[error("H.265 VPS, SPS or PPS missing")]
    Missing,
}

impl From<BitsError> for SpsError {
    fn from(e: BitsError) -> Self {
        match e {
            BitsError::Truncated => SpsError::Truncated,
            BitsError::ExpGolomb => SpsError::OutOfRange("exp-Golomb code"),
        }
    }
}

/// Fields of an H.265 SPS that the hub uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `general_profile_space` (0 in every profile so far).
    pub profile_space: u8,
    /// `general_profile_idc` (1 Main, 2 Main 10, 3 Main Still Picture, …).
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 in the most significant bit.
    pub compatibility_flags: u32,
    /// The 48 bits after them (progressive/interlaced/non-packed/frame-only and the
    /// profile's constraint flags), as six bytes.
    pub constraint_flags: [u8; 6],
    /// `general_tier_flag` (0 Main tier, 1 High tier).
    pub tier_flag: u8,
    /// `general_level_idc`: 30 × the level (93 = level 3.1, 120 = level 4).
    pub level_idc: u8,
    /// Width in luma samples after the conformance window.
    pub width: u32,
    /// Height in luma samples after the conformance window.
    pub height: u32,
}

impl Sps {
    /// RFC 7798 §7.1 `fmtp` parameters: `profile-id=1;tier-flag=0;level-id=93`.
    pub fn fmtp(&self) -> String {
        format!(
            "profile-id={};tier-flag={};level-id={}",
            self.profile_idc, self.tier_flag, self.level_idc
        )
    }

    /// The RFC 6381 codec string (ISO/IEC 14496-15 Annex E.3), e.g.
    /// `hvc1.1.6.L93.B0` for Main, level 3.1: profile space (A–C, none for 0) and
    /// profile, the compatibility flags in reverse bit order (hex), tier (`L`/`H`)
    /// and level, then the constraint bytes without trailing zero bytes.
    pub fn codec_string(&self) -> String {
        let space = match self.profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let tier = if self.tier_flag == 1 { 'H' } else { 'L' };
        let mut s = format!(
            "hvc1.{space}{}.{:X}.{tier}{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            self.level_idc
        );
        let used = self
            .constraint_flags
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |i| i + 1);
        for b in &self.constraint_flags[..used.max(1)] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

/// Parses an SPS NAL unit (with its 2-byte NAL header, without start code).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, SpsError> {
    let t = nal_type(nal);
    if t != NAL_SPS {
        return Err(SpsError::NotSps(t));
    }
    let rbsp = crate::media::h264::unescape(nal.get(2..).ok_or(SpsError::Truncated)?);
    let mut r = BitReader::new(&rbsp);
    let _vps_id = r.bits(4)?;
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    let _temporal_id_nesting = r.bits(1)?;
    // profile_tier_level(1, max_sub_layers_minus1), §7.3.3
    let profile_space = r.bits(2)? as u8;
    let tier_flag = r.bits(1)? as u8;
    let profile_idc = r.bits(5)? as u8;
    let compatibility_flags = r.bits(32)?;
    // progressive/interlaced/non-packed/frame-only + 43 + 1 bits
    let mut constraint_flags = [0u8; 6];
    for b in &mut constraint_flags {
        *b = r.bits(8)? as u8;
    }
    let level_idc = r.bits(8)? as u8;
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(max_sub_layers_minus1) {
        *p = (r.bits(1)? == 1, r.bits(1)? == 1);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for (profile, level) in present.iter().take(max_sub_layers_minus1) {
        if *profile {
            r.skip(88)?;
        }
        if *level {
            r.skip(8)?;
        }
    }
    let _sps_id = r.ue()?;
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc > 3 {
        return Err(SpsError::OutOfRange("chroma_format_idc"));
    }
    let separate_colour_plane = chroma_format_idc == 3 && r.bits(1)? == 1;
    let width = r.ue()?;
    let height = r.ue()?;
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bits(1)? == 1 {
        (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    // SubWidthC / SubHeightC (Table 6-1); ChromaArrayType 0 counts in luma samples.
    let chroma = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_w, sub_h): (u64, u64) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_w = sub_w * (u64::from(left) + u64::from(right));
    let crop_h = sub_h * (u64::from(top) + u64::from(bottom));
    let width = u64::from(width)
        .checked_sub(crop_w)
        .and_then(|w| u32::try_from(w).ok())
        .filter(|w| *w > 0)
        .ok_or(SpsError::OutOfRange("conf_win_left/right_offset"))?;
    let height = u64::from(height)
        .checked_sub(crop_h)
        .and_then(|h| u32::try_from(h).ok())
        .filter(|h| *h > 0)
        .ok_or(SpsError::OutOfRange("conf_win_top/bottom_offset"))?;
    Ok(Sps {
        profile_space,
        profile_idc,
        compatibility_flags,
        constraint_flags,
        tier_flag,
        level_idc,
        width,
        height,
    })
}
