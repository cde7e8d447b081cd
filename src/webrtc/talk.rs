//! Talkback intake: the viewer's inbound audio track (Opus) → the camera speaker.
//!
//! Each RTP payload becomes one [`TalkbackPacket`] for
//! [`crate::media::CameraStream::talkback`], but only while this session holds the
//! camera's talk floor ([`super::floor::Floors`]). Opus goes through untouched; if
//! the Ring session negotiated PCMU (the hub's talkback then wants µ-law), packets
//! are transcoded by [`super::pcmu::OpusToPcmu`], created on first need.
//!
//! Never blocks on the hub: a full talkback buffer drops the packet.

use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use webrtc::track::track_remote::TrackRemote;

use super::Activity;
use super::floor::Floors;
use super::pcmu::{OpusToPcmu, PCMU_PACKET};
use crate::media::{CameraStream, TalkbackCodec, TalkbackError, TalkbackPacket};

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

/// Everything the intake task needs.
pub(crate) struct Intake {
    pub camera: String,
    pub session: String,
    pub stream: CameraStream,
    pub floors: Arc<Floors>,
    pub activity: Arc<Activity>,
    pub cancel: CancellationToken,
}

/// Waits for the transcoder's next packet; pending forever without a transcoder.
async fn next_pcmu(t: &mut Option<OpusToPcmu>) -> Option<Bytes> {
    match t {
        Some(t) => t.recv().await,
        None => std::future::pending().await,
    }
}

fn forward(stream: &CameraStream, packet: TalkbackPacket, drops: &mut u64) {
    let Some(tb) = stream.talkback() else {
        *drops += 1;
        return;
    };
    match tb.try_send(packet) {
        Ok(()) => {}
        Err(TalkbackError::Full) => {
            *drops += 1;
            if drops.is_power_of_two() {
                debug!(drops = *drops, "talkback buffer full; dropping audio");
            }
        }
        Err(TalkbackError::Closed) => *drops += 1, // Ring session renewing
    }
}

/// Reads the viewer's audio until the session ends.
pub(crate) async fn run(track: Arc<TrackRemote>, ctx: Intake) {
    debug!(codec = %track.codec().capability.mime_type, "viewer audio track");
    let mut durations = Durations::default();
    let mut pcmu: Option<OpusToPcmu> = None;
    let mut pcmu_failed = false;
    let (mut forwarded, mut drops) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            Some(chunk) = next_pcmu(&mut pcmu) => {
                let samples = u32::try_from(chunk.len()).unwrap_or(PCMU_PACKET as u32);
                forward(&ctx.stream, TalkbackPacket { codec: TalkbackCodec::Pcmu, data: chunk, samples }, &mut drops);
            }
            r = track.read_rtp() => {
                let pkt = match r {
                    Ok((pkt, _)) => pkt,
                    Err(e) => {
                        debug!(err = %e, "viewer audio track ended");
                        break;
                    }
                };
                ctx.activity.touch();
                let samples = durations.samples(pkt.header.timestamp, &pkt.payload);
                if pkt.payload.is_empty() || !ctx.floors.touch(&ctx.camera, &ctx.session) {
                    continue;
                }
                forwarded += 1;
                // The Ring side's codec: a session with Opus audio takes Opus talkback
                // (`LiveSource::has_audio` is true only for Opus); one with talkback but
                // no Opus audio negotiated PCMU.
                if ctx.stream.talkback().is_none() || ctx.stream.has_audio() {
                    let p = TalkbackPacket { codec: TalkbackCodec::Opus, data: pkt.payload, samples };
                    forward(&ctx.stream, p, &mut drops);
                    continue;
                }
                if pcmu.is_none() && !pcmu_failed {
                    match OpusToPcmu::new() {
                        Ok(t) => pcmu = Some(t),
                        Err(e) => {
                            warn!(err = %crate::base::error::chain(&e), "cannot transcode talkback to PCMU; dropping it");
                            pcmu_failed = true;
                        }
                    }
                }
                if let Some(t) = &pcmu
                    && let Err(e) = t.push(pkt.payload)
                {
                    warn!(err = %crate::base::error::chain(&e), "PCMU transcoder failed; dropping talkback");
                    if let Some(t) = pcmu.take() {
                        t.stop();
                    }
                    pcmu_failed = true;
                }
            }
        }
    }
    if let Some(t) = pcmu {
        t.stop();
    }
    debug!(forwarded, drops, "talkback intake ended");
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
