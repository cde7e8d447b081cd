//! Registration with Ring (ring-api.md §7.1): send the push token with
//! `PATCH clients_api/device` after every new Ring session, and subscribe the
//! cameras whose `subscribed`/`subscribed_motions` is not true.
//!
//! [`PushRegistrar`] is the seam ([`crate::ring::RingClient`] implements it);
//! `Registration` remembers under which token and session generation the
//! last registration happened, so repeated checks cost no Ring call.

use tracing::{debug, info, warn};

use super::transport::PushError;
use crate::base::CameraId;
use crate::base::error::chain;
use crate::ring::{self, PushSubscription, RingClient};

/// The Ring calls the push path needs.
#[async_trait::async_trait]
pub trait PushRegistrar: Send + Sync {
    /// The current Ring session generation (creates a session if needed); it
    /// changes whenever a new session was created.
    async fn session_generation(&self) -> Result<u64, ring::Error>;
    /// `PATCH clients_api/device` with `push_notification_token = token`.
    async fn register_push(&self, token: &str) -> Result<(), ring::Error>;
    /// Every camera's subscription flags.
    async fn push_subscriptions(&self) -> Result<Vec<PushSubscription>, ring::Error>;
    /// `doorbots/{id}/subscribe` (`motions == false`) or `…/motions_subscribe`.
    async fn subscribe(&self, camera_id: CameraId, motions: bool) -> Result<(), ring::Error>;
}

#[async_trait::async_trait]
impl PushRegistrar for RingClient {
    async fn session_generation(&self) -> Result<u64, ring::Error> {
        RingClient::session_generation(self).await
    }

    async fn register_push(&self, token: &str) -> Result<(), ring::Error> {
        RingClient::register_push(self, token).await
    }

    async fn push_subscriptions(&self) -> Result<Vec<PushSubscription>, ring::Error> {
        RingClient::push_subscriptions(self).await
    }

    async fn subscribe(&self, camera_id: CameraId, motions: bool) -> Result<(), ring::Error> {
        if motions {
            self.motions_subscribe(camera_id).await
        } else {
            RingClient::subscribe(self, camera_id).await
        }
    }
}

/// What was registered last.
#[derive(Debug, Default)]
pub(crate) struct Registration {
    /// `(token, session generation)` of the last successful registration.
    done: Option<(String, u64)>,
}

impl Registration {
    /// Registers `token` unless it was already registered in the current
    /// session. Returns whether a registration happened. Subscription failures
    /// of single cameras are logged, not returned: pushes of the other cameras
    /// still work and the polling fallback covers the rest.
    pub(crate) async fn ensure(
        &mut self,
        ring: &dyn PushRegistrar,
        token: &str,
    ) -> Result<bool, PushError> {
        let generation = ring
            .session_generation()
            .await
            .map_err(PushError::Register)?;
        if self
            .done
            .as_ref()
            .is_some_and(|(t, g)| t == token && *g == generation)
        {
            return Ok(false);
        }
        ring.register_push(token)
            .await
            .map_err(PushError::Register)?;
        info!(session = generation, "push token registered with Ring");
        match ring.push_subscriptions().await {
            Ok(subs) => subscribe_all(ring, &subs).await,
            Err(e) => warn!(err = %chain(&e), "reading push subscriptions failed"),
        }
        self.done = Some((token.to_owned(), generation));
        Ok(true)
    }

    /// Forgets the registration (the token changed or was rejected).
    pub(crate) fn forget(&mut self) {
        self.done = None;
    }
}

async fn subscribe_all(ring: &dyn PushRegistrar, subs: &[PushSubscription]) {
    for s in subs {
        for (needed, motions) in [
            (s.needs_ding_subscription(), false),
            (s.needs_motion_subscription(), true),
        ] {
            if !needed {
                continue;
            }
            let what = if motions {
                "motions_subscribe"
            } else {
                "subscribe"
            };
            match ring.subscribe(s.camera_id, motions).await {
                Ok(()) => debug!(camera = %s.camera_id, what, "subscribed to pushes"),
                Err(e) => {
                    warn!(camera = %s.camera_id, what, err = %chain(&e), "push subscription failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[derive(Default)]
    struct Fake {
        generation: AtomicU64,
        calls: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl PushRegistrar for Fake {
        async fn session_generation(&self) -> Result<u64, ring::Error> {
            Ok(self.generation.load(Ordering::SeqCst))
        }
        async fn register_push(&self, token: &str) -> Result<(), ring::Error> {
            self.calls.lock().unwrap().push(format!("register {token}"));
            Ok(())
        }
        async fn push_subscriptions(&self) -> Result<Vec<PushSubscription>, ring::Error> {
            Ok(vec![
                PushSubscription {
                    camera_id: CameraId::new(1),
                    doorbell: true,
                    subscribed: Some(false),
                    subscribed_motions: Some(true),
                },
                PushSubscription {
                    camera_id: CameraId::new(2),
                    doorbell: false,
                    subscribed: None,
                    subscribed_motions: None,
                },
            ])
        }
        async fn subscribe(&self, camera_id: CameraId, motions: bool) -> Result<(), ring::Error> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("sub {camera_id} {motions}"));
            Ok(())
        }
    }

    #[tokio::test]
    async fn registers_once_per_session_and_token() {
        let fake = Fake::default();
        let mut reg = Registration::default();
        assert!(reg.ensure(&fake, "t1").await.unwrap());
        assert!(!reg.ensure(&fake, "t1").await.unwrap());
        fake.generation.store(1, Ordering::SeqCst);
        assert!(reg.ensure(&fake, "t1").await.unwrap(), "new session");
        assert!(reg.ensure(&fake, "t2").await.unwrap(), "new token");
        reg.forget();
        assert!(reg.ensure(&fake, "t2").await.unwrap(), "forgotten");
        let calls = fake.calls.lock().unwrap();
        assert_eq!(
            calls[..3],
            ["register t1", "sub 1 false", "sub 2 true"],
            "a doorbell missing `subscribed`, a camera missing `subscribed_motions`"
        );
        assert_eq!(
            calls.iter().filter(|c| c.starts_with("register")).count(),
            4
        );
    }
}
