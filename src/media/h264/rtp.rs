//! H.264 over RTP (RFC 6184) → access units.
//!
//! `Depacketizer` accepts packetization-mode 1 payloads (single NAL unit,
//! STAP-A, FU-A), assembles access units on the marker bit or a timestamp
//! change, and emits Annex-B access units with SPS/PPS in front of every IDR.
//! After packet loss it drops everything up to the next IDR and asks for a PLI.
//! It does no I/O and never blocks; it runs once per RTP packet. RTP parsing
//! stays with the caller (the webrtc crate in `ring::live` and the bench): it
//! hands in sequence number, timestamp, marker and payload.

use bytes::{BufMut, Bytes, BytesMut};

use super::{NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, START_CODE, nal_type};

/// RTP payload type of a single-time aggregation packet (RFC 6184 §5.7.1).
const STAP_A: u8 = 24;
/// RTP payload type of a fragmentation unit (RFC 6184 §5.8).
const FU_A: u8 = 28;

/// Whether an RTP payload (single NAL unit, STAP-A, or FU-A) carries a key
/// frame's NAL unit or its parameter sets (IDR slice, SPS, PPS): for the
/// first NAL unit of an aggregate, the fragmented one of a FU-A.
pub fn payload_has_key_nal(payload: &[u8]) -> bool {
    let key = |t: u8| matches!(t, NAL_IDR | NAL_SPS | NAL_PPS);
    match nal_type(payload) {
        // STAP-A: the first aggregated NAL unit after its 16-bit size.
        STAP_A => payload.get(3..).is_some_and(|p| key(nal_type(p))),
        // FU-A: the FU header's type.
        FU_A => payload.get(1).is_some_and(|b| key(b & 0x1f)),
        t => key(t),
    }
}

/// One assembled access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Annex-B bytes (4-byte start codes).
    pub data: Bytes,
    /// Contains an IDR slice (SPS and PPS are then included).
    pub keyframe: bool,
    /// RTP timestamp (90 kHz) of the access unit.
    pub rtp_timestamp: u32,
}

/// Stateful RFC 6184 depacketizer for one video SSRC: feed every RTP packet
/// with [`Depacketizer::push`], take access units with [`Depacketizer::pull`].
#[derive(Debug, Default)]
pub struct Depacketizer {
    nals: Vec<Bytes>,
    order: PacketOrder,
    fu: Option<BytesMut>,
    broken: bool,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    synced: bool,
    want_pli: bool,
    ready: std::collections::VecDeque<AccessUnit>,
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

    /// Whether a key frame should be requested (loss, or no IDR yet); clears the flag.
    pub fn take_pli_request(&mut self) -> bool {
        std::mem::take(&mut self.want_pli)
    }

    /// Forgets the current access unit and waits for the next IDR (used when a
    /// downstream queue dropped frames).
    pub fn resync(&mut self) {
        self.synced = false;
        self.want_pli = true;
    }

    fn payload(&mut self, p: &Bytes) {
        let Some(&hdr) = p.first() else {
            return;
        };
        match nal_type(&[hdr]) {
            1..=23 => self.nals.push(p.clone()),
            STAP_A => {
                let mut rest = p.slice(1..);
                while rest.len() >= 2 {
                    let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    if n == 0 || rest.len() < 2 + n {
                        self.broken = true;
                        return;
                    }
                    self.nals.push(rest.slice(2..2 + n));
                    rest = rest.slice(2 + n..);
                }
            }
            FU_A => self.fragment(hdr, p),
            _ => self.broken = true, // STAP-B, MTAP, FU-B: not in packetization-mode 1
        }
    }

