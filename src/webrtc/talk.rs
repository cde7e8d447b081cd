//! Talkback intake: the viewer's inbound audio (Opus RTP, from the session's
//! pump) → the camera speaker.
//!
//! Each RTP payload becomes one [`TalkbackPacket`] for
//! [`crate::media::CameraStream::talkback`], but only while this session holds the
//! camera's talk floor ([`crate::media::Floors`]). Opus goes through untouched; if
//! the Ring session negotiated PCMU (the hub's talkback then wants µ-law), packets
//! are transcoded by [`super::pcmu::OpusToPcmu`], created on first need.
//!
//! With the voice floor ([`TalkFloor::Voice`]) the intake also measures the
//! viewer's audio ([`super::voice`]): speech takes the floor when it is free (the
//! last [`PREROLL`] packets before it are sent too, so the first syllable is not
//! cut), and silence for the hang time gives a voice claim back.
//!
//! Never blocks on the hub: a full talkback buffer drops the packet.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Activity;
use super::pcmu::{OpusToPcmu, PCMU_PACKET};
use super::voice::{Detector, TalkFloor, VoiceMeter, VoiceOptions};
use crate::base::CameraId;
use crate::media::{CameraStream, Claim, Floors, TalkbackCodec, TalkbackError, TalkbackPacket};

/// Packets kept while a voice talker waits for the floor, sent once it has it:
/// 10 × 20 ms, enough for the detector's attack and the decoder's latency.
pub const PREROLL: usize = 10;
/// 20 ms at 48 kHz: the fallback packet duration.
const DEFAULT_SAMPLES: u32 = 960;
/// The longest Opus packet: 120 ms at 48 kHz (RFC 6716 §3.2.5).
const MAX_SAMPLES: u32 = 5760;

/// Samples per frame of an Opus TOC configuration, at 48 kHz (RFC 6716 §3.1).
fn frame_samples(config: u8) -> u32 {
    match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// Duration of one Opus packet in 48 kHz samples, from its TOC byte (RFC 6716
/// §3.1); `None` for an empty or malformed packet.
pub(crate) fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3F),
    };
    let total = frames * frame_samples(toc >> 3);
    (1..=MAX_SAMPLES).contains(&total).then_some(total)
}

/// Tracks RTP timestamps of the inbound track to size packets the TOC cannot.
#[derive(Debug, Default)]
pub(crate) struct Durations {
    last_ts: Option<u32>,
    last_samples: Option<u32>,
}

impl Durations {
    /// Samples (48 kHz) of the packet with RTP timestamp `ts`: from the Opus TOC;
    /// else the timestamp delta to the previous packet when plausible; else the
    /// previous packet's size; else 20 ms.
    pub fn samples(&mut self, ts: u32, payload: &[u8]) -> u32 {
        let delta = self.last_ts.map(|l| ts.wrapping_sub(l));
        self.last_ts = Some(ts);
        let n = opus_packet_samples(payload)
            .or(delta.filter(|d| (120..=MAX_SAMPLES).contains(d)))
            .or(self.last_samples)
            .unwrap_or(DEFAULT_SAMPLES);
        self.last_samples = Some(n);
        n
    }
}

/// One RTP packet of the viewer's audio.
#[derive(Debug)]
pub(crate) struct Uplink {
    /// RTP timestamp (48 kHz).
    pub timestamp: u32,
    /// The Opus packet.
    pub payload: Bytes,
}

/// Everything the intake task needs.
pub(crate) struct Intake {
    pub camera: CameraId,
    pub session: String,
    pub stream: CameraStream,
    pub floors: Arc<Floors>,
    pub activity: Arc<Activity>,
    pub cancel: CancellationToken,
    /// How the floor is taken.
    pub mode: TalkFloor,
    /// The voice detector's thresholds (voice mode).
    pub voice: VoiceOptions,
}

/// Delivers talkback to the hub: Opus as is, or transcoded when Ring wants PCMU.
struct Outlet {
    stream: CameraStream,
    pcmu: Option<OpusToPcmu>,
    pcmu_failed: bool,
    forwarded: u64,
    drops: u64,
}

impl Outlet {
    fn new(stream: CameraStream) -> Self {
        Outlet {
            stream,
            pcmu: None,
            pcmu_failed: false,
            forwarded: 0,
            drops: 0,
        }
    }

    fn forward(&mut self, packet: TalkbackPacket) {
        let Some(tb) = self.stream.talkback() else {
            self.drops += 1;
            return;
        };
        match tb.try_send(packet) {
            Ok(()) => {}
            Err(TalkbackError::Full) => {
                self.drops += 1;
                if self.drops.is_power_of_two() {
                    debug!(drops = self.drops, "talkback buffer full; dropping audio");
                }
            }
            Err(TalkbackError::Closed) => self.drops += 1, // Ring session renewing
        }
    }

