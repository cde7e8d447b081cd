//! The seeded event history: [`EventRec`] (a motion, ding or live view and its
//! recording), ding-id generation and the deterministic seed of every camera's
//! past events.

use super::cameras::SimCamera;

/// Base of every ding id: ids are `BASE + created_ms * 1000 + seq % 1000`, so they
/// have 19 digits, exceed 2^53 (a client going through `f64` loses digits), stay
/// below `i64::MAX`, and grow with creation time.
const DING_ID_BASE: u64 = 7_100_000_000_000_000_000;

/// Kind of a history event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Motion detected.
    Motion,
    /// Doorbell pressed.
    Ding,
    /// Live view started by a user.
    OnDemand,
}

impl EventKind {
    /// Ring's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Motion => "motion",
            EventKind::Ding => "ding",
            EventKind::OnDemand => "on_demand",
        }
    }

    /// Parses Ring's name.
    pub fn parse(s: &str) -> Option<EventKind> {
        match s {
            "motion" => Some(EventKind::Motion),
            "ding" => Some(EventKind::Ding),
            "on_demand" => Some(EventKind::OnDemand),
            _ => None,
        }
    }
}

/// Whether and when an event's recording is playable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecState {
    /// No recording (no Ring Protect, or the camera did not record).
    None,
    /// Recorded, but stuck in processing (`recording_status: "pending"`).
    Pending,
    /// Recorded and playable from this wall-clock time (ms since the epoch).
    ReadyAt(i64),
}

/// One recorded (or not) event of a camera's history.
#[derive(Clone, Debug)]
pub struct EventRec {
    /// Ding id (64-bit, 19 digits).
    pub id: u64,
    /// Camera numeric id.
    pub camera_id: u64,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// Kind.
    pub kind: EventKind,
    /// Computer vision saw a person.
    pub person_detected: bool,
    /// Recording state.
    pub rec: RecState,
    /// Answered (dings) / completed.
    pub answered: bool,
    /// Starred by the user.
    pub favorite: bool,
    /// Recording length in seconds.
    pub duration_s: u32,
    /// Length of the served MP4 in seconds, when the event asked for one
    /// (`clip_seconds`); `None`: the default generated length.
    pub clip_s: Option<u32>,
    /// Snapshot uuid (as in pushes, without the `:...` suffix).
    pub snapshot_uuid: String,
}

impl EventRec {
    /// Ring's `recording_status` now, `None` when not recorded.
    pub fn recording_status(&self, now_ms: i64) -> Option<&'static str> {
        match self.rec {
            RecState::None => None,
            RecState::Pending => Some("pending"),
            RecState::ReadyAt(t) if now_ms >= t => Some("ready"),
            RecState::ReadyAt(_) => Some("pending"),
        }
    }

    /// Whether the recording can be played now.
    pub fn playable(&self, now_ms: i64) -> bool {
        self.recording_status(now_ms) == Some("ready")
    }

    /// Ring's event `state`: `completed` for answered dings and live views,
    /// `timed_out` otherwise (a missed ding).
    pub fn state(&self) -> &'static str {
        if self.answered || self.kind == EventKind::OnDemand {
            "completed"
        } else {
            "timed_out"
        }
    }
}

/// Makes a ding id from a creation time and a sequence number.
pub fn ding_id(created_ms: i64, seq: u64) -> u64 {
    DING_ID_BASE + (created_ms.max(0) as u64) * 1000 + seq % 1000
}

/// Seeds `per_camera` events for `cam` over the last days, deterministically.
///
/// Newest first by index: j = 1 is stuck `pending`, every j % 10 == 9 is not
/// recorded; cameras without Ring Protect record nothing. Doorbells get a `ding`
/// every fifth event, every camera an `on_demand` when j % 7 == 3; every third
/// motion has `person_detected`.
pub fn seed_events(
    cam: &SimCamera,
    per_camera: usize,
    now_ms: i64,
    seq: &mut u64,
) -> Vec<EventRec> {
    let ci = (cam.id % 100) as i64;
    // The offline camera's history stops a day ago.
    let start_ms = if cam.seeded_online {
        now_ms
    } else {
        now_ms - 86_400_000
    };
    (0..per_camera)
        .map(|j| {
            let jj = j as i64;
            let age_ms = (jj * 4 * 3600 + ci * 17 * 60 + (jj * 37 % 60) * 60 + 300) * 1000;
            let created_ms = start_ms - age_ms;
            let kind = if cam.doorbell() && j % 5 == 0 {
                EventKind::Ding
            } else if j % 7 == 3 {
                EventKind::OnDemand
            } else {
                EventKind::Motion
            };
            let rec = if !cam.show_recordings || j % 10 == 9 {
                RecState::None
            } else if j == 1 {
                RecState::Pending
            } else {
                RecState::ReadyAt(created_ms)
            };
            *seq += 1;
            EventRec {
                id: ding_id(created_ms, *seq),
                camera_id: cam.id,
                created_ms,
                kind,
                person_detected: kind == EventKind::Motion && j % 3 == 0,
                rec,
                answered: kind == EventKind::Ding && j % 2 == 1,
                favorite: j % 11 == 4,
                duration_s: 10 + (j as u32 * 7) % 50,
                clip_s: None,
                snapshot_uuid: snapshot_uuid(cam.id, created_ms),
            }
        })
        .collect()
}

/// A deterministic, UUID-shaped snapshot id for an event.
pub fn snapshot_uuid(camera_id: u64, created_ms: i64) -> String {
    let ns = uuid::Uuid::from_u128(0x5d1a_2f3e_0000_4c6b_9a51_0000_0000_0000);
    uuid::Uuid::new_v5(&ns, format!("{camera_id}:{created_ms}").as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::data::cameras::seed_cameras;

    #[test]
    fn ding_ids_are_19_digits_and_beyond_f64() {
        let id = ding_id(1_760_000_000_000, 999);
        assert_eq!(id.to_string().len(), 19);
        assert!(id > (1u64 << 53) && id < i64::MAX as u64);
        assert!(ding_id(1_760_000_000_001, 0) > id);
    }

    #[test]
    fn seeded_history_is_newest_first() {
        let cams = seed_cameras(0);
        let mut seq = 0;
        let ev = seed_events(&cams[0], 30, 1_760_000_000_000, &mut seq);
        assert_eq!(ev.len(), 30);
        assert!(ev.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    }
}
