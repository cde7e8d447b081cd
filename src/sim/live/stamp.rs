//! Frame stamps for benchmarks (`ring-bridge sim --stamp-frames`): an H.264 SEI
//! NAL unit, or an H.265 prefix SEI for H.265 clips (`user_data_unregistered`,
//! payload type 5, the same in both codecs) with our own UUID, a
//! frame counter and the send time, put into each video access unit right
//! before the simulated camera hands it to its WebRTC track.
//!
//! Payload after the 16-byte UUID: frame counter (u64, big-endian; counts the
//! frames a session sent, from 0) and send time (u64, big-endian, CLOCK_REALTIME
//! nanoseconds since the Unix epoch). Emulation prevention is applied, so the
//! NAL unit is valid H.264 that decoders ignore. `ring-bridge bench` reads the
//! stamp back at its viewers ([`find_stamp_annex_b`], [`find_stamp_avc`]) to
//! measure forwarding latency and frame loss without guessing.
//!
//! Only the stamp format lives here; NAL splitting, emulation prevention and
//! slice lookup are `media::h264`'s.

use bytes::{BufMut, Bytes, BytesMut};

use crate::media::h264::{
    self, NAL_SEI, START_CODE, avc_nals, escape, nal_slices, nal_type, unescape,
};
use crate::media::h265::{self, NAL_PREFIX_SEI};

/// The UUID of our SEI (`user_data_unregistered` `uuid_iso_iec_11578`).
pub const STAMP_UUID: [u8; 16] = [
    0x72, 0x69, 0x6e, 0x67, 0x2d, 0x62, 0x72, 0x69, // "ring-bri"
    0x64, 0x67, 0x65, 0x2d, 0xb3, 0x9c, 0x41, 0x07, // "dge-" + random
];

const SEI_USER_DATA_UNREGISTERED: u8 = 5;
const PAYLOAD_LEN: usize = 16 + 8 + 8;

/// What a stamp says about one access unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Frames the sending session had sent before this one.
    pub counter: u64,
    /// CLOCK_REALTIME nanoseconds since the Unix epoch when it was sent.
    pub sent_ns: u64,
}

/// CLOCK_REALTIME now, in nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The H.264 SEI NAL unit (header included, no start code) carrying `stamp`.
pub fn sei_nal(stamp: Stamp) -> Vec<u8> {
    sei_nal_with_header(&[NAL_SEI], stamp)
}

/// The H.265 prefix SEI NAL unit (2-byte header: type 39, layer 0, TID 1) carrying
/// `stamp`; same payload as [`sei_nal`].
pub fn sei_nal_h265(stamp: Stamp) -> Vec<u8> {
    sei_nal_with_header(&[NAL_PREFIX_SEI << 1, 1], stamp)
}

fn sei_nal_with_header(header: &[u8], stamp: Stamp) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(3 + PAYLOAD_LEN);
    rbsp.push(SEI_USER_DATA_UNREGISTERED);
    rbsp.push(PAYLOAD_LEN as u8);
    rbsp.extend_from_slice(&STAMP_UUID);
    rbsp.extend_from_slice(&stamp.counter.to_be_bytes());
    rbsp.extend_from_slice(&stamp.sent_ns.to_be_bytes());
    rbsp.push(0x80); // rbsp_trailing_bits
    let mut nal = header.to_vec();
    nal.extend_from_slice(&escape(&rbsp));
    nal
}

/// `au` (H.264 Annex-B) with the stamp's SEI inserted before its first slice.
pub fn stamp_annex_b(au: &[u8], stamp: Stamp) -> Bytes {
    insert_before_first_slice(au, &sei_nal(stamp), h264::first_slice_offset)
}

/// `au` (H.265 Annex-B) with the stamp's prefix SEI inserted before its first slice.
pub fn stamp_annex_b_h265(au: &[u8], stamp: Stamp) -> Bytes {
    insert_before_first_slice(au, &sei_nal_h265(stamp), h265::first_slice_offset)
}

fn insert_before_first_slice(
    au: &[u8],
    sei: &[u8],
    first_slice: fn(&[u8]) -> Option<usize>,
) -> Bytes {
    let mut out = BytesMut::with_capacity(au.len() + sei.len() + 4);
    let at = first_slice(au).unwrap_or(au.len());
    out.put_slice(&au[..at]);
    out.put_slice(&START_CODE);
    out.put_slice(sei);
    out.put_slice(&au[at..]);
    out.freeze()
}

/// The stamp in an Annex-B access unit, if any.
pub fn find_stamp_annex_b(au: &[u8]) -> Option<Stamp> {
    nal_slices(au).find_map(parse_sei)
}

/// The stamp in an AVC (4-byte length-prefixed) access unit, as RTSP clients
/// such as Retina hand them out.
pub fn find_stamp_avc(au: &[u8]) -> Option<Stamp> {
    avc_nals(au).find_map(parse_sei)
}

