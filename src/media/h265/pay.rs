//! Annex-B access units → H.265 RTP payloads (RFC 7798), the inverse of [`super::rtp`].
//!
//! [`packetize`] cuts one access unit, as the hub holds it (parameter sets in front of
//! every key frame), into payloads of at most `mtu` bytes the way
//! [`crate::media::nal_pay`] describes, with H.265's headers:
//!
//! - an **aggregation packet** (AP, type 48, §4.4.2) has a payload header with F set
//!   if any unit's F is set, the lowest LayerId and the lowest TID of its units;
//! - a **fragmentation unit** (FU, type 49, §4.4.3) has the NAL header with type 49
//!   as payload header (F, LayerId and TID kept) and a FU header with S, E and the
//!   NAL unit's own type, whatever it is (IDR_W_RADL, IDR_N_LP, CRA, TRAIL_*, SEI,
//!   reserved types).
//!
//! No DONL fields: `sprop-max-don-diff` is 0 (absent), as Ring sends it.

use bytes::{BufMut, Bytes, BytesMut};

use super::nal_type;
use crate::media::nal_pay::{self, NalHeaders, fu_start_end};

pub use crate::media::nal_pay::MIN_MTU;

/// Payload type of an aggregation packet (RFC 7798 §4.4.2).
pub const AP_TYPE: u8 = 48;
/// Payload type of a fragmentation unit (RFC 7798 §4.4.3).
pub const FU_TYPE: u8 = 49;

/// H.265's payload headers (2-byte NAL unit header).
pub struct H265;

impl NalHeaders for H265 {
    const HEADER: usize = 2;

    fn aggregation_header(nals: &[Bytes], out: &mut BytesMut) {
        let f = nals.iter().any(|n| n[0] & 0x80 != 0);
        let layer = nals.iter().map(|n| layer_id(n)).min().unwrap_or(0);
        let tid = nals.iter().map(|n| n[1] & 0x07).min().unwrap_or(1);
        out.put_u8(u8::from(f) << 7 | AP_TYPE << 1 | (layer >> 5));
        out.put_u8((layer % 32) << 3 | tid); // LayerId's low 5 bits, then TID
    }

    fn fragment_header(nal: &[u8], start: bool, end: bool, out: &mut BytesMut) {
        out.put_u8((nal[0] & 0x81) | FU_TYPE << 1);
        out.put_u8(nal[1]);
        out.put_u8(fu_start_end(start, end) | nal_type(nal));
    }
}

/// The RTP payloads of one Annex-B access unit (3- or 4-byte start codes), each at
/// most `mtu` bytes (`mtu` is raised to [`MIN_MTU`] if smaller), in sending order.
/// NAL units shorter than their 2-byte header are skipped (they cannot be sent).
pub fn packetize(au: &Bytes, mtu: usize) -> Vec<Bytes> {
    nal_pay::packetize::<H265>(au, mtu)
}

/// `nuh_layer_id` (6 bits across the two header bytes).
fn layer_id(nal: &[u8]) -> u8 {
    (nal[0] & 0x01) << 5 | nal[1] >> 3
}
