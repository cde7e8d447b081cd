//! Talkback measurement for the simulated camera: counts the RTP packets the
//! client sends on the audio track and measures their loudness by decoding the
//! Opus payloads ([`crate::codec::opus::OpusDecoder`]): overall RMS, and in
//! 20 ms windows how long the speaker played sound above [`LOUD_RMS`] and the
//! span from the first such window to the last.
//!
//! The decoder runs on GStreamer's streaming thread; its callback only updates
//! the shared counters (no tokio, no panics).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::codec::opus::OpusDecoder;

/// A 20 ms window at or above this RMS (-40 dBFS) counts as sound.
pub(crate) const LOUD_RMS: f64 = 0.01;
/// Samples per measuring window: 20 ms at 48 kHz.
const WINDOW: u64 = 960;

/// Talkback counters of one camera.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TalkStats {
    /// RTP packets received.
    pub packets: u64,
    /// Sum of squared decoded samples (normalised to ±1).
    pub sum_sq: f64,
    /// Decoded samples (48 kHz).
    pub samples: u64,
    /// Windows of [`WINDOW`] samples at or above [`LOUD_RMS`].
    pub loud_windows: u64,
    /// Sample position (in decoded audio) where the first loud window starts.
    pub first_loud: Option<u64>,
    /// Sample position where the last loud window ends.
    pub last_loud: Option<u64>,
    /// The window being measured: sum of squares and samples.
    window_sq: f64,
    window_n: u64,
}

impl TalkStats {
    /// Adds decoded PCM (48 kHz mono) played by the speaker.
    fn add(&mut self, pcm: &[i16]) {
        for &v in pcm {
            let x = (f64::from(v) / 32768.0).powi(2);
            self.sum_sq += x;
            self.samples += 1;
            self.window_sq += x;
            self.window_n += 1;
            if self.window_n == WINDOW {
                if (self.window_sq / WINDOW as f64).sqrt() >= LOUD_RMS {
                    self.loud_windows += 1;
                    self.first_loud.get_or_insert(self.samples - WINDOW);
                    self.last_loud = Some(self.samples);
                }
                self.window_sq = 0.0;
                self.window_n = 0;
            }
        }
    }

    /// Decoded audio played, ms.
    pub fn audio_ms(&self) -> u64 {
        self.samples / 48
    }

    /// Audio at or above [`LOUD_RMS`], ms (20 ms windows).
    pub fn loud_ms(&self) -> u64 {
        self.loud_windows * 20
    }

    /// From the start of the first loud window to the end of the last, ms.
    pub fn loud_span_ms(&self) -> u64 {
        match (self.first_loud, self.last_loud) {
            (Some(a), Some(b)) => (b - a) / 48,
            _ => 0,
        }
    }

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
            let meter = move |pcm: &[i16]| with_stats(&map, camera, |s| s.add(pcm));
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
                if s.samples < 48 * 380 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
                assert!((360..=400).contains(&s.loud_ms()), "{}", s.loud_ms());
                assert!(
                    (360..=400).contains(&s.loud_span_ms()),
                    "{}",
                    s.loud_span_ms()
                );
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no decoded audio");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        meter.stop().await;
    }

    #[test]
    fn loud_windows_and_their_span() {
        let mut s = TalkStats::default();
        s.add(&[0; 960 * 5]); // 100 ms of silence
        s.add(&vec![8000; 960 * 10]); // 200 ms of sound
        s.add(&[0; 960 * 3]);
        s.add(&vec![-8000; 960 * 2]); // 40 ms more
        s.add(&[0; 960 * 4]);
        assert_eq!(s.audio_ms(), 480);
        assert_eq!(s.loud_ms(), 240);
        assert_eq!(s.loud_span_ms(), 300);
    }
}
