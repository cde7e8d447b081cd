//! The crate's one H.264 bitstream module (ITU-T H.264, RFC 6184): everything
//! that looks inside H.264 lives here, and the live client (`ring::live`), the
//! simulator, the outputs and the bench use it.
//!
//! - this file: NAL unit types, Annex-B splitting ([`nal_units`], [`nal_slices`]),
//!   AVC length-prefixed splitting ([`avc_nals`]), parameter sets in access units,
//!   emulation prevention ([`unescape`], [`escape`]);
//! - [`sps`]: the SPS parser (§7.3.2.1.1) behind [`VideoParams`](super::VideoParams) (size after
//!   cropping, `profile-level-id`) and RFC 6184 [`ProfileLevel`]s;
//! - [`rtp`]: the RFC 6184 depacketizer (RTP payloads → Annex-B access units);
//! - [`pay`]: the RFC 6184 packetizer (Annex-B access units → RTP payloads).
//!
//! No I/O, no GStreamer, no webrtc crate: plain bytes in, bytes or values out.
//! It never decodes slices and never allocates per NAL except when removing or
//! adding emulation-prevention bytes.

pub(crate) mod bits;
pub mod pay;
pub mod rtp;
pub mod sps;

use std::ops::Range;

use bytes::{Bytes, BytesMut};

pub use sps::{Profile, ProfileLevel, Sps, SpsError, parse_sps, video_params};

/// NAL unit type of a non-IDR slice (the lowest slice type; 1–5 are slices).
pub const NAL_SLICE: u8 = 1;
/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// The 4-byte Annex-B start code this crate writes.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Byte ranges of the NAL units of an Annex-B buffer (3- or 4-byte start codes),
/// start codes and trailing zero bytes excluded. Bytes before the first start code
/// form a unit too (tolerates AVC-less "raw" single NALs).
fn nal_ranges(data: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
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
                return Some(start..stop);
            }
        }
        None
    })
}

/// Iterates over the NAL units of an Annex-B buffer (3- or 4-byte start codes),
/// yielding each unit without its start code, as a zero-copy slice of `data`.
/// Bytes before the first start code are yielded as a unit too.
pub fn nal_units(data: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    nal_ranges(data).map(|r| data.slice(r))
}

/// [`nal_units`] over borrowed bytes.
pub fn nal_slices(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    nal_ranges(data).map(|r| &data[r])
}

/// Iterates over the NAL units of an AVC access unit (each prefixed by its
/// 4-byte big-endian length, as RTSP clients such as Retina hand them out).
/// Stops at the first length that runs past the end.
pub fn avc_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let len: [u8; 4] = rest.get(..4)?.try_into().ok()?;
        let n = usize::try_from(u32::from_be_bytes(len)).ok()?;
        let nal = rest.get(4..4usize.checked_add(n)?)?;
        rest = &rest[4 + n..];
        Some(nal)
    })
}

/// Offset of the start code (3 or 4 bytes) of the first slice NAL unit (types
/// 1–5) in an Annex-B access unit: where a NAL unit that must precede the
/// picture (an SEI) goes. `None` if the access unit has no slice.
pub fn first_slice_offset(au: &[u8]) -> Option<usize> {
    first_nal_offset(au, |n| matches!(nal_type(n), NAL_SLICE..=NAL_IDR))
}

/// Offset of the start code (3 or 4 bytes) of the first NAL unit of an Annex-B
/// buffer that `is` accepts (given the unit without start code). Codec-neutral:
/// [`first_slice_offset`] and `media::h265::first_slice_offset` use it.
pub fn first_nal_offset(au: &[u8], is: impl Fn(&[u8]) -> bool) -> Option<usize> {
    let r = nal_ranges(au).find(|r| is(&au[r.clone()]))?;
    let start = r.start;
    if start < 3 || au[start - 3..start] != [0, 0, 1] {
        return Some(start); // no start code in front (a raw leading unit)
    }
    Some(if start >= 4 && au[start - 4] == 0 {
        start - 4
    } else {
        start - 3
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
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(n);
    }
    if !au.starts_with(&[0, 0, 1]) && !au.starts_with(&START_CODE) {
        out.extend_from_slice(&START_CODE);
    }
    out.extend_from_slice(au);
    out.freeze()
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

/// Adds emulation-prevention bytes to a NAL unit's payload (RBSP): a `03` goes
/// before any byte `00`–`03` that follows two zero bytes, so the result holds
/// no start code (H.264 §7.4.1). The inverse of [`unescape`].
pub fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3); // emulation_prevention_three_byte
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x264 High profile 1920x1080 (coded 1920x1088, cropped by 8 rows).
    pub(super) const SPS_1080P: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x5a, 0x80, 0x80,
        0x80, 0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe3, 0x06, 0x32, 0xc0,
    ];
    /// x264 High profile 640x360 (coded 640x368).
    pub(super) const SPS_360P: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x16, 0xa0, 0xc0, 0xc0,
        0xd4, 0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe2, 0xc5, 0xb2, 0xc0,
    ];
    /// x264 constrained baseline 1280x720 (no cropping, no high-profile fields).
    pub(super) const SPS_720P_BASELINE: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80,
        0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x24,
    ];

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

    #[test]
    fn borrowed_and_length_prefixed_splitting_agree() {
        let au: Vec<u8> = [
            &[0, 0, 0, 1, 0x67, 1, 0][..],
            &[0, 0, 1, 0x68, 3],
            &[0, 0, 0, 1, 0x65, 0x88],
        ]
        .concat();
        let nals: Vec<&[u8]> = nal_slices(&au).collect();
        assert_eq!(nals, vec![&[0x67, 1][..], &[0x68, 3], &[0x65, 0x88]]);
        let mut avc = Vec::new();
        for n in &nals {
            avc.extend_from_slice(&(n.len() as u32).to_be_bytes());
            avc.extend_from_slice(n);
        }
        assert_eq!(avc_nals(&avc).collect::<Vec<_>>(), nals);
        // A length past the end stops the walk.
        avc.extend_from_slice(&[0, 0, 0, 9, 0x41]);
        assert_eq!(avc_nals(&avc).count(), 3);
    }

    #[test]
    fn first_slice_offset_points_at_the_slice_start_code() {
        let four: Vec<u8> = [&[0, 0, 0, 1, 0x67, 1][..], &[0, 0, 0, 1, 0x65, 0x88]].concat();
        assert_eq!(first_slice_offset(&four), Some(6));
        let three: Vec<u8> = [&[0, 0, 1, 0x68, 3][..], &[0, 0, 1, 0x41, 9]].concat();
        assert_eq!(first_slice_offset(&three), Some(5));
        assert_eq!(first_slice_offset(&[0, 0, 0, 1, 0x67, 1]), None);
    }

    #[test]
    fn escape_round_trips_and_leaves_no_start_code() {
        for rbsp in [
            &[0u8, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0][..],
            &[1, 2, 3],
            &[],
        ] {
            let e = escape(rbsp);
            assert!(
                !e.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2),
                "{e:?}"
            );
            assert_eq!(unescape(&e), rbsp);
        }
    }
}
