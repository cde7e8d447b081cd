//! Unit tests of the H.265 helpers, SPS parser and RFC 7798 depacketizer, with
//! parameter sets from x265 (libx265 via ffmpeg, 1366x766, which x265 codes as
//! 1368x768 with a conformance window).

use bytes::{Bytes, BytesMut};

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
    // x265 Main: compatibility flags 1 and 2, progressive + frame-only (0x90).
    assert_eq!(s.codec_string(), "hvc1.1.6.L120.90");
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

/// RTP payloads for one access unit: our own packetizer (`pay`).
fn packetize(nals: &[Bytes], mtu: usize) -> Vec<Bytes> {
    let refs: Vec<&Bytes> = nals.iter().collect();
    pay::packetize(&annex_b(&refs), mtu)
}

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

/// A NAL unit with a hand-made header (`layer` 0..=63, `tid` 1..=7) and `body`.
fn nal_with(t: u8, layer: u8, tid: u8, body: &[u8]) -> Bytes {
    let mut b = vec![t << 1 | layer >> 5, (layer & 0x1f) << 3 | tid];
    b.extend_from_slice(body);
    Bytes::from(b)
}

#[test]
fn packetizer_aggregates_small_units_with_a_checked_header() {
    // Parameter sets, an SEI and a small slice fit one AP.
    let sei = nal_with(NAL_PREFIX_SEI, 0, 1, &[5, 4, 1, 2, 3, 4, 0x80]);
    let idr = slice(NAL_IDR_W_RADL, 100);
    let au = annex_b(&[&vps(), &sps(), &pps(), &sei, &idr]);
    let p = pay::packetize(&au, 1200);
    assert_eq!(p.len(), 1);
    let ap = &p[0];
    assert_eq!(&ap[..2], &[0x60, 0x01], "F=0, type 48, LayerId 0, TID 1");
    assert_eq!(&ap[2..4], &(vps().len() as u16).to_be_bytes());
    assert_eq!(&ap[4..4 + vps().len()], &vps()[..]);
    let total: usize = [vps(), sps(), pps(), sei, idr]
        .iter()
        .map(|n| n.len() + 2)
        .sum();
    assert_eq!(ap.len(), 2 + total);

    // The AP header takes the lowest LayerId and TID, and F if any unit has it.
    let a = nal_with(NAL_PREFIX_SEI, 3, 4, &[1, 2]);
    let mut b = nal_with(1, 33, 2, &[0x80, 7]).to_vec();
    b[0] |= 0x80;
    let p = pay::packetize(&annex_b(&[&a, &Bytes::from(b)]), 100);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0][0], 0x80 | 48 << 1, "F set, type 48, LayerId < 32");
    assert_eq!(p[0][1], 3 << 3 | 2, "LayerId 3, TID 2");

    // A unit that fits alone but not with its neighbour is a single NAL unit packet.
    let big = slice(1, 1100);
    let p = pay::packetize(&annex_b(&[&vps(), &big]), 1100);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0], vps());
    assert_eq!(p[1], big);
}

#[test]
fn packetizer_fragments_every_nal_type_with_checked_headers() {
    let types = [
        0,
        1,
        NAL_BLA_W_LP,
        NAL_IDR_W_RADL,
        NAL_IDR_N_LP,
        NAL_CRA,
        22,
        NAL_PREFIX_SEI,
        NAL_SUFFIX_SEI,
    ];
    for t in types {
        let body: Vec<u8> = (0..2991).map(|i| (i % 253) as u8 + 1).collect();
        let nal = nal_with(t, 0, 1, &body);
        let p = pay::packetize(&annex_b(&[&nal]), 1000);
        assert_eq!(p.len(), 3, "type {t}: 2991 body bytes at 997 per FU");
        for (i, fu) in p.iter().enumerate() {
            assert!(fu.len() <= 1000);
            assert_eq!(&fu[..2], &[49 << 1, 0x01], "type {t}: payload header");
            let (s, e) = (i == 0, i + 1 == p.len());
            let want = u8::from(s) << 7 | u8::from(e) << 6 | t;
            assert_eq!(fu[2], want, "type {t}: FU header of fragment {i}");
        }
        let joined: Vec<u8> = p.iter().flat_map(|fu| fu[3..].to_vec()).collect();
        assert_eq!(joined, body, "type {t}: fragments carry the body in order");
    }
    // LayerId, TID and F of the NAL unit stay in the FU payload header.
    let mut nal = nal_with(1, 40, 3, &[0x80; 50]).to_vec();
    nal[0] |= 0x80;
    let p = pay::packetize(&annex_b(&[&Bytes::from(nal.clone())]), 20);
    assert!(p.len() > 2);
    assert!(
        p.iter()
            .all(|fu| fu[0] == (nal[0] & 0x81) | 49 << 1 && fu[1] == nal[1])
    );
    // A tiny MTU is raised to the minimum, never panics.
    assert!(
        pay::packetize(&annex_b(&[&slice(1, 40)]), 0)
            .iter()
            .all(|p| p.len() <= pay::MIN_MTU)
    );
    assert!(pay::packetize(&Bytes::new(), 1200).is_empty());
}

