//! H.264 over RTP (RFC 6184) → access units, plus small Annex-B helpers.
//!
//! `Depacketizer` accepts packetization-mode 1 payloads (single NAL unit,
//! STAP-A, FU-A), assembles access units on the marker bit or a timestamp
//! change, and emits Annex-B access units with SPS/PPS in front of every IDR.
//! After packet loss it drops everything up to the next IDR and asks for a PLI.
//! It does no I/O and never blocks; it runs once per RTP packet.

use bytes::{BufMut, Bytes, BytesMut};

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// One assembled access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessUnit {
    /// Annex-B bytes (4-byte start codes).
    pub data: Bytes,
    /// Contains an IDR slice (SPS and PPS are then included).
    pub keyframe: bool,
    /// RTP timestamp (90 kHz) of the access unit.
    pub rtp_timestamp: u32,
}

/// Stateful RFC 6184 depacketizer for one video SSRC.
#[derive(Debug, Default)]
pub(crate) struct Depacketizer {
    nals: Vec<Bytes>,
    ts: Option<u32>,
    last_seq: Option<u16>,
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
        if let Some(last) = self.last_seq {
            let delta = seq.wrapping_sub(last);
            if delta == 0 || delta > 0x8000 {
                return; // duplicate or late (already given up on)
            }
            if delta != 1 {
                self.broken = true;
                self.fu = None;
            }
        }
        self.last_seq = Some(seq);
        if self.ts.is_some_and(|t| t != ts) {
            self.finish();
        }
        self.ts = Some(ts);
        self.payload(payload);
        if marker {
            self.finish();
        }
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
        match hdr & 0x1f {
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
            b.put_u8((indicator & 0xe0) | (fu_hdr & 0x1f));
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
        let Some(ts) = self.ts.take() else {
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

fn nal_type(n: &[u8]) -> u8 {
    n.first().map_or(0, |b| b & 0x1f)
}

/// Splits an Annex-B byte stream (3- or 4-byte start codes) into NAL units.
pub fn annex_b_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            let mut e = s - 3;
            while e > 0 && data[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |(s, e)| &data[s..e.max(s)])
}

/// The NAL unit type (5 = IDR, 7 = SPS, 8 = PPS) of a NAL unit.
pub fn nal_unit_type(nal: &[u8]) -> u8 {
    nal_type(nal)
}

/// Width and height in pixels from an SPS NAL unit (with its 1-byte header),
/// or `None` if it cannot be parsed. Handles cropping and the high profiles'
/// chroma format fields; scaling lists are skipped.
pub fn sps_resolution(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp: Vec<u8> = {
        let mut v = Vec::with_capacity(sps.len());
        let mut zeros = 0;
        for &b in sps.get(1..)? {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            v.push(b);
        }
        v
    };
    let mut r = BitReader {
        data: &rbsp,
        pos: 0,
    };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags + level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.bits(1)?;
        }
        r.ue()?;
        r.ue()?;
        r.bits(1)?;
        if r.bits(1)? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bits(1)? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bits(1)?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?;
    let w_mbs = r.ue()? + 1;
    let h_map = r.ue()? + 1;
    let frame_mbs_only = r.bits(1)?;
    if frame_mbs_only == 0 {
        r.bits(1)?;
    }
    r.bits(1)?;
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bits(1)? == 1 {
        (cl, cr, ct, cb) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let (cx, cy) = match chroma_format_idc {
        0 => (1, 2 - frame_mbs_only),
        1 => (2, 2 * (2 - frame_mbs_only)),
        2 => (2, 2 - frame_mbs_only),
        _ => (1, 2 - frame_mbs_only),
    };
    let w = (w_mbs * 16).checked_sub(cx * (cl + cr))?;
    let h = ((2 - frame_mbs_only) * h_map * 16).checked_sub(cy * (ct + cb))?;
    Some((w, h))
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let nals: Vec<&[u8]> = annex_b_nals(&au.data).collect();
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
        assert_eq!(annex_b_nals(&au.data).count(), 3);
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
        let types: Vec<u8> = annex_b_nals(&au.data).map(nal_unit_type).collect();
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
            annex_b_nals(&au.data)
                .map(nal_unit_type)
                .collect::<Vec<_>>(),
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

    #[test]
    fn sps_of_1080p_high_profile() {
        // x264 (GStreamer 1.22) High@4.0 1920x1080 SPS (cropped from 1088).
        let sps = [
            0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x5a, 0x80,
            0x80, 0x80, 0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe3, 0x06,
            0x32, 0xc0,
        ];
        assert_eq!(sps_resolution(&sps), Some((1920, 1080)));
        // x264 constrained baseline 640x480.
        let sps = [
            0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x16, 0xa0, 0xc0, 0xc0, 0xd4,
            0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe2, 0xc5, 0xc9,
        ];
        assert_eq!(sps_resolution(&sps), Some((640, 480)));
    }
}