    /// Sends one Opus packet of `samples` (48 kHz) towards the camera.
    async fn send(&mut self, opus: Bytes, samples: u32) {
        self.forwarded += 1;
        // Without a session (renewing) the packet is dropped in `forward` anyway.
        if self.stream.talkback_codec() != Some(TalkbackCodec::Pcmu) {
            let p = TalkbackPacket {
                codec: TalkbackCodec::Opus,
                data: opus,
                samples,
            };
            self.forward(p);
            return;
        }
        if self.pcmu.is_none() && !self.pcmu_failed {
            match OpusToPcmu::new().await {
                Ok(t) => self.pcmu = Some(t),
                Err(e) => {
                    warn!(err = %crate::base::error::chain(&e), "cannot transcode talkback to PCMU; dropping it");
                    self.pcmu_failed = true;
                }
            }
        }
        if let Some(t) = &self.pcmu
            && let Err(e) = t.push(opus)
        {
            warn!(err = %crate::base::error::chain(&e), "PCMU transcoder failed; dropping talkback");
            if let Some(t) = self.pcmu.take() {
                t.stop().await;
            }
            self.pcmu_failed = true;
        }
    }

    /// Waits for the transcoder's next packet; pending forever without one.
    async fn next_pcmu(&mut self) -> Option<Bytes> {
        match &mut self.pcmu {
            Some(t) => t.recv().await,
            None => std::future::pending().await,
        }
    }

    fn forward_pcmu(&mut self, chunk: Bytes) {
        let samples = u32::try_from(chunk.len()).unwrap_or(PCMU_PACKET as u32);
        let p = TalkbackPacket {
            codec: TalkbackCodec::Pcmu,
            data: chunk,
            samples,
        };
        self.forward(p);
    }

    async fn stop(self) {
        if let Some(t) = self.pcmu {
            t.stop().await;
        }
        debug!(
            forwarded = self.forwarded,
            drops = self.drops,
            "talkback intake ended"
        );
    }
}

/// The voice floor of one session: the meter (started on the first audio), the
/// detector and the packets kept until the floor is had.
struct Voice {
    meter: Option<VoiceMeter>,
    failed: bool,
    detector: Detector,
    preroll: VecDeque<(Bytes, u32)>,
    /// Speaking while someone else holds the floor (logged once per wait).
    waiting: bool,
}

impl Voice {
    fn new(opts: VoiceOptions) -> Self {
        Voice {
            meter: None,
            failed: false,
            detector: Detector::new(opts),
            preroll: VecDeque::with_capacity(PREROLL),
            waiting: false,
        }
    }

    /// Measures one uplink packet; starts the meter on first need.
    async fn measure(&mut self, opus: &[u8]) {
        if self.meter.is_none() && !self.failed {
            match VoiceMeter::start().await {
                Ok(m) => self.meter = Some(m),
                Err(e) => {
                    warn!(err = %crate::base::error::chain(&e), "cannot measure the viewer's voice; only POST …/talk takes the floor");
                    self.failed = true;
                }
            }
        }
        if let Some(m) = &self.meter
            && let Err(e) = m.push(opus)
        {
            warn!(err = %crate::base::error::chain(&e), "voice meter failed; only POST …/talk takes the floor");
            if let Some(m) = self.meter.take() {
                m.stop().await;
            }
            self.failed = true;
        }
    }

    /// Keeps a packet that arrived without the floor.
    fn keep(&mut self, opus: Bytes, samples: u32) {
        if self.preroll.len() == PREROLL {
            self.preroll.pop_front();
        }
        self.preroll.push_back((opus, samples));
    }

    /// The next level; pending forever without a meter.
    async fn next_level(&mut self) -> Option<f32> {
        match &mut self.meter {
            Some(m) => m.recv().await,
            None => std::future::pending().await,
        }
    }

    async fn stop(self) {
        if let Some(m) = self.meter {
            m.stop().await;
        }
    }
}

/// The next level of `voice`; pending forever without voice mode.
async fn next_level(voice: &mut Option<Voice>) -> Option<f32> {
    match voice {
        Some(v) => v.next_level().await,
        None => std::future::pending().await,
    }
}

