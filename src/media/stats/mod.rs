//! Live stream statistics: per camera ingress (bitrate, fps, key-frame interval,
//! session age and renewals), transport counters reported by the source (RTP
//! packets lost, NACKs and PLIs sent), and per viewer delivery (bitrate, drops),
//! with viewers counted by [`ViewerKind`].
//!
//! The hot path (one call per frame in the hub's publish and in each subscriber,
//! one per RTP packet in the source) only touches relaxed atomics: no lock, no
//! allocation. [`StreamStats::snapshot`] (REST, `/metrics`, MQTT) takes the short
//! locks and computes rates from counter deltas ([`Rate`]).
//!
//! The reported values (and [`ViewerKind`]) are in `report.rs`.
//!
//! This module is plain Rust: it knows nothing of RTP stacks, HTTP or MQTT.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;

mod report;

pub use report::{LiveStats, ViewerCounts, ViewerKind, ViewerStats};

use super::{Frame, MediaKind, VideoParams};

/// Shortest window a rate is computed over; snapshots taken closer together
/// reuse the last computed rate, so frequent callers do not see noise.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);

/// A rate (per second) from samples of a monotonic counter. Each update over at
/// least the window shifts the baseline; a shorter one reuses the last rate (or,
/// before any, the average since the baseline).
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    at: Instant,
    total: u64,
    per_s: Option<f64>,
}

impl Rate {
    /// Starts measuring at `at`, with the counter at `total`.
    pub fn new(at: Instant, total: u64) -> Rate {
        Rate {
            at,
            total,
            per_s: None,
        }
    }

    /// The rate of the counter, now at `total`, as of `now`.
    pub fn update(&mut self, now: Instant, total: u64, window: Duration) -> f64 {
        let elapsed = now.saturating_duration_since(self.at);
        let delta = total.saturating_sub(self.total) as f64;
        if elapsed >= window {
            let r = delta / elapsed.as_secs_f64();
            *self = Rate {
                at: now,
                total,
                per_s: Some(r),
            };
            return r;
        }
        match self.per_s {
            Some(r) => r,
            None if elapsed.is_zero() => 0.0,
            None => delta / elapsed.as_secs_f64(),
        }
    }
}

/// Counters a [`LiveSource`](super::LiveSource) keeps about its transport, one set
/// per session; see [`LiveSource::transport_stats`](super::LiveSource::transport_stats).
/// All updates are relaxed atomic adds.
#[derive(Debug, Default)]
pub struct TransportStats {
    packets: AtomicU64,
    lost: AtomicU64,
    nacks: AtomicU64,
    plis: AtomicU64,
}

/// Plain totals of a [`TransportStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransportTotals {
    /// RTP packets received.
    pub packets: u64,
    /// RTP packets never received (sequence-number gaps).
    pub lost: u64,
    /// NACK feedback messages sent.
    pub nacks: u64,
    /// PLI feedback messages sent.
    pub plis: u64,
}

impl TransportStats {
    /// Counts one received RTP packet and `lost` packets missing before it.
    pub fn add_packet(&self, lost: u64) {
        self.packets.fetch_add(1, Relaxed);
        if lost > 0 {
            self.lost.fetch_add(lost, Relaxed);
        }
    }

    /// Counts `n` NACK messages sent.
    pub fn add_nacks(&self, n: u64) {
        self.nacks.fetch_add(n, Relaxed);
    }

    /// Counts one PLI sent.
    pub fn add_pli(&self) {
        self.plis.fetch_add(1, Relaxed);
    }

    /// The totals so far.
    pub fn totals(&self) -> TransportTotals {
        TransportTotals {
            packets: self.packets.load(Relaxed),
            lost: self.lost.load(Relaxed),
            nacks: self.nacks.load(Relaxed),
            plis: self.plis.load(Relaxed),
        }
    }
}

impl std::ops::Add for TransportTotals {
    type Output = TransportTotals;
    fn add(self, o: TransportTotals) -> TransportTotals {
        TransportTotals {
            packets: self.packets + o.packets,
            lost: self.lost + o.lost,
            nacks: self.nacks + o.nacks,
            plis: self.plis + o.plis,
        }
    }
}

/// Counts RTP packets missing from one stream from its 16-bit sequence numbers:
/// a forward jump of less than half the space is loss; anything else (a duplicate,
/// a late or reordered packet, a restart) is not. Owned by the receiving task.
#[derive(Debug, Default)]
pub struct SeqGaps {
    last: Option<u16>,
}

impl SeqGaps {
    /// Packets missing between the previous packet and `seq`.
    pub fn push(&mut self, seq: u16) -> u64 {
        let Some(last) = self.last else {
            self.last = Some(seq);
            return 0;
        };
        let step = seq.wrapping_sub(last);
        if step == 0 || step >= 0x8000 {
            return 0; // duplicate, or older than the newest seen
        }
        self.last = Some(seq);
        u64::from(step - 1)
    }
}

