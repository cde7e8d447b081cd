//! The talk floor: at most one talker per camera may send talkback at a time.
//! The hub holds one [`Floors`] for all cameras ([`crate::media::Hub::floors`]),
//! so every talkback producer (WHEP viewers in `webrtc`, announcements in
//! `announce`) contends for the same floor.
//!
//! A talker takes the floor in one of three ways ([`Claim`]):
//! - **explicitly** (`POST …/talk {"talking":true}`, the console's hold-to-talk);
//! - **by voice** (`webrtc.talk_floor = "voice"`): its uplink audio carries speech
//!   (`webrtc/voice.rs`), so standard WHEP players talk without project-specific calls;
//! - **for an announcement** (a clip or speech played by `announce`).
//!
//! An explicit claim wins over a voice one: it takes the floor from a voice
//! holder. A voice or announcement claim never takes the floor from anyone, and
//! nothing takes it from an announcement. The floor is lost when its holder lets
//! go (explicit release, silence for a voice claim, the end of an announcement),
//! ends, or sends no audio for the floor timeout (30 s by default). Expiry is
//! evaluated lazily on every access, so no timer task is needed; a talker waiting
//! for the floor ([`Floors::take_within`]) is woken by every release.
//!
//! Locking: one `std::sync::Mutex`, held only for map operations (never across an
//! await); safe to call per RTP packet.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::base::CameraId;

/// How a session holds a camera's talk floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// Asked for with `POST …/talk`; released only by the session.
    Explicit,
    /// Taken by speech on the session's uplink audio; released after silence.
    Voice,
    /// Held while an announcement plays; released when it ends.
    Announce,
}

struct Holder {
    session: String,
    claim: Claim,
    /// When the floor was taken or the last talkback packet arrived.
    last: Instant,
}

/// Per-camera talk floors (camera = hub key). Talkers are named by a session id
/// (a WHEP session id, or `announce-<n>`).
pub struct Floors {
    timeout: Duration,
    map: Mutex<HashMap<CameraId, Holder>>,
    /// Woken on every release, for [`Floors::take_within`].
    released: Notify,
}

impl Floors {
    /// Floors that expire after `timeout` without packets.
    pub fn new(timeout: Duration) -> Self {
        Floors {
            timeout,
            map: Mutex::new(HashMap::new()),
            released: Notify::new(),
        }
    }

    /// How long a holder keeps the floor without sending audio.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CameraId, Holder>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes `camera`'s holder if it has expired; returns the live holder's entry.
    fn live(
        map: &mut HashMap<CameraId, Holder>,
        camera: CameraId,
        timeout: Duration,
    ) -> Option<&mut Holder> {
        if map
            .get(&camera)
            .is_some_and(|h| h.last.elapsed() >= timeout)
        {
            map.remove(&camera);
        }
        map.get_mut(&camera)
    }

    /// Gives `session` the floor of `camera` with `claim`, refreshing it if the
    /// session already holds it (an explicit claim upgrades a voice one; a voice
    /// claim never downgrades an explicit one). An explicit claim takes the floor
    /// from a voice holder: `Ok(Some(previous holder))`. Fails with the current
    /// holder's session id when the floor cannot be taken.
    pub fn take(
        &self,
        camera: CameraId,
        session: &str,
        claim: Claim,
    ) -> Result<Option<String>, String> {
        let mut map = self.lock();
        let mut preempted = None;
        match Self::live(&mut map, camera, self.timeout) {
            Some(h) if h.session == session => {
                h.last = Instant::now();
                if claim == Claim::Explicit {
                    h.claim = Claim::Explicit;
                }
                return Ok(None);
            }
            // Only an explicit claim takes the floor, and only from a voice holder.
            Some(h) if claim != Claim::Explicit || h.claim != Claim::Voice => {
                return Err(h.session.clone());
            }
            Some(h) => preempted = Some(h.session.clone()),
            None => {}
        }
        map.insert(
            camera,
            Holder {
                session: session.to_owned(),
                claim,
                last: Instant::now(),
            },
        );
        Ok(preempted)
    }