/// Our stamp from one NAL unit (header included), if it is our SEI: an H.264 SEI
/// (type 6, 1-byte header) or an H.265 prefix SEI (type 39, 2-byte header). The two
/// headers cannot be confused: an H.265 type-39 first byte is H.264 type 14.
pub fn parse_sei(nal: &[u8]) -> Option<Stamp> {
    let header = if nal_type(nal) == NAL_SEI {
        1
    } else if h265::nal_type(nal) == NAL_PREFIX_SEI {
        2
    } else {
        return None;
    };
    let rbsp = unescape(nal.get(header..)?);
    let mut p = rbsp.as_slice();
    // Walk the SEI messages (payload type and size use 0xFF continuation).
    while p.len() > 2 {
        let (ty, rest) = read_ff_coded(p)?;
        let (size, rest) = read_ff_coded(rest)?;
        let body = rest.get(..size)?;
        if ty == usize::from(SEI_USER_DATA_UNREGISTERED)
            && size == PAYLOAD_LEN
            && body[..16] == STAMP_UUID
        {
            let counter = u64::from_be_bytes(body[16..24].try_into().ok()?);
            let sent_ns = u64::from_be_bytes(body[24..32].try_into().ok()?);
            return Some(Stamp { counter, sent_ns });
        }
        p = &rest[size..];
    }
    None
}

fn read_ff_coded(p: &[u8]) -> Option<(usize, &[u8])> {
    let mut v = 0usize;
    let mut i = 0;
    loop {
        let b = *p.get(i)?;
        v += usize::from(b);
        i += 1;
        if b != 0xff {
            return Some((v, &p[i..]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_with_emulation_prevention() {
        for stamp in [
            Stamp {
                counter: 0,
                sent_ns: 0,
            },
            Stamp {
                counter: 3,
                sent_ns: 1_700_000_000_000_000_001,
            },
            Stamp {
                counter: u64::MAX,
                sent_ns: 0x0000_0300_0001_0002,
            },
        ] {
            let nal = sei_nal(stamp);
            // No start-code emulation inside the NAL unit.
            assert!(!nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
            assert_eq!(parse_sei(&nal), Some(stamp));
        }
    }

    #[test]
    fn stamp_goes_before_the_first_slice_and_is_found_in_both_forms() {
        let au: Vec<u8> = [
            &[0, 0, 0, 1, 0x67, 1, 2][..],
            &[0, 0, 0, 1, 0x68, 3],
            &[0, 0, 0, 1, 0x65, 0x88, 0x84],
        ]
        .concat();
        let stamp = Stamp {
            counter: 42,
            sent_ns: 123_456_789,
        };
        let out = stamp_annex_b(&au, stamp);
        let types: Vec<u8> = nal_slices(&out).map(nal_type).collect();
        assert_eq!(types, vec![7, 8, 6, 5]);
        assert_eq!(find_stamp_annex_b(&out), Some(stamp));
        assert_eq!(find_stamp_annex_b(&au), None);
        // The same NAL units, length-prefixed.
        let mut avc = Vec::new();
        for n in nal_slices(&out) {
            avc.extend_from_slice(&(n.len() as u32).to_be_bytes());
            avc.extend_from_slice(n);
        }
        assert_eq!(find_stamp_avc(&avc), Some(stamp));
    }

    #[test]
    fn h265_stamp_is_a_prefix_sei_before_the_first_slice() {
        // VPS, SPS, PPS, IDR_W_RADL (2-byte headers).
        let au: Vec<u8> = [
            &[0, 0, 0, 1, 0x40, 1, 9][..],
            &[0, 0, 0, 1, 0x42, 1, 9],
            &[0, 0, 0, 1, 0x44, 1, 9],
            &[0, 0, 0, 1, 0x26, 1, 0xaf],
        ]
        .concat();
        let stamp = Stamp {
            counter: 7,
            sent_ns: 0x0000_0300_0001_0002,
        };
        let out = stamp_annex_b_h265(&au, stamp);
        let types: Vec<u8> = nal_slices(&out).map(h265::nal_type).collect();
        assert_eq!(types, vec![32, 33, 34, 39, 19]);
        assert_eq!(find_stamp_annex_b(&out), Some(stamp));
        assert_eq!(find_stamp_annex_b(&au), None);
    }

    #[test]
    fn foreign_sei_is_ignored() {
        // x264's own user_data_unregistered SEI (another UUID).
        let mut nal = vec![NAL_SEI, 5, 20];
        nal.extend_from_slice(&[0xdc; 16]);
        nal.extend_from_slice(b"x264");
        nal.push(0x80);
        assert_eq!(parse_sei(&nal), None);
    }
}