/// One subscriber's delivery counters, shared between it and the stream's list.
#[derive(Debug)]
pub(crate) struct ViewerCounters {
    kind: ViewerKind,
    since: Instant,
    frames: AtomicU64,
    bytes: AtomicU64,
    drops: AtomicU64,
    rates: Mutex<(Rate, Rate)>,
}

impl ViewerCounters {
    /// Counts one delivered frame.
    pub(crate) fn delivered(&self, frame: &Frame) {
        self.frames.fetch_add(1, Relaxed);
        self.bytes.fetch_add(frame.data.len() as u64, Relaxed);
    }

    /// Counts `n` frames this viewer will never get.
    pub(crate) fn dropped(&self, n: u64) {
        self.drops.fetch_add(n, Relaxed);
    }

    fn snapshot(&self, now: Instant) -> ViewerStats {
        let frames = self.frames.load(Relaxed);
        let bytes = self.bytes.load(Relaxed);
        let mut r = lock(&self.rates);
        let fps = r.0.update(now, frames, RATE_WINDOW);
        let bps = r.1.update(now, bytes * 8, RATE_WINDOW);
        ViewerStats {
            kind: self.kind,
            age_s: now.saturating_duration_since(self.since).as_secs_f64(),
            bitrate_bps: bps.round(),
            fps: round2(fps),
            frames,
            bytes,
            drops: self.drops.load(Relaxed),
        }
    }
}

/// Ingress counters of a stream at one instant, for the rate meters.
#[derive(Clone, Copy, Default)]
struct IngressTotals {
    video_frames: u64,
    bits: u64,
}

/// The session part of the stats: changes a few times per session, not per frame.
#[derive(Default)]
struct SessionInfo {
    /// When the current session started (`None` when not streaming).
    started: Option<Instant>,
    /// The current session's transport counters, if its source keeps them.
    transport: Option<Arc<TransportStats>>,
    /// Totals of the sessions before the current one.
    carried: TransportTotals,
    /// Ingress rate meters (frames, bits), reset when streaming starts.
    rates: Option<(Rate, Rate)>,
}

/// Statistics of one camera's stream; lives in the stream's shared state.
#[derive(Default)]
pub(crate) struct StreamStats {
    video_frames: AtomicU64,
    video_bytes: AtomicU64,
    audio_frames: AtomicU64,
    audio_bytes: AtomicU64,
    keyframes: AtomicU64,
    /// Wall time of the first key frame since streaming started, µs after
    /// `epoch`, plus one (0: none yet).
    first_key_us: AtomicU64,
    /// The same for the latest key frame.
    last_key_us: AtomicU64,
    /// Key frames since `first_key_us` (inclusive).
    streaming_keyframes: AtomicU64,
    renewals: AtomicU64,
    sessions: AtomicU64,
    viewers: [AtomicUsize; 5],
    epoch: Epoch,
    session: Mutex<SessionInfo>,
    viewer_list: Mutex<Vec<Weak<ViewerCounters>>>,
}

/// When a [`StreamStats`] was created: the reference of its key-frame times, so
/// they fit in an `AtomicU64`.
struct Epoch(Instant);

impl Default for Epoch {
    fn default() -> Self {
        Epoch(Instant::now())
    }
}

impl StreamStats {
    /// Counts one published frame. Lock-free; called by the hub for every frame.
    pub(crate) fn on_frame(&self, frame: &Frame) {
        let len = frame.data.len() as u64;
        match frame.kind {
            MediaKind::Video => {
                self.video_frames.fetch_add(1, Relaxed);
                self.video_bytes.fetch_add(len, Relaxed);
            }
            MediaKind::Audio => {
                self.audio_frames.fetch_add(1, Relaxed);
                self.audio_bytes.fetch_add(len, Relaxed);
            }
        }
        if frame.is_video_keyframe() {
            self.keyframes.fetch_add(1, Relaxed);
            let now_us = frame
                .received_at
                .saturating_duration_since(self.epoch.0)
                .as_micros() as u64
                + 1;
            // Only the hub's supervisor publishes: no concurrent writer here.
            if self.first_key_us.load(Relaxed) == 0 {
                self.first_key_us.store(now_us, Relaxed);
            }
            self.last_key_us.store(now_us, Relaxed);
            self.streaming_keyframes.fetch_add(1, Relaxed);
        }
    }