    fn fragment(&mut self, indicator: u8, p: &Bytes) {
        let Some(&fu_hdr) = p.get(1) else {
            self.broken = true;
            return;
        };
        let (start, end) = (fu_hdr & 0x80 != 0, fu_hdr & 0x40 != 0);
        if start {
            let mut b = BytesMut::with_capacity(p.len() * 8);
            // The NAL header: F and NRI from the indicator, the type from the FU header.
            b.put_u8((indicator & 0xe0) | nal_type(&[fu_hdr]));
            b.extend_from_slice(&p[2..]);
            self.fu = Some(b);
        } else if let Some(b) = self.fu.as_mut() {
            b.extend_from_slice(&p[2..]);
        } else {
            self.broken = true; // middle of a fragment whose start we lost
            return;
        }
        if end && let Some(b) = self.fu.take() {
            self.nals.push(b.freeze());
        }
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
        let (mut has_sps, mut has_pps, mut idr, mut vcl) = (false, false, false, false);
        for n in &nals {
            match nal_type(n) {
                NAL_SPS => {
                    has_sps = true;
                    self.sps = Some(n.clone());
                }
                NAL_PPS => {
                    has_pps = true;
                    self.pps = Some(n.clone());
                }
                NAL_IDR => (idr, vcl) = (true, true),
                1..=4 => vcl = true,
                _ => {}
            }
        }
        if !vcl {
            return; // parameter sets / SEI alone: remembered, prepended to the next IDR
        }
        let keyframe = idr && self.sps.is_some() && self.pps.is_some();
        if keyframe {
            self.synced = true;
        } else if !self.synced {
            self.want_pli = true;
            return;
        }
        let mut out = BytesMut::with_capacity(nals.iter().map(|n| n.len() + 4).sum::<usize>() + 64);
        // Parameter sets go once, in front. Some senders repeat them before every
        // IDR slice; left between the slices of one picture they make decoders
        // split the access unit in two.
        if keyframe || has_sps || has_pps {
            for ps in [&self.sps, &self.pps].into_iter().flatten() {
                out.extend_from_slice(&START_CODE);
                out.extend_from_slice(ps);
            }
        }
        for n in nals
            .iter()
            .filter(|n| !matches!(nal_type(n), NAL_AUD | NAL_SPS | NAL_PPS))
        {
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

/// Packet order of one RTP video stream, shared by the RFC 6184 and RFC 7798
/// depacketizers: the last sequence number and the timestamp of the access unit
/// being collected.
#[derive(Debug, Default)]
pub(crate) struct PacketOrder {
    last_seq: Option<u16>,
    /// Timestamp of the access unit being collected.
    pub(crate) ts: Option<u32>,
}

impl PacketOrder {
    /// `None` for a duplicate or a packet older than the last one (dropped: it
    /// was given up on); otherwise whether packets were lost before it.
    fn step(&mut self, seq: u16) -> Option<bool> {
        let lost = match self.last_seq {
            Some(last) => {
                let delta = seq.wrapping_sub(last);
                if delta == 0 || delta > 0x8000 {
                    return None;
                }
                delta != 1
            }
            None => false,
        };
        self.last_seq = Some(seq);
        Some(lost)
    }
}

/// What a codec's depacketizer does with the packets [`push`] lets through.
pub(crate) trait Assemble {
    /// The stream's packet order.
    fn order(&mut self) -> &mut PacketOrder;
    /// Packets were lost: the access unit being collected is broken.
    fn lost(&mut self);
    /// One payload of the current access unit.
    fn payload(&mut self, p: &Bytes);
    /// The current access unit is complete (marker bit or a new timestamp).
    fn finish(&mut self);
}

/// Feeds one RTP packet to `a`: drops duplicates and late packets, marks a gap,
/// closes the access unit on a new timestamp or the marker bit.
pub(crate) fn push<A: Assemble>(a: &mut A, seq: u16, ts: u32, marker: bool, payload: &Bytes) {
    let Some(lost) = a.order().step(seq) else {
        return;
    };
    if lost {
        a.lost();
    }
    if a.order().ts.is_some_and(|t| t != ts) {
        a.finish();
    }
    a.order().ts = Some(ts);
    a.payload(payload);
    if marker {
        a.finish();
    }
}

/// Implements [`Assemble`] for a depacketizer with the fields `order`,
/// `broken` and `fu` and the methods `payload` and `finish` (the H.264 and
/// H.265 ones).
macro_rules! impl_assemble {
    ($t:ty) => {
        impl $crate::media::h264::rtp::Assemble for $t {
            fn order(&mut self) -> &mut $crate::media::h264::rtp::PacketOrder {
                &mut self.order
            }

            fn lost(&mut self) {
                self.broken = true;
                self.fu = None;
            }

            fn payload(&mut self, p: &Bytes) {
                <$t>::payload(self, p);
            }

            fn finish(&mut self) {
                <$t>::finish(self);
            }
        }
    };
}
pub(crate) use impl_assemble;

impl_assemble!(Depacketizer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::nal_slices;

    fn b(v: &[u8]) -> Bytes {
        Bytes::copy_from_slice(v)
    }

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x28, 0xac];
    const PPS: &[u8] = &[0x68, 0xee, 0x3c, 0x80];

    fn stap(nals: &[&[u8]]) -> Bytes {
        let mut v = vec![0x78];
        for n in nals {
            v.extend_from_slice(&(n.len() as u16).to_be_bytes());
            v.extend_from_slice(n);
        }
        Bytes::from(v)
    }

    #[test]
    fn stap_a_then_fu_a_idr_then_single_p() {
        let mut d = Depacketizer::default();
        d.push(10, 1000, false, &stap(&[SPS, PPS]));
        d.push(11, 1000, false, &b(&[0x7c, 0x85, 1, 2]));
        d.push(12, 1000, false, &b(&[0x7c, 0x05, 3]));
        d.push(13, 1000, true, &b(&[0x7c, 0x45, 4]));
        let au = d.pull().unwrap();
        assert!(au.keyframe);
        assert_eq!(au.rtp_timestamp, 1000);
        let nals: Vec<&[u8]> = nal_slices(&au.data).collect();
        assert_eq!(nals, vec![SPS, PPS, &[0x65, 1, 2, 3, 4][..]]);
        d.push(14, 4000, true, &b(&[0x41, 9, 9]));
        let au = d.pull().unwrap();
        assert!(!au.keyframe);
        assert_eq!(&au.data[..], &[0, 0, 0, 1, 0x41, 9, 9]);
        assert!(d.pull().is_none());
    }

    #[test]
    fn parameter_sets_in_their_own_au_are_prepended_and_timestamp_change_ends_au() {
        let mut d = Depacketizer::default();
        d.push(1, 10, true, &stap(&[SPS, PPS]));
        assert!(d.pull().is_none());
        // no marker: the AU ends when the timestamp changes
        d.push(2, 20, false, &b(&[0x65, 7]));
        d.push(3, 30, false, &b(&[0x41, 8]));
        let au = d.pull().unwrap();
        assert!(au.keyframe);
        assert_eq!(nal_slices(&au.data).count(), 3);
    }

    #[test]
    fn parameter_sets_repeated_between_idr_slices_are_moved_to_the_front() {
        let mut d = Depacketizer::default();
        d.push(
            1,
            10,
            false,
            &stap(&[SPS, PPS, &[0x06, 9], &[0x65, 0x80, 1]]),
        );
        d.push(2, 10, true, &stap(&[SPS, PPS, &[0x65, 0x40, 2]]));
        let au = d.pull().unwrap();
        assert!(au.keyframe);
        let types: Vec<u8> = nal_slices(&au.data).map(nal_type).collect();
        assert_eq!(
            types,
            vec![7, 8, 6, 5, 5],
            "one SPS/PPS pair, then SEI and both slices"
        );
    }

    #[test]
    fn loss_drops_until_next_idr_and_requests_pli() {
        let mut d = Depacketizer::default();
        d.push(1, 10, true, &stap(&[SPS, PPS, &[0x65, 1]]));
        assert!(d.pull().unwrap().keyframe);
        d.push(2, 20, false, &b(&[0x7c, 0x81, 1]));
        d.push(4, 20, true, &b(&[0x7c, 0x41, 3])); // seq 3 lost
        assert!(d.pull().is_none());
        assert!(d.take_pli_request());
        d.push(5, 30, true, &b(&[0x41, 1])); // P frame: still waiting
        assert!(d.pull().is_none());
        d.push(6, 40, true, &b(&[0x65, 2])); // IDR: SPS/PPS prepended from memory
        let au = d.pull().unwrap();
        assert!(au.keyframe);
        assert_eq!(
            nal_slices(&au.data).map(nal_type).collect::<Vec<_>>(),
            vec![7, 8, 5]
        );
    }

    #[test]
    fn waits_for_first_idr() {
        let mut d = Depacketizer::default();
        d.push(1, 10, true, &b(&[0x41, 1]));
        assert!(d.pull().is_none());
        assert!(d.take_pli_request());
        assert!(!d.take_pli_request());
    }
}
