//! H.265 over RTP (RFC 7798) → Annex-B access units.
//!
//! [`Depacketizer`] accepts single NAL unit packets, aggregation packets (AP, type
//! 48) and fragmentation units (FU, type 49), without DONL (Ring and webrtc-rs never
//! set `sprop-max-don-diff`). It closes an access unit on the marker bit, a timestamp
//! change, or a new picture's first slice; puts VPS/SPS/PPS in front of every IRAP
//! picture (remembered from earlier packets when the sender sent them separately);
//! and after loss drops everything up to the next IRAP and asks for a PLI.
//! No I/O, never blocks; it runs once per RTP packet.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::{NAL_AUD, ParamSets, first_slice_in_picture, is_irap, is_vcl, nal_type};
use crate::media::h264::START_CODE;

/// Aggregation packet (RFC 7798 §4.4.2).
const AP: u8 = 48;
/// Fragmentation unit (RFC 7798 §4.4.3).
const FU: u8 = 49;
/// PACI packet (RFC 7798 §4.4.4), not supported.
const PACI: u8 = 50;

/// Whether an RTP payload (single NAL unit, AP, or FU) carries an IRAP picture's
/// NAL unit or parameter sets (VPS, SPS, PPS): for the first NAL unit of an
/// aggregate, the fragmented one of a FU.
pub fn payload_has_key_nal(payload: &[u8]) -> bool {
    let key = |t: u8| is_irap(t) || matches!(t, super::NAL_VPS..=super::NAL_PPS);
    match nal_type(payload) {
        // AP: the first aggregated NAL unit after its 16-bit size.
        AP => payload.get(4..).is_some_and(|p| key(nal_type(p))),
        // FU: the FU header's type.
        FU => payload.get(2).is_some_and(|b| key(b & 0x3f)),
        t => key(t),
    }
}

/// One assembled access unit: the same type as H.264's (for H.265, `keyframe`
/// means an IRAP picture whose VPS, SPS and PPS are in front).
pub use crate::media::h264::rtp::AccessUnit;
use crate::media::h264::rtp::{PacketOrder, push};

/// Stateful RFC 7798 depacketizer for one video SSRC.
#[derive(Debug, Default)]
pub struct Depacketizer {
    nals: Vec<Bytes>,
    order: PacketOrder,
    fu: Option<BytesMut>,
    broken: bool,
    params: ParamSets,
    synced: bool,
    want_pli: bool,
    ready: VecDeque<AccessUnit>,
}

impl Depacketizer {
    /// Feeds one RTP packet. Completed access units are returned by [`Self::pull`].
    pub fn push(&mut self, seq: u16, ts: u32, marker: bool, payload: &Bytes) {
        push(self, seq, ts, marker, payload);
    }

    /// The next completed access unit, if any.
    pub fn pull(&mut self) -> Option<AccessUnit> {
        self.ready.pop_front()
    }

    /// Whether a key frame should be requested (loss, or no IRAP yet); clears the flag.
    pub fn take_pli_request(&mut self) -> bool {
        std::mem::take(&mut self.want_pli)
    }

    /// Waits for the next IRAP picture (used when a downstream queue dropped frames).
    pub fn resync(&mut self) {
        self.synced = false;
        self.want_pli = true;
    }

    fn payload(&mut self, p: &Bytes) {
        if p.len() < 3 {
            self.broken = true;
            return;
        }
        match nal_type(p) {
            AP => {
                let mut rest = p.slice(2..);
                while !rest.is_empty() {
                    let n = match rest.get(..2) {
                        Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
                        None => 0,
                    };
                    if n < 2 || rest.len() < 2 + n {
                        self.broken = true;
                        return;
                    }
                    self.nal(rest.slice(2..2 + n));
                    rest = rest.slice(2 + n..);
                }
            }
            FU => self.fragment(p),
            PACI => self.broken = true,
            _ => self.nal(p.clone()),
        }
    }

    fn fragment(&mut self, p: &Bytes) {
        let fu_hdr = p[2];
        let (start, end, fu_type) = (fu_hdr & 0x80 != 0, fu_hdr & 0x40 != 0, fu_hdr & 0x3f);
        if start {
            let mut b = BytesMut::with_capacity(p.len() * 8);
            // The NAL header: the payload header's F, LayerId and TID with FuType.
            b.put_u8((p[0] & 0x81) | (fu_type << 1));
            b.put_u8(p[1]);
            b.extend_from_slice(&p[3..]);
            self.fu = Some(b);
        } else if let Some(b) = self.fu.as_mut() {
            b.extend_from_slice(&p[3..]);
        } else {
            self.broken = true; // a fragment whose start we lost
            return;
        }
        if end && let Some(b) = self.fu.take() {
            self.nal(b.freeze());
        }
    }

    /// One complete NAL unit of the current timestamp.
    fn nal(&mut self, n: Bytes) {
        // A second picture under one timestamp (or a lost marker): its first slice
        // closes the access unit collected so far.
        if first_slice_in_picture(&n) && self.nals.iter().any(|m| is_vcl(nal_type(m))) {
            let ts = self.order.ts;
            self.finish();
            self.order.ts = ts;
        }
        self.nals.push(n);
    }

    fn finish(&mut self) {
        let nals = std::mem::take(&mut self.nals);
        let broken = std::mem::take(&mut self.broken) || self.fu.take().is_some();
        let Some(ts) = self.order.ts.take() else {
            return;
        };
        if broken {
            self.synced = false;
            self.want_pli = true;
            return;
        }
        let (mut had_params, mut irap, mut vcl) = (false, false, false);
        for n in &nals {
            let t = nal_type(n);
            had_params |= self.params.remember(n);
            vcl |= is_vcl(t);
            irap |= is_irap(t);
        }
        if !vcl {
            return; // parameter sets / SEI alone: remembered, put before the next IRAP
        }
        let keyframe = irap && self.params.complete();
        if keyframe {
            self.synced = true;
        } else if !self.synced {
            self.want_pli = true;
            return;
        }
        let size = nals.iter().map(|n| n.len() + 4).sum::<usize>() + 128;
        let mut out = BytesMut::with_capacity(size);
        if keyframe || had_params {
            self.params.write_annex_b(&mut out);
        }
        for n in nals.iter().filter(|n| {
            let t = nal_type(n);
            t != NAL_AUD && !matches!(t, super::NAL_VPS..=super::NAL_PPS)
        }) {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(n);
        }
        self.ready.push_back(AccessUnit {
            data: out.freeze(),
            keyframe,
            rtp_timestamp: ts,
        });
    }
}

crate::media::h264::rtp::impl_assemble!(Depacketizer);
