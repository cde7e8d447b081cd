//! Unit tests of the H.265 helpers, SPS parser and RFC 7798 depacketizer, with
//! parameter sets from x265 (libx265 via ffmpeg, 1366x766, which x265 codes as
//! 1368x768 with a conformance window).

use bytes::{BufMut, Bytes, BytesMut};

use super::rtp::Depacketizer;
use super::*;

fn hex(s: &str) -> Bytes {
    Bytes::from(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    )
}

/// Main profile, 4:2:0, level 4 (120).
fn vps() -> Bytes {
    hex("40010c01ffff016000000300900000030000030078959809")
}
fn sps() -> Bytes {
    hex("420101016000000300900000030000030078a002ac80301d565959a4932bc05a020000030002000003000a10")
}
fn pps() -> Bytes {
    hex("4401c172b46240")
}
/// RExt profile (4), 4:4:4: the crop unit is one sample.
const SPS_444: &str =
    "4201010408000003009e08000003000078900055900603bbcb2b349265780b702020004000000300400000030142";

/// A slice NAL unit of type `t` (first slice of its picture), `len` bytes long.
fn slice(t: u8, len: usize) -> Bytes {
    let mut b = vec![t << 1, 1, 0x80];
    b.extend((0..len.saturating_sub(3)).map(|i| (i % 251) as u8 + 1));
    Bytes::from(b)
}

fn annex_b(nals: &[&Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for n in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(n);
    }
    out.freeze()
}

fn types(au: &Bytes) -> Vec<u8> {
    crate::media::h264::nal_units(au)
        .map(|n| nal_type(&n))
        .collect()
}

#[test]
fn parses_x265_sps_with_conformance_window() {
    let s = parse_sps(&sps()).unwrap();
    assert_eq!((s.width, s.height), (1366, 766));
    assert_eq!((s.profile_idc, s.tier_flag, s.level_idc), (1, 0, 120));
    assert_eq!(s.fmtp(), "profile-id=1;tier-flag=0;level-id=120");
    let s = parse_sps(&hex(SPS_444)).unwrap();
    assert_eq!((s.width, s.height, s.profile_idc), (1366, 766, 4));
}

#[test]
fn rejects_bad_sps() {
    assert_eq!(parse_sps(&pps()), Err(SpsError::NotSps(NAL_PPS)));
    assert_eq!(parse_sps(&sps()[..8]), Err(SpsError::Truncated));
    assert_eq!(parse_sps(&[]), Err(SpsError::NotSps(0)));
}

#[test]
fn nal_classes() {
    assert_eq!(nal_type(&vps()), NAL_VPS);
    assert!(is_irap(NAL_IDR_W_RADL) && is_irap(NAL_CRA) && is_irap(NAL_BLA_W_LP));
    assert!(!is_irap(1) && !is_irap(NAL_VPS));
    assert!(is_vcl(1) && !is_vcl(NAL_SPS));
    assert!(starts_access_unit(NAL_VPS) && starts_access_unit(NAL_PREFIX_SEI));
    assert!(!starts_access_unit(NAL_SUFFIX_SEI) && !starts_access_unit(1));
    assert!(first_slice_in_picture(&slice(1, 10)));
    assert!(!first_slice_in_picture(&Bytes::from_static(&[2, 1, 0x00])));
}

#[test]
fn parameter_sets_are_found_prepended_and_described() {
    let idr = slice(NAL_IDR_W_RADL, 50);
    let key = annex_b(&[&vps(), &sps(), &pps(), &idr]);
    assert!(contains_irap(&key));
    let ps = find_parameter_sets(&key);
    assert!(ps.complete());
    let p = ps.video_params().unwrap();
    assert_eq!(p.codec, crate::media::VideoCodec::H265);
    assert_eq!((p.width, p.height), (1366, 766));
    assert_eq!(p.profile_level_id, "profile-id=1;tier-flag=0;level-id=120");
    let sprop = p.sprop_parameter_sets();
    assert!(sprop.starts_with("sprop-vps="), "{sprop}");
    // A bare IRAP gets the cached sets; one that has them stays as it is.
    let bare = annex_b(&[&idr]);
    assert_eq!(types(&ps.prepend_to(&bare)), [32, 33, 34, 19]);
    assert_eq!(ps.prepend_to(&key), key);
    let mut other = ParamSets::default();
    assert!(other.update_from(&ps));
    assert!(!other.update_from(&ps));
    assert_eq!(ParamSets::default().video_params(), Err(SpsError::Missing));
}

/// RTP payloads for one access unit the way RFC 7798 senders cut it: the
/// parameter sets in one AP, each slice as a single NAL unit if it fits in `mtu`,
/// else as FUs.
fn packetize(nals: &[Bytes], mtu: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let (params, slices): (Vec<_>, Vec<_>) = nals.iter().partition(|n| !is_vcl(nal_type(n)));
    if !params.is_empty() {
        let mut ap = BytesMut::new();
        ap.put_u8(AP_TYPE << 1);
        ap.put_u8(1);
        for n in params {
            ap.put_u16(n.len() as u16);
            ap.extend_from_slice(n);
        }
        out.push(ap.freeze());
    }
    for n in slices {
        if n.len() <= mtu {
            out.push(n.clone());
            continue;
        }
        let t = nal_type(n);
        let body = &n[2..];
        let chunks: Vec<&[u8]> = body.chunks(mtu - 3).collect();
        for (i, c) in chunks.iter().enumerate() {
            let mut fu = BytesMut::new();
            fu.put_u8((n[0] & 0x81) | (FU_TYPE << 1));
            fu.put_u8(n[1]);
            let s = if i == 0 { 0x80 } else { 0 };
            let e = if i + 1 == chunks.len() { 0x40 } else { 0 };
            fu.put_u8(s | e | t);
            fu.extend_from_slice(c);
            out.push(fu.freeze());
        }
    }
    out
}
const AP_TYPE: u8 = 48;
const FU_TYPE: u8 = 49;

