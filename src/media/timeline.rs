//! Output timestamps that never go backwards: each live session's source PTS is
//! rebased onto one continuous per-camera timeline, per media kind.
//!
//! For a session's first frame of a kind, `out = last_out + max(interval, elapsed)`,
//! where `elapsed` is the wall time since the last output frame of that kind (so a
//! recovery gap stays a gap, and a seamless renewal continues one frame later); later
//! frames keep the session's own spacing: `out = out_first + (pts − pts_first)`.

use tokio::time::Instant;

use super::MediaKind;

/// Default video frame interval at 90 kHz when the source gives no duration (30 fps).
const DEFAULT_VIDEO_INTERVAL: u32 = 3_000;
/// Default audio packet interval at 48 kHz when the source gives no duration (20 ms).
const DEFAULT_AUDIO_INTERVAL: u32 = 960;

#[derive(Clone, Copy, Debug)]
struct Last {
    pts: u64,
    at: Instant,
    interval: u32,
}

/// The per-camera output timeline; outlives sessions.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    last: [Option<Last>; 2],
}

/// Per-session mapping from source PTS to output PTS, one per kind.
#[derive(Debug, Default)]
pub(crate) struct SessionBase {
    base: [Option<(u64, u64)>; 2],
}

impl Timeline {
    /// Maps `src_pts` of a frame from the session described by `session` onto the
    /// timeline and records it as the latest output of its kind.
    pub(crate) fn map(
        &mut self,
        session: &mut SessionBase,
        kind: MediaKind,
        src_pts: u64,
        duration: u32,
        now: Instant,
    ) -> u64 {
        let i = kind.index();
        let last = self.last[i];
        let out = match session.base[i] {
            Some((src_first, out_first)) => {
                out_first.saturating_add(src_pts.saturating_sub(src_first))
            }
            None => {
                let out_first = match last {
                    None => 0,
                    Some(l) => {
                        let elapsed = now.saturating_duration_since(l.at);
                        let ticks =
                            elapsed.as_nanos() * u128::from(kind.clock_rate()) / 1_000_000_000;
                        let ticks = u64::try_from(ticks).unwrap_or(u64::MAX);
                        l.pts.saturating_add(ticks.max(u64::from(l.interval)))
                    }
                };
                session.base[i] = Some((src_pts, out_first));
                out_first
            }
        };
        let out = match last {
            Some(l) if out <= l.pts => l.pts + 1,
            _ => out,
        };
        let interval = if duration > 0 {
            duration
        } else {
            match last {
                Some(l) if out > l.pts => u32::try_from(out - l.pts).unwrap_or(l.interval),
                Some(l) => l.interval,
                None => match kind {
                    MediaKind::Video => DEFAULT_VIDEO_INTERVAL,
                    MediaKind::Audio => DEFAULT_AUDIO_INTERVAL,
                },
            }
        };
        self.last[i] = Some(Last {
            pts: out,
            at: now,
            interval,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn continues_across_sessions() {
        let mut t = Timeline::default();
        let mut a = SessionBase::default();
        let now = Instant::now();
        assert_eq!(t.map(&mut a, MediaKind::Video, 1_000_000, 3000, now), 0);
        assert_eq!(t.map(&mut a, MediaKind::Video, 1_003_000, 3000, now), 3000);
        // New session with an unrelated base, arriving at once: one interval later.
        let mut b = SessionBase::default();
        assert_eq!(t.map(&mut b, MediaKind::Video, 7, 3000, now), 6000);
        assert_eq!(t.map(&mut b, MediaKind::Video, 3007, 3000, now), 9000);
        // A recovery after a 2 s gap keeps the gap.
        let mut c = SessionBase::default();
        let later = now + Duration::from_secs(2);
        assert_eq!(
            t.map(&mut c, MediaKind::Video, 0, 3000, later),
            9000 + 180_000
        );
        // Audio has its own clock and its own continuity.
        assert_eq!(t.map(&mut c, MediaKind::Audio, 55, 960, later), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn never_goes_backwards() {
        let mut t = Timeline::default();
        let mut a = SessionBase::default();
        let now = Instant::now();
        assert_eq!(t.map(&mut a, MediaKind::Video, 10_000, 0, now), 0);
        assert_eq!(t.map(&mut a, MediaKind::Video, 5_000, 0, now), 1);
        assert_eq!(t.map(&mut a, MediaKind::Video, 13_000, 0, now), 3000);
    }
}
