//! The talk floor: at most one WHEP session per camera may send talkback at a time.
//!
//! A session takes the floor explicitly (`POST …/talk {"talking":true}`) and loses it
//! when it lets go, ends, or sends no audio for the floor timeout (30 s by default).
//! Expiry is evaluated lazily on every access, so no timer task is needed.
//!
//! Locking: one `std::sync::Mutex`, held only for map operations (never across an
//! await); safe to call per RTP packet.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

struct Holder {
    session: String,
    /// When the floor was taken or the last talkback packet arrived.
    last: Instant,
}

/// Per-camera talk floors (camera = hub key).
pub(crate) struct Floors {
    timeout: Duration,
    map: Mutex<HashMap<String, Holder>>,
}

impl Floors {
    /// Floors that expire after `timeout` without packets.
    pub fn new(timeout: Duration) -> Self {
        Floors {
            timeout,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Holder>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes `camera`'s holder if it has expired; returns the live holder's entry.
    fn live<'a>(
        map: &'a mut HashMap<String, Holder>,
        camera: &str,
        timeout: Duration,
    ) -> Option<&'a mut Holder> {
        if map.get(camera).is_some_and(|h| h.last.elapsed() >= timeout) {
            map.remove(camera);
        }
        map.get_mut(camera)
    }

    /// Gives `session` the floor of `camera` (refreshing it if it already holds it).
    /// Fails with the current holder's session id if someone else talks.
    pub fn take(&self, camera: &str, session: &str) -> Result<(), String> {
        let mut map = self.lock();
        match Self::live(&mut map, camera, self.timeout) {
            Some(h) if h.session != session => Err(h.session.clone()),
            Some(h) => {
                h.last = Instant::now();
                Ok(())
            }
            None => {
                map.insert(
                    camera.to_owned(),
                    Holder {
                        session: session.to_owned(),
                        last: Instant::now(),
                    },
                );
                Ok(())
            }
        }
    }

    /// Releases `camera`'s floor if `session` holds it. Returns whether it did.
    pub fn release(&self, camera: &str, session: &str) -> bool {
        let mut map = self.lock();
        if map.get(camera).is_some_and(|h| h.session == session) {
            map.remove(camera);
            return true;
        }
        false
    }

    /// Releases every floor `session` holds (the session ended).
    pub fn release_session(&self, session: &str) {
        self.lock().retain(|_, h| h.session != session);
    }

    /// Called per talkback packet: true if `session` holds `camera`'s floor, which
    /// is then kept alive for another timeout.
    pub fn touch(&self, camera: &str, session: &str) -> bool {
        let mut map = self.lock();
        match Self::live(&mut map, camera, self.timeout) {
            Some(h) if h.session == session => {
                h.last = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// The session holding `camera`'s floor, if any.
    pub fn holder(&self, camera: &str) -> Option<String> {
        let mut map = self.lock();
        Self::live(&mut map, camera, self.timeout).map(|h| h.session.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_talker_per_camera_with_timeout() {
        let f = Floors::new(Duration::from_secs(30));
        assert_eq!(f.take("1", "a"), Ok(()));
        assert_eq!(f.take("1", "b"), Err("a".into()));
        assert_eq!(f.take("2", "b"), Ok(()), "floors are per camera");
        assert!(f.touch("1", "a"));
        assert!(!f.touch("1", "b"));
        assert!(!f.release("1", "b"), "only the holder releases");

        // Packets keep the floor; silence loses it.
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(f.touch("1", "a"));
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(f.holder("1").as_deref(), Some("a"));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(f.holder("1"), None);
        assert!(!f.touch("1", "a"));
        assert_eq!(f.take("1", "b"), Ok(()));

        assert!(f.release("1", "b"));
        assert_eq!(f.holder("1"), None);
        f.release_session("b");
        assert_eq!(f.holder("2"), None);
    }
}