    /// [`Self::take`], waiting up to `wait` for the holder to let go (or its claim
    /// to expire). Fails with the holder's session id and claim when the floor is
    /// still taken after `wait`; `wait` zero tries once.
    pub async fn take_within(
        &self,
        camera: CameraId,
        session: &str,
        claim: Claim,
        wait: Duration,
    ) -> Result<Option<String>, (String, Claim)> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before trying, so a release in between is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let expires = match self.take(camera, session, claim) {
                Ok(p) => return Ok(p),
                Err(_) => {
                    let mut map = self.lock();
                    match Self::live(&mut map, camera, self.timeout) {
                        Some(h) if Instant::now() >= deadline => {
                            return Err((h.session.clone(), h.claim));
                        }
                        Some(h) => h.last + self.timeout,
                        None => continue,
                    }
                }
            };
            tokio::select! {
                _ = &mut released => {}
                _ = tokio::time::sleep_until(expires.min(deadline)) => {}
            }
        }
    }

    /// Releases `camera`'s floor if `session` holds it (any claim). Returns whether
    /// it did.
    pub fn release(&self, camera: CameraId, session: &str) -> bool {
        self.release_if(camera, session, |_| true)
    }

    /// Releases `camera`'s floor if `session` holds it by voice (its speech ended);
    /// an explicit claim stays. Returns whether it did.
    pub fn release_voice(&self, camera: CameraId, session: &str) -> bool {
        self.release_if(camera, session, |c| c == Claim::Voice)
    }

    fn release_if(&self, camera: CameraId, session: &str, claim: impl Fn(Claim) -> bool) -> bool {
        let mut map = self.lock();
        if map
            .get(&camera)
            .is_some_and(|h| h.session == session && claim(h.claim))
        {
            map.remove(&camera);
            drop(map);
            self.released.notify_waiters();
            return true;
        }
        false
    }

    /// Releases every floor `session` holds (the session ended).
    pub fn release_session(&self, session: &str) {
        self.lock().retain(|_, h| h.session != session);
        self.released.notify_waiters();
    }

    /// Called per talkback packet: true if `session` holds `camera`'s floor, which
    /// is then kept alive for another timeout.
    pub fn touch(&self, camera: CameraId, session: &str) -> bool {
        let mut map = self.lock();
        match Self::live(&mut map, camera, self.timeout) {
            Some(h) if h.session == session => {
                h.last = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// The session holding `camera`'s floor and how, if any.
    pub fn holder(&self, camera: CameraId) -> Option<(String, Claim)> {
        let mut map = self.lock();
        Self::live(&mut map, camera, self.timeout).map(|h| (h.session.clone(), h.claim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAM1: CameraId = CameraId::new(1);
    const CAM2: CameraId = CameraId::new(2);

    const EXPLICIT: Claim = Claim::Explicit;
    const VOICE: Claim = Claim::Voice;
    const ANNOUNCE: Claim = Claim::Announce;

    #[tokio::test(start_paused = true)]
    async fn one_talker_per_camera_with_timeout() {
        let f = Floors::new(Duration::from_secs(30));
        assert_eq!(f.take(CAM1, "a", EXPLICIT), Ok(None));
        assert_eq!(f.take(CAM1, "b", EXPLICIT), Err("a".into()));
        assert_eq!(
            f.take(CAM2, "b", EXPLICIT),
            Ok(None),
            "floors are per camera"
        );
        assert!(f.touch(CAM1, "a"));
        assert!(!f.touch(CAM1, "b"));
        assert!(!f.release(CAM1, "b"), "only the holder releases");

        // Packets keep the floor; silence loses it.
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(f.touch(CAM1, "a"));
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(f.holder(CAM1), Some(("a".into(), EXPLICIT)));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(f.holder(CAM1), None);
        assert!(!f.touch(CAM1, "a"));
        assert_eq!(f.take(CAM1, "b", EXPLICIT), Ok(None));

        assert!(f.release(CAM1, "b"));
        assert_eq!(f.holder(CAM1), None);
        f.release_session("b");
        assert_eq!(f.holder(CAM2), None);
    }

    #[tokio::test(start_paused = true)]
    async fn explicit_wins_over_voice() {
        let f = Floors::new(Duration::from_secs(30));
        // Voice takes a free floor; another voice waits.
        assert_eq!(f.take(CAM1, "a", VOICE), Ok(None));
        assert_eq!(f.take(CAM1, "b", VOICE), Err("a".into()));
        // An explicit claim takes it from the voice holder...
        assert_eq!(f.take(CAM1, "b", EXPLICIT), Ok(Some("a".into())));
        assert_eq!(f.holder(CAM1), Some(("b".into(), EXPLICIT)));
        // ...and voice cannot take it back, nor does b's silence release it.
        assert_eq!(f.take(CAM1, "a", VOICE), Err("b".into()));
        assert!(!f.release_voice(CAM1, "b"));
        assert!(!f.release_voice(CAM1, "a"));
        // b's own voice keeps its explicit claim.
        assert_eq!(f.take(CAM1, "b", VOICE), Ok(None));
        assert_eq!(f.holder(CAM1), Some(("b".into(), EXPLICIT)));
        assert!(f.release(CAM1, "b"));

        // A voice holder upgrades to explicit; silence then leaves it alone.
        assert_eq!(f.take(CAM1, "a", VOICE), Ok(None));
        assert_eq!(f.take(CAM1, "a", EXPLICIT), Ok(None));
        assert!(!f.release_voice(CAM1, "a"));
        assert!(f.release(CAM1, "a"));
        // An explicit release ends a voice claim too.
        assert_eq!(f.take(CAM1, "a", VOICE), Ok(None));
        assert!(f.release_voice(CAM1, "a"));
        assert_eq!(f.holder(CAM1), None);
        assert_eq!(f.take(CAM1, "a", VOICE), Ok(None));
        assert!(f.release(CAM1, "a"));
    }

    #[tokio::test(start_paused = true)]
    async fn announcements_neither_take_nor_lose_the_floor() {
        let f = Floors::new(Duration::from_secs(30));
        // An announcement does not take the floor from a voice talker...
        assert_eq!(f.take(CAM1, "a", VOICE), Ok(None));
        assert_eq!(f.take(CAM1, "ann", ANNOUNCE), Err("a".into()));
        assert!(f.release(CAM1, "a"));
        // ...and once it holds it, neither explicit nor voice claims take it.
        assert_eq!(f.take(CAM1, "ann", ANNOUNCE), Ok(None));
        assert_eq!(f.take(CAM1, "b", EXPLICIT), Err("ann".into()));
        assert_eq!(f.take(CAM1, "b", VOICE), Err("ann".into()));
        assert!(!f.release_voice(CAM1, "ann"));
        assert_eq!(f.holder(CAM1), Some(("ann".into(), ANNOUNCE)));
        assert!(f.release(CAM1, "ann"));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_the_floor() {
        let f = std::sync::Arc::new(Floors::new(Duration::from_secs(30)));
        assert_eq!(f.take(CAM1, "a", EXPLICIT), Ok(None));
        // No wait: fails at once, naming the holder.
        assert_eq!(
            f.take_within(CAM1, "ann", ANNOUNCE, Duration::ZERO).await,
            Err(("a".into(), EXPLICIT))
        );
        // A release wakes the waiter.
        let waiter = {
            let f = f.clone();
            tokio::spawn(async move {
                f.take_within(CAM1, "ann", ANNOUNCE, Duration::from_secs(20))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished());
        assert!(f.release(CAM1, "a"));
        assert_eq!(waiter.await.unwrap(), Ok(None));
        assert_eq!(f.holder(CAM1), Some(("ann".into(), ANNOUNCE)));
        assert!(f.release(CAM1, "ann"));

        // A holder that goes silent expires while the waiter waits.
        assert_eq!(f.take(CAM1, "a", EXPLICIT), Ok(None));
        let t0 = Instant::now();
        assert_eq!(
            f.take_within(CAM1, "ann", ANNOUNCE, Duration::from_secs(60))
                .await,
            Ok(None)
        );
        assert_eq!(t0.elapsed(), Duration::from_secs(30));
        // A wait shorter than the holder's claim gives up at its end.
        let t0 = Instant::now();
        assert_eq!(
            f.take_within(CAM1, "b", EXPLICIT, Duration::from_secs(2))
                .await,
            Err(("ann".into(), ANNOUNCE))
        );
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
    }
}
