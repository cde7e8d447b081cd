//! What one viewer saw: time to its first key frame, and — while the
//! measurement window is open — per-frame forwarding latency from the
//! simulator's SEI stamp, frame-counter gaps (lost frames) and late frames.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sim::live::stamp::Stamp;

/// How a viewer is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewerKind {
    /// Retina over RTSP (interleaved TCP).
    Rtsp,
    /// webrtc-rs over WHEP.
    Webrtc,
}

impl ViewerKind {
    /// Short name for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewerKind::Rtsp => "rtsp",
            ViewerKind::Webrtc => "webrtc",
        }
    }
}

/// The measurement window, shared by all viewers of a run.
#[derive(Clone, Debug, Default)]
pub struct Window(Arc<AtomicBool>);

impl Window {
    /// Opens (true) or closes (false) the window.
    pub fn set(&self, open: bool) {
        self.0.store(open, Ordering::SeqCst);
    }

    /// Whether frames count now.
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// One viewer's record. Updated by its receive task, read at the end.
#[derive(Debug)]
pub struct ViewerLog {
    /// Connection kind.
    pub kind: ViewerKind,
    /// Camera slug.
    pub camera: String,
    /// When the viewer sent its DESCRIBE / WHEP offer.
    pub started: Instant,
    /// Time from `started` to the first complete key frame access unit.
    pub first_keyframe: Option<Duration>,
    /// Error that ended the viewer early, if any.
    pub error: Option<String>,
    /// The video encoding the viewer negotiated (SDP encoding name, lowercase:
    /// `h264`, `h265`), once known.
    pub codec: Option<String>,
    /// Video frames received in the window.
    pub frames: u64,
    /// Their bytes (access units as received).
    pub bytes: u64,
    /// Of those, frames carrying our stamp.
    pub stamped: u64,
    /// Frames missing in the window (gaps in the stamp counter).
    pub lost: u64,
    /// Frames in the window later than the late threshold.
    pub late: u64,
    /// Counter restarts (a new Ring session, e.g. after recovery).
    pub resets: u64,
    /// Forwarding latency of each stamped frame in the window, microseconds.
    pub latencies_us: Vec<u32>,
    last_counter: Option<u64>,
    late_after: Duration,
    window: Window,
}

/// Shared handle to a [`ViewerLog`].
pub type SharedLog = Arc<Mutex<ViewerLog>>;

impl ViewerLog {
    /// A new log; `started` is now.
    pub fn new(kind: ViewerKind, camera: &str, window: Window, late_after: Duration) -> SharedLog {
        Arc::new(Mutex::new(ViewerLog {
            kind,
            camera: camera.to_string(),
            started: Instant::now(),
            first_keyframe: None,
            error: None,
            codec: None,
            frames: 0,
            bytes: 0,
            stamped: 0,
            lost: 0,
            late: 0,
            resets: 0,
            latencies_us: Vec::with_capacity(1024),
            last_counter: None,
            late_after,
            window,
        }))
    }

    /// Records one received video access unit of `len` bytes.
    pub fn on_frame(&mut self, keyframe: bool, len: usize, stamp: Option<Stamp>, recv_ns: u64) {
        if keyframe && self.first_keyframe.is_none() {
            self.first_keyframe = Some(self.started.elapsed());
        }
        if self.first_keyframe.is_none() {
            return; // not decodable yet
        }
        let counting = self.window.is_open();
        if counting {
            self.frames += 1;
            self.bytes += len as u64;
        }
        let Some(s) = stamp else {
            return;
        };
        if let Some(last) = self.last_counter {
            if s.counter > last + 1 {
                if counting {
                    self.lost += s.counter - last - 1;
                }
            } else if s.counter <= last && counting {
                self.resets += 1;
            }
        }
        self.last_counter = Some(s.counter);
        if counting {
            self.stamped += 1;
            let lat = Duration::from_nanos(recv_ns.saturating_sub(s.sent_ns));
            if lat > self.late_after {
                self.late += 1;
            }
            self.latencies_us
                .push(u32::try_from(lat.as_micros()).unwrap_or(u32::MAX));
        }
    }

    /// Records the error that ended the viewer.
    pub fn on_error(&mut self, e: &anyhow::Error) {
        if self.error.is_none() {
            self.error = Some(format!("{e:#}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gaps_late_frames_and_latency_only_in_the_window() {
        let w = Window::default();
        let log = ViewerLog::new(
            ViewerKind::Rtsp,
            "cam",
            w.clone(),
            Duration::from_millis(100),
        );
        let mut l = log.lock().unwrap();
        let st = |counter, sent_ns| Some(Stamp { counter, sent_ns });
        l.on_frame(false, 10, st(1, 0), 1); // before the first key frame: ignored
        l.on_frame(true, 10, st(2, 0), 1_000_000);
        assert!(l.first_keyframe.is_some());
        l.on_frame(false, 10, st(5, 0), 1_000_000); // gap outside the window
        assert_eq!((l.frames, l.lost), (0, 0));
        w.set(true);
        l.on_frame(false, 10, st(6, 10_000_000), 12_000_000); // 2 ms
        l.on_frame(false, 10, st(9, 0), 200_000_000); // 2 lost, 200 ms late
        l.on_frame(false, 10, None, 0);
        l.on_frame(true, 10, st(0, 0), 0); // new session
        assert_eq!(
            (l.frames, l.stamped, l.lost, l.late, l.resets),
            (4, 3, 2, 1, 1)
        );
        assert_eq!(l.latencies_us[..2], [2000, 200_000]);
    }
}
