//! Joining a running shared media at a key frame.
//!
//! With shared media one pipeline serves every client of a camera, so a client
//! that PLAYs while others watch would otherwise start wherever the stream is:
//! mid-GOP, on P-frames it cannot decode. GStreamer 1.22's RTSP server cannot hold
//! one client back to a key frame (1.24's `ensure-keyunit-on-start` can), so
//! [`JoinGate`] does it around the server:
//!
//! 1. The joiner's PLAY waits in `pre-play-request` ([`JoinGate::wait_for_key`],
//!    its own client thread) while the hub is asked for a key frame.
//! 2. A pad probe on the video payloader's output ([`JoinGate::on_sample`], the
//!    media's streaming thread) watches the RTP it sends. At the *second* sample
//!    of a key frame's access unit it lets the joiners go and holds the stream
//!    until their PLAY has been handled ([`JoinGate::admitted`], from
//!    `play-request`). The video payloader (`super::pay`) sends a key frame as
//!    two samples, its parameter sets' packet and then the rest as one list.
//! 3. The TCP path behind the payloader is synchronous up to an appsink that
//!    queues one sample (`max-buffers=1`): when the second sample reaches the
//!    probe, the first is queued or sent and everything before it is sent. The
//!    joiner's transport, added now, gets the stream from inside the key frame's
//!    access unit — never a P-frame, never a partial NAL unit. (The SDP's
//!    `sprop-parameter-sets` carry the parameter sets it may miss.)
//!
//! Every wait is bounded: a joiner that sees no key frame within
//! [`JOIN_WAIT`] plays from wherever the stream is, and a streaming thread whose
//! joiners' PLAY never completes moves on after [`ADMIT_WAIT`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::media::{VideoCodec, payload_has_key_nal};

/// Longest a joiner's PLAY waits for a key frame (Ring's key frame interval is
/// about 2 s; a key frame is also requested when the joiner arrives).
pub(crate) const JOIN_WAIT: Duration = Duration::from_secs(4);
/// Longest the stream is held for admitted joiners to be activated.
pub(crate) const ADMIT_WAIT: Duration = Duration::from_millis(500);

/// The key-frame gate of one media; see the module docs.
pub(crate) struct JoinGate {
    codec: VideoCodec,
    /// Joiners waiting (a copy of `State::waiting` the probe reads without a lock).
    waiting: AtomicUsize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    waiting: usize,
    /// Bumped each time the gate opens.
    epoch: u64,
    /// Joiners let through whose PLAY is still being handled.
    admitting: usize,
    /// The access unit being sent: RTP timestamp, whether its start was seen,
    /// whether it is a key frame so far, samples seen.
    au: Option<Au>,
}

#[derive(Clone, Copy)]
struct Au {
    ts: u32,
    from_start: bool,
    key: bool,
    samples: u32,
}

