//! Talkback measurement for the simulated camera: counts the RTP packets the
//! client sends on the audio track and measures their loudness by decoding the
//! Opus payloads ([`crate::codec::opus::OpusDecoder`]).
//!
//! The decoder runs on GStreamer's streaming thread; its callback only updates
//! the shared counters (no tokio, no panics).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::codec::opus::OpusDecoder;

/// Talkback counters of one camera.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TalkStats {
    /// RTP packets received.
    pub packets: u64,
    /// Sum of squared decoded samples (normalised to ±1).
    pub sum_sq: f64,
    /// Decoded samples.
    pub samples: u64,
}

impl TalkStats {
    /// RMS of all decoded talkback audio, 0 (silence) ..= 1 (full scale).
    pub fn energy(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            (self.sum_sq / self.samples as f64).sqrt()
        }
    }
}

/// Per-camera talkback counters, shared by all sessions of a simulator.
pub(crate) type TalkMap = Arc<Mutex<HashMap<u64, TalkStats>>>;

fn with_stats(map: &TalkMap, camera: u64, f: impl FnOnce(&mut TalkStats)) {
    if let Ok(mut m) = map.lock() {
        f(m.entry(camera).or_default());
    }
}

/// Counts packets and decodes Opus for one session.
pub(crate) struct TalkMeter {
    camera: u64,
    map: TalkMap,
    decoder: Option<OpusDecoder>,
    decoder_failed: bool,
}

impl TalkMeter {
    pub fn new(camera: u64, map: TalkMap) -> Self {
        TalkMeter {
            camera,
            map,
            decoder: None,
            decoder_failed: false,
        }
    }

    /// Accounts one received RTP payload (an Opus packet). Only audio that
    /// reaches a speaker that is on is decoded and measured, like a real camera
    /// plays talkback only after `camera_options {stealth_mode:false}`.
    ///
    /// Async because the first measured packet starts the decoder, a GStreamer
    /// state change that runs on the blocking pool, not on this worker.
    pub async fn packet(&mut self, payload: &[u8], speaker_on: bool) {
        with_stats(&self.map, self.camera, |s| s.packets += 1);
        if !speaker_on || payload.is_empty() || self.decoder_failed {
            return;
        }
        if self.decoder.is_none() {
            let (camera, map) = (self.camera, Arc::clone(&self.map));
            let meter = move |pcm: &[i16]| {
                let sum: f64 = pcm.iter().map(|&v| (f64::from(v) / 32768.0).powi(2)).sum();
                with_stats(&map, camera, |s| {
                    s.sum_sq += sum;
                    s.samples += pcm.len() as u64;
                });
            };
            match OpusDecoder::start_blocking(48_000, meter).await {
                Ok(d) => self.decoder = Some(d),
                Err(e) => {
                    tracing::warn!(camera = self.camera, err = %format!("{e:#}"), "talkback decoder unavailable; counting packets only");
                    self.decoder_failed = true;
                    return;
                }
            }
        }
        if let Some(d) = &self.decoder
            && d.push(payload).is_err()
        {
            self.decoder_failed = true;
        }
    }

    /// Stops the decoder (explicit, not in `Drop`), on the blocking pool.
    pub async fn stop(&mut self) {
        if let Some(d) = self.decoder.take() {
            d.stop_blocking().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decodes_a_sine_to_nonzero_energy() {
        let packets =
            crate::codec::encode::opus_sine(std::time::Duration::from_millis(400), 440).unwrap();
        let map: TalkMap = Default::default();
        let mut meter = TalkMeter::new(9, Arc::clone(&map));
        meter.packet(&packets[0], false).await; // speaker off: counted, not measured
        for p in &packets[1..] {
            meter.packet(p, true).await;
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let s = map.lock().unwrap().get(&9).copied().unwrap_or_default();
            if s.samples > 0 {
                assert_eq!(s.packets, packets.len() as u64);
                // a 0.5-amplitude sine has RMS ≈ 0.35
                assert!(s.energy() > 0.1 && s.energy() < 0.6, "{}", s.energy());
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no decoded audio");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        meter.stop().await;
    }
}
