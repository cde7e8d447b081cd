//! Learned session caps: Ring's live-session cap is not a constant (reports range
//! from 30 s to about 10 min), so when a session ends normally well before the cap
//! its source declared, the supervisor remembers the observed length per camera
//! and renews ahead of it from then on. The first early end costs a gap; later
//! ones do not.
//!
//! The map is kept in memory and, when a file is configured
//! ([`HubOptions::cap_file`](super::HubOptions::cap_file)), persisted as JSON
//! `{"<camera id>": {"cap_ms": N}}` (written to a temporary file, then renamed),
//! so a restart does not pay the first gap again. This module only reads and
//! writes that file; it never touches media.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stream::lock;

use crate::base::CameraId;

/// Sessions shorter than this are never learned as a cap (a camera that hangs up
/// after a few seconds is failing, not capping).
pub const MIN_LEARNED_CAP: Duration = Duration::from_secs(5);

/// A session must end at least this much before the declared cap to count as
/// an early end.
const EARLY_MARGIN: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Entry {
    cap_ms: u64,
}

/// Observed session caps per camera id.
#[derive(Debug, Default)]
pub struct LearnedCaps {
    file: Option<PathBuf>,
    caps: Mutex<BTreeMap<CameraId, Entry>>,
}

impl LearnedCaps {
    /// Loads the caps persisted in `file` (missing or unreadable: none are
    /// known, with a warning for a bad file). `None`: memory only.
    pub fn load(file: Option<PathBuf>) -> LearnedCaps {
        let caps = file.as_deref().map(read_file).unwrap_or_default();
        LearnedCaps {
            file,
            caps: Mutex::new(caps),
        }
    }

    /// The learned cap of `camera`, if any.
    pub fn get(&self, camera: CameraId) -> Option<Duration> {
        lock(&self.caps)
            .get(&camera)
            .map(|e| Duration::from_millis(e.cap_ms))
    }

    /// A session of `camera` with declared cap `declared` (`None`: unbounded)
    /// ended normally after `observed`. Learns `observed` when it is an early
    /// end and shorter than what is known; returns the new cap then. The
    /// caller persists with [`LearnedCaps::save`] (blocking file I/O).
    pub fn observe_end(
        &self,
        camera: CameraId,
        declared: Option<Duration>,
        observed: Duration,
    ) -> Option<Duration> {
        if observed < MIN_LEARNED_CAP {
            return None;
        }
        let limit = match (declared, self.get(camera)) {
            (Some(d), Some(l)) => d.min(l),
            (Some(d), None) => d,
            (None, Some(l)) => l,
            (None, None) => return None,
        };
        if observed + EARLY_MARGIN > limit {
            return None;
        }
        let cap_ms = u64::try_from(observed.as_millis()).unwrap_or(u64::MAX);
        lock(&self.caps).insert(camera, Entry { cap_ms });
        Some(Duration::from_millis(cap_ms))
    }

    /// Writes the map to the file, if one is configured. Blocking.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let json = serde_json::to_vec_pretty(&*lock(&self.caps)).map_err(std::io::Error::other)?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, file)
    }

    /// The configured file, for logs.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

fn read_file(file: &Path) -> BTreeMap<CameraId, Entry> {
    match std::fs::read(file) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            tracing::warn!(file = %file.display(), err = %e, "ignoring unreadable learned session caps");
            BTreeMap::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            tracing::warn!(file = %file.display(), err = %e, "cannot read learned session caps");
            BTreeMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn learns_early_ends_only() {
        let caps = LearnedCaps::load(None);
        // Near the declared cap, too short, or unbounded without a learned cap.
        assert_eq!(
            caps.observe_end(CameraId::new(1), Some(S(600)), S(599)),
            None
        );
        assert_eq!(caps.observe_end(CameraId::new(1), Some(S(600)), S(3)), None);
        assert_eq!(caps.observe_end(CameraId::new(1), None, S(20)), None);
        assert_eq!(
            caps.observe_end(CameraId::new(1), Some(S(600)), S(20)),
            Some(S(20))
        );
        assert_eq!(caps.get(CameraId::new(1)), Some(S(20)));
        assert_eq!(caps.get(CameraId::new(2)), None);
        // A session ending at the learned cap teaches nothing new; a shorter one does.
        assert_eq!(
            caps.observe_end(CameraId::new(1), Some(S(600)), S(19)),
            None
        );
        assert_eq!(
            caps.observe_end(CameraId::new(1), Some(S(600)), S(12)),
            Some(S(12))
        );
    }

    #[test]
    fn persists_across_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("state").join("session_caps.json");
        let caps = LearnedCaps::load(Some(file.clone()));
        assert_eq!(
            caps.observe_end(CameraId::new(10001), Some(S(600)), S(20)),
            Some(S(20))
        );
        caps.save().expect("save");
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON");
        assert_eq!(
            raw,
            serde_json::json!({"10001": {"cap_ms": 20000}}),
            "the file's shape"
        );
        let again = LearnedCaps::load(Some(file.clone()));
        assert_eq!(again.get(CameraId::new(10001)), Some(S(20)));
        std::fs::write(&file, b"{not json").expect("write");
        assert_eq!(
            LearnedCaps::load(Some(file)).get(CameraId::new(10001)),
            None
        );
    }
}
