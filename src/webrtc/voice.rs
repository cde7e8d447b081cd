//! Voice activity on a viewer's uplink audio, for the voice-activated talk floor
//! (`webrtc.talk_floor = "voice"`): a WHEP player that never calls `…/talk` gets
//! the floor while it speaks.
//!
//! - [`VoiceMeter`] decodes the viewer's Opus to 8 kHz mono
//!   ([`crate::codec::opus::OpusDecoder`], GStreamer) and yields one RMS level in
//!   dBFS per 20 ms ([`LevelMeter`]). Its pipeline is started and stopped on the
//!   blocking pool, never on a tokio worker; the decoder callback only `try_send`s.
//! - [`Detector`] turns levels into speech: speech starts once the level stays at
//!   or above [`VoiceOptions::on_dbfs`] for [`VoiceOptions::attack`], continues
//!   while it stays at or above the lower [`VoiceOptions::off_dbfs`] (hysteresis),
//!   and ends [`VoiceOptions::hang`] after the last such level (also when the
//!   viewer stops sending altogether, e.g. Opus DTX).
//!
//! What the floor does with it is in `talk.rs`; this file holds no floor state.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::codec::opus::{OpusDecoder, OpusError};

/// How a viewer gets a camera's talk floor (`webrtc.talk_floor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TalkFloor {
    /// Speech on the viewer's uplink audio takes the floor, silence releases it;
    /// `POST …/talk` works too and wins. The default.
    #[default]
    Voice,
    /// Only `POST …/talk` takes the floor.
    Explicit,
}

/// Thresholds of the voice detector. Levels are the RMS of 20 ms of decoded audio
/// in dBFS (0 = full scale; a 0.5-amplitude sine is about -9 dBFS, a quiet room
/// through a microphone about -60 to -50, speech about -35 to -15).
#[derive(Clone, Debug, PartialEq)]
pub struct VoiceOptions {
    /// Speech starts at or above this level. Default -40 dBFS.
    pub on_dbfs: f32,
    /// Speech continues while at or above this level (below `on_dbfs`: hysteresis).
    /// Default -50 dBFS.
    pub off_dbfs: f32,
    /// The level must stay at or above `on_dbfs` this long to count as speech (a
    /// click does not take the floor). Default 60 ms.
    pub attack: Duration,
    /// Speech ends this long after the last level at or above `off_dbfs`. Default 1 s.
    pub hang: Duration,
}

impl Default for VoiceOptions {
    fn default() -> Self {
        VoiceOptions {
            on_dbfs: -40.0,
            off_dbfs: -50.0,
            attack: Duration::from_millis(60),
            hang: Duration::from_secs(1),
        }
    }
}

/// Sample rate the meter decodes to: plenty for speech energy, cheap to decode.
const METER_RATE: u32 = 8_000;
/// Samples per level: 20 ms at [`METER_RATE`].
const WINDOW: usize = (METER_RATE / 50) as usize;
/// The level of digital silence.
const FLOOR_DBFS: f32 = -100.0;

/// RMS level in dBFS of samples whose squares (normalised to full scale) sum to
/// `sum_sq`; [`FLOOR_DBFS`] for silence.
fn dbfs(sum_sq: f64, n: usize) -> f32 {
    if n == 0 || sum_sq <= 0.0 {
        return FLOOR_DBFS;
    }
    let db = 10.0 * (sum_sq / n as f64).log10();
    (db as f32).max(FLOOR_DBFS)
}

/// Cuts a PCM stream into fixed windows and gives each window's RMS level.
#[derive(Debug)]
pub(crate) struct LevelMeter {
    window: usize,
    sum_sq: f64,
    n: usize,
}

impl LevelMeter {
    /// A meter with `window` samples per level.
    pub fn new(window: usize) -> Self {
        LevelMeter {
            window: window.max(1),
            sum_sq: 0.0,
            n: 0,
        }
    }

    /// Adds samples; calls `level` with the dBFS of each window they complete.
    pub fn push(&mut self, pcm: &[i16], mut level: impl FnMut(f32)) {
        for &s in pcm {
            let x = f64::from(s) / 32_768.0;
            self.sum_sq += x * x;
            self.n += 1;
            if self.n == self.window {
                level(dbfs(self.sum_sq, self.n));
                self.sum_sq = 0.0;
                self.n = 0;
            }
        }
    }
}

/// Speech detection with hysteresis and a hang time. Pure: time comes in.
#[derive(Debug)]
pub(crate) struct Detector {
    opts: VoiceOptions,
    /// Since when the level has stayed at or above `on_dbfs` (not speaking yet).
    loud_since: Option<Instant>,
    /// Speaking: when the level was last at or above `off_dbfs`.
    speaking: Option<Instant>,
}

impl Detector {
    /// A detector in silence.
    pub fn new(opts: VoiceOptions) -> Self {
        Detector {
            opts,
            loud_since: None,
            speaking: None,
        }
    }

