//! Annex-B access units → RTP payloads, for both NAL-unit codecs: H.264 (RFC 6184,
//! [`super::h264::pay`]) and H.265 (RFC 7798, [`super::h265::pay`]) cut an access
//! unit the same way and differ only in their headers ([`NalHeaders`]):
//!
//! - consecutive NAL units that fit together go into one **aggregation packet**
//!   (H.264 STAP-A, H.265 AP), so parameter sets and SEI cost one packet;
//! - a NAL unit that fits alone (and has no small neighbour to share with) is a
//!   **single NAL unit packet**, a zero-copy slice of the input;
//! - a NAL unit larger than `mtu` becomes **fragmentation units** (H.264 FU-A,
//!   H.265 FU) carrying S (first), E (last) and the unit's own type.
//!
//! The caller sets the RTP marker on the last payload of the access unit. No
//! interleaving fields (packetization mode 1 / no DONL): the stream is sent in
//! decoding order, as Ring sends it.

use bytes::{BufMut, Bytes, BytesMut};

use super::h264::nal_units;

/// Smallest `mtu` [`packetize`] honours: a payload header of up to 2 bytes, a
/// 1-byte FU header and at least one byte of each fragment's body, with room to
/// spare. Smaller values are raised to it.
pub const MIN_MTU: usize = 8;

/// Bytes an aggregation packet adds in front of each NAL unit (its 16-bit size).
const AGGREGATE_SIZE_FIELD: usize = 2;
/// Size of the FU header.
const FU_HEADER: usize = 1;

/// A codec's RTP payload headers.
pub trait NalHeaders {
    /// Size of the NAL unit header, which is also the payload header's size.
    const HEADER: usize;
    /// Writes the payload header of an aggregation packet of `nals`.
    fn aggregation_header(nals: &[Bytes], out: &mut BytesMut);
    /// Writes the payload header and the FU header of a fragment of `nal`.
    fn fragment_header(nal: &[u8], start: bool, end: bool, out: &mut BytesMut);
}

/// The RTP payloads of one Annex-B access unit (3- or 4-byte start codes), each at
/// most `mtu` bytes (raised to [`MIN_MTU`] if smaller), in sending order. NAL
/// units shorter than their header are skipped (they cannot be sent).
pub fn packetize<C: NalHeaders>(au: &Bytes, mtu: usize) -> Vec<Bytes> {
    let mtu = mtu.max(MIN_MTU);
    let mut out = Vec::new();
    let mut group: Vec<Bytes> = Vec::new();
    // Size of `group` as an aggregation packet: payload header plus each unit
    // with its size field.
    let mut group_size = C::HEADER;
    for nal in nal_units(au).filter(|n| n.len() >= C::HEADER) {
        if nal.len() > mtu {
            flush::<C>(&mut group, &mut out);
            group_size = C::HEADER;
            fragment::<C>(&nal, mtu, &mut out);
            continue;
        }
        let size = AGGREGATE_SIZE_FIELD + nal.len();
        if !group.is_empty() && group_size + size > mtu {
            flush::<C>(&mut group, &mut out);
            group_size = C::HEADER;
        }
        group_size += size;
        group.push(nal);
    }
    flush::<C>(&mut group, &mut out);
    out
}

/// Sends the collected NAL units (sized by `packetize` to fit the MTU together):
/// alone as a single NAL unit packet, several as an aggregation packet.
fn flush<C: NalHeaders>(group: &mut Vec<Bytes>, out: &mut Vec<Bytes>) {
    match group.len() {
        0 => {}
        1 => out.extend(group.pop()),
        _ => out.push(aggregate::<C>(group)),
    }
    group.clear();
}

/// The aggregation packet of `nals` (at least two, each below 64 KiB as
/// `packetize` guarantees by the MTU).
fn aggregate<C: NalHeaders>(nals: &[Bytes]) -> Bytes {
    let size = C::HEADER
        + nals
            .iter()
            .map(|n| AGGREGATE_SIZE_FIELD + n.len())
            .sum::<usize>();
    let mut ap = BytesMut::with_capacity(size);
    C::aggregation_header(nals, &mut ap);
    for n in nals {
        // An aggregation packet is never larger than the MTU, far below 64 KiB.
        ap.put_u16(u16::try_from(n.len()).unwrap_or(u16::MAX));
        ap.extend_from_slice(n);
    }
    ap.freeze()
}

/// The FUs of `nal` (longer than `mtu`): at least two, S on the first, E on the last.
fn fragment<C: NalHeaders>(nal: &Bytes, mtu: usize, out: &mut Vec<Bytes>) {
    let body = &nal[C::HEADER..];
    let chunk = mtu - C::HEADER - FU_HEADER;
    let last = body.len().div_ceil(chunk).saturating_sub(1);
    for (i, part) in body.chunks(chunk).enumerate() {
        let mut fu = BytesMut::with_capacity(C::HEADER + FU_HEADER + part.len());
        C::fragment_header(nal, i == 0, i == last, &mut fu);
        fu.extend_from_slice(part);
        out.push(fu.freeze());
    }
}

/// The S and E bits of a FU header.
pub(crate) fn fu_start_end(start: bool, end: bool) -> u8 {
    u8::from(start) << 7 | u8::from(end) << 6
}