struct Feed {
    d: Depacketizer,
    seq: u16,
}

impl Feed {
    fn au(&mut self, ts: u32, payloads: &[Bytes]) {
        for (i, p) in payloads.iter().enumerate() {
            self.d.push(self.seq, ts, i + 1 == payloads.len(), p);
            self.seq = self.seq.wrapping_add(1);
        }
    }
}

#[test]
fn depacketizes_ap_and_fu_into_access_units() {
    let mut f = Feed {
        d: Depacketizer::default(),
        seq: 65_530,
    };
    let idr = slice(NAL_IDR_W_RADL, 4000);
    f.au(0, &packetize(&[vps(), sps(), pps(), idr.clone()], 1200));
    let key = f.d.pull().expect("key frame");
    assert!(key.keyframe);
    assert_eq!(key.rtp_timestamp, 0);
    assert_eq!(types(&key.data), [32, 33, 34, 19]);
    let got: Vec<Bytes> = crate::media::h264::nal_units(&key.data).collect();
    assert_eq!(
        got[3], idr,
        "FU reassembly restores the NAL header and body"
    );
    // A P picture in two slices, the second not first-in-picture.
    let p1 = slice(1, 900);
    let mut p2 = slice(1, 700).to_vec();
    p2[2] = 0;
    f.au(3000, &packetize(&[p1, Bytes::from(p2)], 1200));
    let delta = f.d.pull().unwrap();
    assert!(!delta.keyframe);
    assert_eq!(types(&delta.data), [1, 1]);
    assert!(!f.d.take_pli_request());
}

#[test]
fn irap_without_inline_sets_gets_the_remembered_ones() {
    let mut f = Feed {
        d: Depacketizer::default(),
        seq: 0,
    };
    // Parameter sets alone (their own timestamp), then a CRA.
    f.au(0, &packetize(&[vps(), sps(), pps()], 1200));
    assert!(f.d.pull().is_none());
    f.au(3000, &[slice(NAL_CRA, 100)]);
    let key = f.d.pull().unwrap();
    assert!(key.keyframe);
    assert_eq!(types(&key.data), [32, 33, 34, 21]);
}

#[test]
fn loss_drops_until_the_next_irap_and_asks_for_pli() {
    let mut f = Feed {
        d: Depacketizer::default(),
        seq: 10,
    };
    // No key frame yet: P frames are dropped, PLI requested.
    f.au(0, &[slice(1, 50)]);
    assert!(f.d.pull().is_none());
    assert!(f.d.take_pli_request());
    f.au(
        3000,
        &packetize(&[vps(), sps(), pps(), slice(NAL_IDR_N_LP, 3000)], 1000),
    );
    assert!(f.d.pull().unwrap().keyframe);
    // Lose the middle FU of the next picture.
    let pkts = packetize(&[slice(1, 3000)], 1000);
    assert!(pkts.len() >= 3);
    for (i, p) in pkts.iter().enumerate() {
        if i != 1 {
            f.d.push(f.seq, 6000, i + 1 == pkts.len(), p);
        }
        f.seq = f.seq.wrapping_add(1);
    }
    assert!(f.d.pull().is_none());
    assert!(f.d.take_pli_request());
    f.au(9000, &[slice(1, 50)]);
    assert!(f.d.pull().is_none(), "not synced until an IRAP");
    f.au(12000, &[slice(NAL_IDR_W_RADL, 50)]);
    let key = f.d.pull().unwrap();
    assert!(key.keyframe);
    assert_eq!(types(&key.data), [32, 33, 34, 19]);
}

#[test]
fn two_pictures_under_one_timestamp_are_split() {
    let mut d = Depacketizer::default();
    let ps = packetize(&[vps(), sps(), pps()], 1200);
    d.push(0, 0, false, &ps[0]);
    d.push(1, 0, false, &slice(NAL_IDR_W_RADL, 40));
    // Marker lost: the next picture's first slice arrives under the same timestamp.
    d.push(2, 0, true, &slice(1, 40));
    let a = d.pull().unwrap();
    let b = d.pull().unwrap();
    assert!(a.keyframe && !b.keyframe);
    assert_eq!(types(&b.data), [1]);
}

#[test]
fn malformed_payloads_never_panic() {
    let mut d = Depacketizer::default();
    for (i, p) in [
        &[][..],
        &[0x60, 1][..],
        &[0x60, 1, 0, 9, 1][..],
        &[0x62, 1, 0x40, 1, 2][..],
        &[0x64, 1, 0][..],
    ]
    .iter()
    .enumerate()
    {
        d.push(i as u16, 0, true, &Bytes::copy_from_slice(p));
    }
    assert!(d.pull().is_none());
}