    /// A new session became current: `age` is how long it already existed,
    /// `renewal` whether it replaced a running one, `transport` its counters.
    pub(crate) fn session_started(
        &self,
        age: Duration,
        renewal: bool,
        transport: Option<Arc<TransportStats>>,
    ) {
        self.sessions.fetch_add(1, Relaxed);
        if renewal {
            self.renewals.fetch_add(1, Relaxed);
        }
        let now = Instant::now();
        let mut s = lock(&self.session);
        if let Some(old) = s.transport.take() {
            s.carried = s.carried + old.totals();
        }
        s.transport = transport;
        s.started = Some(now.checked_sub(age).unwrap_or(now));
        if s.rates.is_none() {
            let t = self.ingress();
            s.rates = Some((Rate::new(now, t.video_frames), Rate::new(now, t.bits)));
        }
    }

    /// The current session ended (streaming stops or recovers).
    pub(crate) fn session_ended(&self, streaming: bool) {
        let mut s = lock(&self.session);
        if let Some(old) = s.transport.take() {
            s.carried = s.carried + old.totals();
        }
        s.started = None;
        if !streaming {
            s.rates = None;
            self.first_key_us.store(0, Relaxed);
            self.last_key_us.store(0, Relaxed);
            self.streaming_keyframes.store(0, Relaxed);
        }
    }

    /// Counts a viewer of `kind` (a lease) taken (`+1`) or released (`-1`).
    pub(crate) fn viewer(&self, kind: ViewerKind, taken: bool) {
        let c = &self.viewers[kind.index()];
        if taken {
            c.fetch_add(1, Relaxed);
        } else {
            let _ = c.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
        }
    }

    /// Registers a subscriber's counters (once per subscriber, not per frame).
    pub(crate) fn register(&self, kind: ViewerKind) -> Arc<ViewerCounters> {
        let now = Instant::now();
        let c = Arc::new(ViewerCounters {
            kind,
            since: now,
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            rates: Mutex::new((Rate::new(now, 0), Rate::new(now, 0))),
        });
        let mut list = lock(&self.viewer_list);
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&c));
        c
    }

    fn ingress(&self) -> IngressTotals {
        IngressTotals {
            video_frames: self.video_frames.load(Relaxed),
            bits: (self.video_bytes.load(Relaxed) + self.audio_bytes.load(Relaxed)) * 8,
        }
    }

    /// The statistics as of now; `params` are the stream's current video parameters.
    pub(crate) fn snapshot(&self, params: Option<&VideoParams>) -> LiveStats {
        let now = Instant::now();
        let t = self.ingress();
        let (streaming, session_age_s, fps, bps, transport) = {
            let mut s = lock(&self.session);
            let started = s.started.is_some();
            let (fps, bps) = match &mut s.rates {
                Some((f, b)) if started => (
                    f.update(now, t.video_frames, RATE_WINDOW),
                    b.update(now, t.bits, RATE_WINDOW),
                ),
                _ => (0.0, 0.0),
            };
            let transport =
                s.carried + s.transport.as_ref().map(|t| t.totals()).unwrap_or_default();
            let age = s
                .started
                .map(|t| now.saturating_duration_since(t).as_secs_f64());
            (s.started.is_some(), age, fps, bps, transport)
        };
        // The mean interval since streaming started: a key frame forced by a
        // request (a new viewer, loss) would make the last interval misleading.
        let keys = self.streaming_keyframes.load(Relaxed);
        let span_us = self
            .last_key_us
            .load(Relaxed)
            .saturating_sub(self.first_key_us.load(Relaxed));
        let key_us = if keys >= 2 { span_us / (keys - 1) } else { 0 };
        let mut viewers = ViewerCounts::default();
        for k in ViewerKind::ALL {
            viewers.set(k, self.viewers[k.index()].load(Relaxed));
        }
        let viewer_streams = {
            let mut list = lock(&self.viewer_list);
            list.retain(|w| w.strong_count() > 0);
            list.iter()
                .filter_map(Weak::upgrade)
                .map(|c| c.snapshot(now))
                .collect()
        };
        LiveStats {
            streaming,
            codec: params.map(|p| p.codec.as_str()),
            codec_string: params.map(VideoParams::rfc6381_codec),
            width: params.map(|p| p.width),
            height: params.map(|p| p.height),
            bitrate_bps: bps.round(),
            fps: round2(fps),
            keyframe_interval_s: (key_us > 0).then(|| round2(key_us as f64 / 1e6)),
            video_frames: t.video_frames,
            video_bytes: self.video_bytes.load(Relaxed),
            audio_bytes: self.audio_bytes.load(Relaxed),
            keyframes: self.keyframes.load(Relaxed),
            packets_received: transport.packets,
            packets_lost: transport.lost,
            nacks_sent: transport.nacks,
            plis_sent: transport.plis,
            session_age_s: session_age_s.map(round2),
            sessions: self.sessions.load(Relaxed),
            renewals: self.renewals.load(Relaxed),
            viewers,
            viewer_streams,
        }
    }
}

/// Locks `m`; a poisoned lock still holds consistent counters (only plain
/// stores happen under these locks).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
