//! Annex-B access units → H.264 RTP payloads (RFC 6184, packetization mode 1), the
//! inverse of [`super::rtp`].
//!
//! [`packetize`] cuts one access unit, as the hub holds it (SPS and PPS in front of
//! every key frame), into payloads of at most `mtu` bytes the way
//! [`crate::media::nal_pay`] describes, with H.264's headers:
//!
//! - a **STAP-A** (type 24, §5.7.1) has F set if any unit's F is set and the
//!   highest NRI of its units;
//! - a **FU-A** (type 28, §5.8) has a FU indicator with the NAL unit's F and NRI
//!   and a FU header with S, E and the NAL unit's own type.
//!
//! Every NAL unit is sent, access unit delimiters and SEI included.

use bytes::{BufMut, Bytes, BytesMut};

use super::nal_type;
use crate::media::nal_pay::{self, NalHeaders, fu_start_end};

/// Payload type of a single-time aggregation packet (RFC 6184 §5.7.1).
pub const STAP_A: u8 = 24;
/// Payload type of a fragmentation unit (RFC 6184 §5.8).
pub const FU_A: u8 = 28;

/// H.264's payload headers (1-byte NAL unit header).
pub struct H264;

impl NalHeaders for H264 {
    const HEADER: usize = 1;

    fn aggregation_header(nals: &[Bytes], out: &mut BytesMut) {
        let f = nals.iter().fold(0, |f, n| f | (n[0] & 0x80));
        let nri = nals.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
        out.put_u8(f | nri | STAP_A);
    }

    fn fragment_header(nal: &[u8], start: bool, end: bool, out: &mut BytesMut) {
        out.put_u8((nal[0] & 0xe0) | FU_A);
        out.put_u8(fu_start_end(start, end) | nal_type(nal));
    }
}

/// The RTP payloads of one Annex-B access unit (3- or 4-byte start codes), each at
/// most `mtu` bytes (raised to [`crate::media::nal_pay::MIN_MTU`] if smaller), in
/// sending order. Empty NAL units are skipped.
pub fn packetize(au: &Bytes, mtu: usize) -> Vec<Bytes> {
    nal_pay::packetize::<H264>(au, mtu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::rtp::Depacketizer;

    fn annex_b(nals: &[&[u8]]) -> Bytes {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        Bytes::from(v)
    }

    #[test]
    fn parameter_sets_share_a_stap_a_and_a_large_slice_is_cut_into_fu_a() {
        let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
        let pps: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        let mut idr = vec![0x65];
        idr.extend((0..3000u32).map(|i| (i % 251) as u8));
        let p = packetize(&annex_b(&[sps, pps, &idr]), 1200);
        assert_eq!(p[0][0] & 0x1f, STAP_A);
        assert_eq!(p[0][0] & 0x60, 0x60, "highest NRI of SPS/PPS");
        assert_eq!(&p[0][1..3], &[0, 5], "SPS size");
        assert_eq!(&p[0][3..8], sps);
        let fus = &p[1..];
        assert!(fus.len() >= 3 && fus.iter().all(|f| f.len() <= 1200));
        assert!(fus.iter().all(|f| f[0] == (0x60 | FU_A)));
        assert_eq!(fus[0][1], 0x80 | 5, "S and the IDR type");
        assert!(fus[1..fus.len() - 1].iter().all(|f| f[1] == 5));
        assert_eq!(fus[fus.len() - 1][1], 0x40 | 5, "E");
        let body: Vec<u8> = fus.iter().flat_map(|f| f[2..].to_vec()).collect();
        assert_eq!(body, idr[1..]);
    }

    #[test]
    fn a_lone_small_unit_is_a_zero_copy_single_nal_unit_packet() {
        let au = annex_b(&[&[0x41, 1, 2, 3]]);
        let p = packetize(&au, 1200);
        assert_eq!(p.len(), 1);
        assert_eq!(&p[0][..], &[0x41, 1, 2, 3]);
        assert_eq!(p[0].as_ptr(), au[4..].as_ptr());
        assert!(packetize(&Bytes::new(), 1200).is_empty());
    }

    #[test]
    fn packetize_then_depacketize_gives_the_access_units_back() {
        let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
        let pps: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        let sei: &[u8] = &[0x06, 5, 1, 2, 3, 0x80];
        let body = |first: u8, n: u32| {
            let mut v = vec![first];
            v.extend((0..n).map(|i| (i % 7 + 1) as u8));
            v
        };
        let aus = [
            annex_b(&[sps, pps, sei, &body(0x65, 5000)]),
            annex_b(&[sei, &body(0x41, 3000), &body(0x01, 40)]),
            annex_b(&[&body(0x41, 10)]),
        ];
        for mtu in [0, 20, 500, 1200] {
            let mut d = Depacketizer::default();
            let mut seq = 1000u16;
            for (i, au) in aus.iter().enumerate() {
                let payloads = packetize(au, mtu);
                assert!(
                    payloads
                        .iter()
                        .all(|p| p.len() <= mtu.max(nal_pay::MIN_MTU))
                );
                let ts = 3000 * i as u32;
                for (k, p) in payloads.iter().enumerate() {
                    d.push(seq, ts, k + 1 == payloads.len(), p);
                    seq = seq.wrapping_add(1);
                }
                let got = d.pull().expect("an access unit");
                assert_eq!(&got.data, au, "mtu {mtu}, access unit {i}");
                assert_eq!(got.keyframe, i == 0);
                assert!(d.pull().is_none());
            }
            assert!(!d.take_pli_request());
        }
    }
}