    /// Feeds one level measured at `now`. Returns true when it starts speech.
    pub fn level(&mut self, dbfs: f32, now: Instant) -> bool {
        if let Some(last) = self.speaking.as_mut() {
            if dbfs >= self.opts.off_dbfs {
                *last = now;
            }
            return false;
        }
        if dbfs < self.opts.on_dbfs {
            self.loud_since = None;
            return false;
        }
        let since = *self.loud_since.get_or_insert(now);
        if now.saturating_duration_since(since) + Duration::from_millis(20) >= self.opts.attack {
            self.loud_since = None;
            self.speaking = Some(now);
            return true;
        }
        false
    }

    /// Whether speech is going on (including the hang time after it).
    pub fn speaking(&self) -> bool {
        self.speaking.is_some()
    }

    /// Whether `dbfs` is loud enough to start speech (the floor is only asked for
    /// on such levels, not during the hang time).
    pub fn is_loud(&self, dbfs: f32) -> bool {
        dbfs >= self.opts.on_dbfs
    }

    /// When speech ends unless louder audio comes first.
    pub fn hang_deadline(&self) -> Option<Instant> {
        self.speaking.map(|last| last + self.opts.hang)
    }

    /// Ends speech if its hang time is over at `now`. Returns true when it did.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self.hang_deadline().is_some_and(|d| now >= d) {
            self.speaking = None;
            return true;
        }
        false
    }
}

/// A running Opus decoder that measures the level of a viewer's uplink audio.
/// Stop it with [`VoiceMeter::stop`].
pub(crate) struct VoiceMeter {
    decoder: OpusDecoder,
    levels: mpsc::Receiver<f32>,
}

impl VoiceMeter {
    /// Builds and starts the decoder on the blocking pool.
    pub async fn start() -> Result<VoiceMeter, OpusError> {
        let (tx, levels) = mpsc::channel(64);
        let mut meter = LevelMeter::new(WINDOW);
        let decoder = OpusDecoder::start_blocking(METER_RATE, move |pcm| {
            // A full queue drops levels rather than stalling GStreamer.
            meter.push(pcm, |db| {
                let _ = tx.try_send(db);
            });
        })
        .await?;
        Ok(VoiceMeter { decoder, levels })
    }

    /// Feeds one Opus packet. Never blocks.
    pub fn push(&self, opus: &[u8]) -> Result<(), OpusError> {
        self.decoder.push(opus)
    }

    /// The next 20 ms level in dBFS. Cancel-safe.
    pub async fn recv(&mut self) -> Option<f32> {
        self.levels.recv().await
    }

    /// Stops the pipeline on the blocking pool.
    pub async fn stop(self) {
        self.decoder.stop_blocking().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn levels_are_rms_dbfs_per_window() {
        let mut m = LevelMeter::new(160);
        let mut got = Vec::new();
        // Full-scale square wave: 0 dBFS; half scale: about -6 dBFS; silence.
        let square: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { i16::MAX } else { -i16::MAX })
            .collect();
        let half: Vec<i16> = square.iter().map(|s| s / 2).collect();
        m.push(&square[..100], |l| got.push(l));
        assert!(got.is_empty(), "no level before a full window");
        m.push(&square[100..], |l| got.push(l));
        m.push(&half, |l| got.push(l));
        m.push(&[0; 200], |l| got.push(l));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].abs() < 0.01, "{got:?}");
        assert!((got[1] + 6.02).abs() < 0.05, "{got:?}");
        assert_eq!(got[2], FLOOR_DBFS);
    }

    #[test]
    fn speech_needs_attack_and_ends_after_the_hang_time() {
        let t0 = Instant::now();
        let at = |n: u64| t0 + ms(n);
        let mut d = Detector::new(VoiceOptions::default());
        // One loud 20 ms click, then quiet: no speech.
        assert!(!d.level(-20.0, at(0)));
        assert!(!d.level(-70.0, at(20)));
        assert!(!d.speaking());
        // Three loud levels in a row (60 ms): speech.
        assert!(!d.level(-20.0, at(40)));
        assert!(!d.level(-20.0, at(60)));
        assert!(d.level(-20.0, at(80)));
        assert!(d.speaking());
        assert_eq!(d.hang_deadline(), Some(at(1080)));
        // Hysteresis: -45 dBFS is below "on" but above "off": still speech.
        assert!(!d.level(-45.0, at(500)));
        assert_eq!(d.hang_deadline(), Some(at(1500)));
        // Quiet levels do not extend it; the hang time ends it.
        assert!(!d.level(-70.0, at(600)));
        assert!(!d.expire(at(1499)));
        assert!(d.expire(at(1500)));
        assert!(!d.speaking());
        assert_eq!(d.hang_deadline(), None);
        assert!(!d.expire(at(5000)));
        // Below "on" never starts speech.
        for i in 0..10 {
            assert!(!d.level(-45.0, at(2000 + i * 20)));
        }
        assert!(d.is_loud(-40.0) && !d.is_loud(-45.0));
    }
}