mod round_trip {
    use proptest::prelude::*;

    use super::*;

    /// One picture: IRAP or not, its slices' bodies, optional prefix/suffix SEI.
    #[derive(Debug, Clone)]
    struct Picture {
        irap: bool,
        vcl_type: u8,
        slices: Vec<Vec<u8>>,
        prefix_sei: Option<Vec<u8>>,
        suffix_sei: Option<Vec<u8>>,
    }

    /// Bodies without zero bytes, so no start code can appear inside a unit.
    fn body(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(1u8..=255, 1..max)
    }

    fn picture() -> impl Strategy<Value = Picture> {
        (
            any::<bool>(),
            0u8..=9,
            prop::collection::vec(body(5000), 1..4),
            prop::option::of(body(300)),
            prop::option::of(body(300)),
        )
            .prop_map(|(irap, t, slices, prefix_sei, suffix_sei)| Picture {
                irap,
                vcl_type: if irap { 16 + t % 6 } else { t },
                slices,
                prefix_sei,
                suffix_sei,
            })
    }

    /// The Annex-B access unit of `p`, as the hub holds it (and as the
    /// depacketizer gives it back): parameter sets in front of an IRAP picture.
    fn access_unit(p: &Picture) -> Bytes {
        let mut nals: Vec<Bytes> = Vec::new();
        if p.irap {
            nals.extend([vps(), sps(), pps()]);
        }
        nals.extend(
            p.prefix_sei
                .iter()
                .map(|b| nal_with(NAL_PREFIX_SEI, 0, 1, b)),
        );
        for (i, s) in p.slices.iter().enumerate() {
            let mut s = s.clone();
            // first_slice_segment_in_pic_flag only on the picture's first slice.
            s[0] = if i == 0 {
                s[0] | 0x80
            } else {
                (s[0] & 0x7f).max(1)
            };
            nals.push(nal_with(p.vcl_type, 0, 1, &s));
        }
        nals.extend(
            p.suffix_sei
                .iter()
                .map(|b| nal_with(NAL_SUFFIX_SEI, 0, 1, b)),
        );
        let refs: Vec<&Bytes> = nals.iter().collect();
        annex_b(&refs)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn packetize_then_depacketize_gives_the_access_units_back(
            mtu in 8usize..1500,
            first in picture(),
            rest in prop::collection::vec(picture(), 0..5),
            seq in any::<u16>(),
        ) {
            let first = Picture { irap: true, vcl_type: 16 + first.vcl_type % 6, ..first };
            let mut f = Feed { d: Depacketizer::default(), seq };
            for (i, p) in std::iter::once(&first).chain(&rest).enumerate() {
                let au = access_unit(p);
                let payloads = pay::packetize(&au, mtu);
                prop_assert!(payloads.iter().all(|x| x.len() <= mtu));
                let ts = 3000 * i as u32;
                f.au(ts, &payloads);
                let got = f
                    .d
                    .pull()
                    .ok_or_else(|| TestCaseError::fail(format!("access unit {i} lost")))?;
                prop_assert_eq!(&got.data, &au);
                prop_assert_eq!(got.keyframe, p.irap);
                prop_assert_eq!(got.rtp_timestamp, ts);
                prop_assert!(f.d.pull().is_none());
            }
            prop_assert!(!f.d.take_pli_request());
        }
    }
}