impl JoinGate {
    /// A gate for a media whose video is `codec`.
    pub(crate) fn new(codec: VideoCodec) -> Self {
        JoinGate {
            codec,
            waiting: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks a joiner until the stream reaches a key frame (`true`: admitted, call
    /// [`JoinGate::admitted`] once its PLAY is handled) or `timeout` passes
    /// (`false`).
    pub(crate) fn wait_for_key(&self, timeout: Duration) -> bool {
        let mut st = self.lock();
        if st.waiting == 0 {
            // Tracking starts now: the access unit in flight was not seen from
            // its start.
            st.au = None;
        }
        st.waiting += 1;
        self.waiting.store(st.waiting, Ordering::Release);
        let epoch = st.epoch;
        let (mut st, _) = self
            .changed
            .wait_timeout_while(st, timeout, |s| s.epoch == epoch)
            .unwrap_or_else(|e| e.into_inner());
        if st.epoch != epoch {
            return true;
        }
        st.waiting -= 1;
        self.waiting.store(st.waiting, Ordering::Release);
        false
    }

    /// Whether a joiner waits (the probe's fast path: no parsing otherwise).
    pub(crate) fn watching(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
    }

    /// An admitted joiner's PLAY was handled (its transports are active).
    pub(crate) fn admitted(&self) {
        let mut st = self.lock();
        st.admitting = st.admitting.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Called on the streaming thread for each sample the video payloader sends,
    /// with the first bytes of its first RTP packet. Cheap while nobody waits.
    pub(crate) fn on_sample(&self, first_packet: &[u8]) {
        if !self.watching() {
            return;
        }
        let Some((ts, payload)) = rtp_ts_and_payload(first_packet) else {
            return;
        };
        let key = payload_has_key_nal(self.codec, payload);
        let mut st = self.lock();
        let au = match st.au {
            Some(mut au) if au.ts == ts => {
                au.samples += 1;
                au.key |= key;
                au
            }
            // The first sample seen may be anywhere in its access unit; only a
            // timestamp change proves a start.
            prev => Au {
                ts,
                from_start: prev.is_some(),
                key,
                samples: 1,
            },
        };
        st.au = Some(au);
        if !(au.from_start && au.key && au.samples >= 2 && st.waiting > 0) {
            return;
        }
        st.admitting += st.waiting;
        st.waiting = 0;
        self.waiting.store(0, Ordering::Release);
        st.epoch += 1;
        self.changed.notify_all();
        let (mut st, _) = self
            .changed
            .wait_timeout_while(st, ADMIT_WAIT, |s| s.admitting > 0)
            .unwrap_or_else(|e| e.into_inner());
        st.admitting = 0;
    }
}

/// The RTP timestamp and the payload (as far as `packet` reaches) of an RTP
/// packet's first bytes.
fn rtp_ts_and_payload(packet: &[u8]) -> Option<(u32, &[u8])> {
    let b0 = *packet.first()?;
    if b0 >> 6 != 2 || packet.len() < 12 {
        return None;
    }
    let ts = u32::from_be_bytes(packet[4..8].try_into().ok()?);
    let mut at = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let words = packet.get(at + 2..at + 4)?;
        at += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    Some((ts, packet.get(at..)?))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn rtp(ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96, 0, 1];
        p.extend(ts.to_be_bytes());
        p.extend([0, 0, 0, 1]);
        p.extend(payload);
        p
    }

    /// Runs `samples` through the gate with one joiner waiting; returns the index
    /// of the sample at which the joiner was let in.
    fn admitted_at(codec: VideoCodec, samples: &[Vec<u8>]) -> Option<usize> {
        let gate = Arc::new(JoinGate::new(codec));
        let joiner = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                let ok = gate.wait_for_key(Duration::from_secs(20));
                if ok {
                    gate.admitted();
                }
                ok
            })
        };
        while gate.waiting.load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        let mut at = None;
        for (i, s) in samples.iter().enumerate() {
            let epoch = gate.lock().epoch;
            gate.on_sample(s);
            if at.is_none() && gate.lock().epoch != epoch {
                at = Some(i);
            }
        }
        if at.is_none() {
            // Let the joiner go so the thread ends.
            let mut st = gate.lock();
            st.epoch += 1;
            gate.changed.notify_all();
        }
        joiner.join().unwrap();
        at
    }

    #[test]
    fn h264_joiner_enters_inside_a_key_frame_seen_from_its_start() {
        let p_frame = |ts| rtp(ts, &[0x41, 0xAA]);
        let stap_sps_pps = |ts| rtp(ts, &[0x78, 0, 2, 0x67, 0x64, 0, 2, 0x68, 0xEE]);
        let idr_fu_start = |ts| rtp(ts, &[0x7C, 0x85, 0xAB]);
        let samples = vec![
            // A key frame already in flight when the joiner came: not trusted.
            idr_fu_start(100),
            idr_fu_start(100),
            p_frame(200),
            p_frame(300),
            // The next key frame: in at its second sample.
            stap_sps_pps(400),
            idr_fu_start(400),
            p_frame(500),
        ];
        assert_eq!(admitted_at(VideoCodec::H264, &samples), Some(5));
    }

    #[test]
    fn h264_single_sample_key_frames_do_not_open_the_gate() {
        let samples = vec![
            rtp(100, &[0x41, 0xAA]),
            rtp(200, &[0x65, 0x88]), // a key frame in one sample
            rtp(300, &[0x41, 0xAA]),
            rtp(300, &[0x41, 0xAB]), // a two-slice P-frame
        ];
        assert_eq!(admitted_at(VideoCodec::H264, &samples), None);
    }

    #[test]
    fn h265_joiner_enters_at_an_irap_access_unit() {
        let samples = vec![
            rtp(100, &[0x02, 0x01, 0xAA]),                   // TRAIL_R
            rtp(200, &[0x60, 0x01, 0, 3, 0x40, 0x01, 0x0C]), // AP with VPS first
            rtp(200, &[0x62, 0x01, 0x93, 0xAB]),             // FU start, IDR_W_RADL
        ];
        assert_eq!(admitted_at(VideoCodec::H265, &samples), Some(2));
    }

    #[test]
    fn a_joiner_without_a_key_frame_times_out() {
        let gate = JoinGate::new(VideoCodec::H264);
        assert!(!gate.wait_for_key(Duration::from_millis(10)));
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
        assert_eq!(gate.lock().waiting, 0);
    }

    #[test]
    fn parses_csrcs_and_extensions() {
        let mut p = vec![0x91, 96, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1];
        p.extend([0, 0, 0, 9]); // one CSRC
        p.extend([0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // one-word extension
        p.push(0x65);
        assert_eq!(rtp_ts_and_payload(&p), Some((256, &[0x65][..])));
        assert_eq!(rtp_ts_and_payload(&[0x80, 96]), None);
    }
}
