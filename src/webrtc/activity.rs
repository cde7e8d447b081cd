//! [`Activity`]: when a WHEP viewer was last heard from. The session supervisor
//! reads it for the idle timeout; the RTCP reader (`outbound.rs`) and the talk
//! intake (`talk.rs`) touch it. Lock-free (one atomic), callable from any task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When the viewer was last heard from (RTCP or RTP), for the idle timeout.
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    /// A session that starts now and has not heard from the viewer yet.
    pub(crate) fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Marks the viewer as alive now.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time since the viewer was last heard from (or since the session started).
    pub(crate) fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}