/// Waits until `deadline`; pending forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Intake {
    /// A level from the voice meter: speech asks for the floor (on loud levels
    /// only, not during the hang time) and, once it has it, sends the kept packets.
    async fn on_level(&self, voice: &mut Voice, out: &mut Outlet, dbfs: f32) {
        if voice.detector.level(dbfs, Instant::now()) {
            debug!(dbfs, "viewer speaks");
        }
        if !voice.detector.speaking() || !voice.detector.is_loud(dbfs) {
            return;
        }
        let holder = self.floors.holder(self.camera);
        if holder.as_ref().is_some_and(|(s, _)| *s == self.session) {
            return;
        }
        match self.floors.take(self.camera, &self.session, Claim::Voice) {
            Ok(_) => {
                info!(dbfs, "talk floor taken by voice");
                voice.waiting = false;
                while let Some((opus, samples)) = voice.preroll.pop_front() {
                    out.send(opus, samples).await;
                }
            }
            Err(holder) if !voice.waiting => {
                voice.waiting = true;
                info!(%holder, "speaking while another session holds the talk floor");
            }
            Err(_) => {}
        }
    }

    /// The hang time after speech is over: a voice claim goes back.
    fn on_silence(&self, voice: &mut Voice) {
        if !voice.detector.expire(Instant::now()) {
            return;
        }
        voice.waiting = false;
        if self.floors.release_voice(self.camera, &self.session) {
            info!("talk floor released after silence");
        }
    }
}

/// Reads the viewer's audio until the session ends.
pub(crate) async fn run(mut uplink: mpsc::Receiver<Uplink>, ctx: Intake) {
    debug!(mode = ?ctx.mode, "viewer audio intake");
    let mut durations = Durations::default();
    let mut out = Outlet::new(ctx.stream.clone());
    let mut voice = (ctx.mode == TalkFloor::Voice).then(|| Voice::new(ctx.voice.clone()));
    loop {
        let hang = voice.as_ref().and_then(|v| v.detector.hang_deadline());
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            Some(chunk) = out.next_pcmu() => out.forward_pcmu(chunk),
            Some(dbfs) = next_level(&mut voice) => {
                if let Some(v) = voice.as_mut() {
                    ctx.on_level(v, &mut out, dbfs).await;
                }
            }
            _ = until(hang) => {
                if let Some(v) = voice.as_mut() {
                    ctx.on_silence(v);
                }
            }
            r = uplink.recv() => {
                let Some(pkt) = r else {
                    debug!("viewer audio ended");
                    break;
                };
                ctx.activity.touch();
                let samples = durations.samples(pkt.timestamp, &pkt.payload);
                if pkt.payload.is_empty() {
                    continue;
                }
                if let Some(v) = voice.as_mut() {
                    v.measure(&pkt.payload).await;
                }
                if ctx.floors.touch(ctx.camera, &ctx.session) {
                    out.send(pkt.payload, samples).await;
                } else if let Some(v) = voice.as_mut() {
                    v.keep(pkt.payload, samples);
                }
            }
        }
    }
    if let Some(v) = voice {
        v.stop().await;
    }
    out.stop().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_toc_durations() {
        // config 31 (CELT FB 20 ms), code 0: one 20 ms frame.
        assert_eq!(opus_packet_samples(&[31 << 3, 0xAA]), Some(960));
        // config 1 (SILK NB 20 ms), code 1: two frames = 40 ms.
        assert_eq!(opus_packet_samples(&[(1 << 3) | 1]), Some(1920));
        // config 3 (SILK 60 ms), code 3 with 2 frames = 120 ms.
        assert_eq!(opus_packet_samples(&[(3 << 3) | 3, 2]), Some(5760));
        // code 3 with 3 × 60 ms is over the limit.
        assert_eq!(opus_packet_samples(&[(3 << 3) | 3, 3]), None);
        assert_eq!(opus_packet_samples(&[]), None);
        // config 16 (CELT 2.5 ms).
        assert_eq!(opus_packet_samples(&[16 << 3]), Some(120));
    }

    #[test]
    fn durations_fall_back_to_rtp_deltas() {
        let mut d = Durations::default();
        assert_eq!(d.samples(1000, &[31 << 3]), 960);
        // Malformed TOC: the RTP delta decides.
        assert_eq!(d.samples(1000 + 1920, &[(3 << 3) | 3]), 1920);
        // Nothing plausible: the previous size.
        assert_eq!(d.samples(1000 + 1920, &[(3 << 3) | 3]), 1920);
        let mut d = Durations::default();
        assert_eq!(d.samples(5, &[]), DEFAULT_SAMPLES);
        // Wrap-around of the 32-bit timestamp.
        let mut d = Durations::default();
        d.samples(u32::MAX - 100, &[(3 << 3) | 3]);
        assert_eq!(d.samples(859, &[(3 << 3) | 3]), 960);
    }
}
