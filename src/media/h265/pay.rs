//! Annex-B access units → H.265 RTP payloads (RFC 7798), the inverse of [`super::rtp`].
//!
//! [`packetize`] cuts one access unit, as the hub holds it (parameter sets in front of
//! every key frame), into payloads of at most `mtu` bytes:
//!
//! - consecutive NAL units that fit together go into one **aggregation packet** (AP,
//!   type 48, §4.4.2), so VPS, SPS, PPS and SEI cost one packet;
//! - a NAL unit that fits alone (and has no small neighbour to share with) is a
//!   **single NAL unit packet** (§4.4.1);
//! - a NAL unit larger than `mtu` becomes **fragmentation units** (FU, type 49,
//!   §4.4.3): the payload header is the NAL header with type 49, the FU header carries
//!   S (first), E (last) and the NAL unit's own type, whatever it is (IDR_W_RADL,
//!   IDR_N_LP, CRA, TRAIL_*, SEI, reserved types).
//!
//! No DONL fields: the stream is sent in decoding order with `sprop-max-don-diff` 0
//! (absent), as Ring sends it. The caller sets the RTP marker on the last payload of
//! the access unit (§4.1). Pure and allocation-light: payloads are `Bytes`, a single
//! NAL unit packet is a zero-copy slice of the input.

use bytes::{BufMut, Bytes, BytesMut};

use super::nal_type;
use crate::media::h264::nal_units;

/// Payload type of an aggregation packet (RFC 7798 §4.4.2).
pub const AP_TYPE: u8 = 48;
/// Payload type of a fragmentation unit (RFC 7798 §4.4.3).
pub const FU_TYPE: u8 = 49;
/// Smallest `mtu` [`packetize`] honours: a 2-byte payload header, a 1-byte FU header
/// and at least one byte of each fragment's body, with room to spare. Smaller values
/// are raised to it.
pub const MIN_MTU: usize = 8;

/// Size of the NAL unit header (and of the RTP payload header).
const NAL_HEADER: usize = 2;
/// Bytes an AP adds in front of each NAL unit (its 16-bit size).
const AP_SIZE_FIELD: usize = 2;
/// Size of the FU header.
const FU_HEADER: usize = 1;

/// The RTP payloads of one Annex-B access unit (3- or 4-byte start codes), each at
/// most `mtu` bytes (`mtu` is raised to [`MIN_MTU`] if smaller), in sending order.
/// NAL units shorter than their 2-byte header are skipped (they cannot be sent).
pub fn packetize(au: &Bytes, mtu: usize) -> Vec<Bytes> {
    let mtu = mtu.max(MIN_MTU);
    let mut out = Vec::new();
    let mut group: Vec<Bytes> = Vec::new();
    // Size of `group` as an AP: payload header plus each unit with its size field.
    let mut group_size = NAL_HEADER;
    for nal in nal_units(au).filter(|n| n.len() >= NAL_HEADER) {
        if nal.len() > mtu {
            flush(&mut group, &mut out);
            group_size = NAL_HEADER;
            fragment(&nal, mtu, &mut out);
            continue;
        }
        let size = AP_SIZE_FIELD + nal.len();
        if !group.is_empty() && group_size + size > mtu {
            flush(&mut group, &mut out);
            group_size = NAL_HEADER;
        }
        group_size += size;
        group.push(nal);
    }
    flush(&mut group, &mut out);
    out
}

/// Sends the collected NAL units (sized by `packetize` to fit the MTU together):
/// alone as a single NAL unit packet, several as an AP.
fn flush(group: &mut Vec<Bytes>, out: &mut Vec<Bytes>) {
    match group.len() {
        0 => {}
        1 => out.extend(group.pop()),
        _ => out.push(aggregate(group)),
    }
    group.clear();
}

/// The AP of `nals` (at least two, each below 64 KiB as `packetize` guarantees by the
/// MTU). Its payload header: F set if any unit's F is set, the lowest LayerId and
/// the lowest TID of the units (§4.4.2).
fn aggregate(nals: &[Bytes]) -> Bytes {
    let f = nals.iter().any(|n| n[0] & 0x80 != 0);
    let layer = nals.iter().map(|n| layer_id(n)).min().unwrap_or(0);
    let tid = nals.iter().map(|n| n[1] & 0x07).min().unwrap_or(1);
    let size = NAL_HEADER + nals.iter().map(|n| AP_SIZE_FIELD + n.len()).sum::<usize>();
    let mut ap = BytesMut::with_capacity(size);
    ap.put_u8(u8::from(f) << 7 | AP_TYPE << 1 | (layer >> 5));
    ap.put_u8((layer % 32) << 3 | tid); // LayerId's low 5 bits, then TID
    for n in nals {
        // An AP is never larger than the MTU, itself far below 64 KiB.
        ap.put_u16(u16::try_from(n.len()).unwrap_or(u16::MAX));
        ap.extend_from_slice(n);
    }
    ap.freeze()
}

/// `nuh_layer_id` (6 bits across the two header bytes).
fn layer_id(nal: &[u8]) -> u8 {
    (nal[0] & 0x01) << 5 | nal[1] >> 3
}

/// The FUs of `nal` (longer than `mtu`): at least two, S on the first, E on the last.
fn fragment(nal: &Bytes, mtu: usize, out: &mut Vec<Bytes>) {
    let t = nal_type(nal);
    // Payload header: the NAL header with type 49 (F, LayerId and TID kept).
    let header = [(nal[0] & 0x81) | FU_TYPE << 1, nal[1]];
    let body = &nal[NAL_HEADER..];
    let chunk = mtu - NAL_HEADER - FU_HEADER;
    let last = body.len().div_ceil(chunk).saturating_sub(1);
    for (i, part) in body.chunks(chunk).enumerate() {
        let mut fu = BytesMut::with_capacity(NAL_HEADER + FU_HEADER + part.len());
        fu.extend_from_slice(&header);
        let s = if i == 0 { 0x80 } else { 0 };
        let e = if i == last { 0x40 } else { 0 };
        fu.put_u8(s | e | t);
        fu.extend_from_slice(part);
        out.push(fu.freeze());
    }
}
