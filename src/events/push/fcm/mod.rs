//! [`FcmTransport`]: real pushes from Google's Firebase Cloud Messaging, as
//! Ring's Android app receives them (ring-api.md §7.1).
//!
//! With the `fcm` cargo feature the transport uses the `fcm-push-listener`
//! crate: it registers a fake Android installation with FCM (checkin, GCM
//! register, Firebase installation, FCM registration) using Ring's Firebase
//! config ([`FcmConfig::ring_android`]), then holds an MCS connection to
//! `mtalk.google.com:5228`, decrypts each data message and acknowledges
//! heartbeats. Without the feature every call fails with
//! [`PushError::NotCompiled`] and ring-bridge relies on the polling fallback.
//!
//! The FCM credentials (registration token, GCM android id and security token,
//! Web Push keys) and the persistent ids of received messages are kept in
//! [`FCM_CREDENTIALS_FILE`] in the state directory, written atomically with
//! mode 0600 like the Ring token. Delete the file to register afresh (Ring then
//! gets the new token at the next registration).
//!
//! The credential file and the Firebase configuration are in `creds.rs`; the
//! network half (feature `fcm`) in `live.rs`. This path cannot be tested
//! without Google; unit tests cover the credential file and the configuration only.

mod creds;
#[cfg(feature = "fcm")]
mod live;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::transport::{PushConnection, PushError, PushTransport};
use creds::blocking;
pub use creds::{
    CredentialStore, FCM_CREDENTIALS_FILE, FcmConfig, FcmCredentials, MAX_PERSISTENT_IDS,
};

/// Options of [`FcmTransport`].
#[derive(Clone, Debug)]
pub struct FcmOptions {
    /// The state directory (where [`FCM_CREDENTIALS_FILE`] lives).
    pub state_dir: PathBuf,
    /// The Firebase project (default: Ring's Android app).
    pub config: FcmConfig,
}

/// Pushes from Google's FCM. See the module docs.
pub struct FcmTransport {
    opts: FcmOptions,
    /// The loaded or freshly made credentials.
    creds: Arc<Mutex<Option<FcmCredentials>>>,
}

impl std::fmt::Debug for FcmTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmTransport")
            .field("opts", &self.opts)
            .finish()
    }
}

impl FcmTransport {
    /// A transport; does no I/O until [`PushTransport::token`].
    pub fn new(opts: FcmOptions) -> Self {
        FcmTransport {
            opts,
            creds: Arc::new(Mutex::new(None)),
        }
    }

    /// Whether this build can talk to FCM (the `fcm` cargo feature).
    pub fn available() -> bool {
        cfg!(feature = "fcm")
    }

    fn store(&self) -> Result<CredentialStore, PushError> {
        CredentialStore::open(&self.opts.state_dir)
    }
}

#[async_trait::async_trait]
impl PushTransport for FcmTransport {
    fn name(&self) -> &'static str {
        "fcm"
    }

    async fn token(&self) -> Result<String, PushError> {
        let mut slot = self.creds.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.fcm_token.clone());
        }
        let store = self.store()?;
        let loaded = blocking(move || store.load()).await?;
        if let Some(c) = loaded.filter(|c| c.matches(&self.opts.config)) {
            let token = c.fcm_token.clone();
            *slot = Some(c);
            return Ok(token);
        }
        let fresh = register(&self.opts.config).await?;
        let token = fresh.fcm_token.clone();
        let store = self.store()?;
        let to_save = fresh.clone();
        blocking(move || store.save(&to_save)).await?;
        tracing::info!("registered with FCM; credentials saved");
        *slot = Some(fresh);
        Ok(token)
    }

    async fn connect(&self) -> Result<Box<dyn PushConnection>, PushError> {
        connect(self).await
    }

    async fn reset(&self) -> Result<(), PushError> {
        *self.creds.lock().await = None;
        let store = self.store()?;
        blocking(move || store.remove()).await
    }
}

#[cfg(not(feature = "fcm"))]
const NOT_COMPILED: PushError = PushError::NotCompiled {
    transport: "fcm",
    reason: "built without the `fcm` cargo feature (needs protoc to build); \
             events come from the polling fallback",
};

#[cfg(not(feature = "fcm"))]
async fn register(_config: &FcmConfig) -> Result<FcmCredentials, PushError> {
    Err(NOT_COMPILED)
}

#[cfg(not(feature = "fcm"))]
async fn connect(_t: &FcmTransport) -> Result<Box<dyn PushConnection>, PushError> {
    Err(NOT_COMPILED)
}

#[cfg(feature = "fcm")]
use live::{connect, register};

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn creds(token: &str) -> FcmCredentials {
        FcmCredentials {
            version: 1,
            project_id: "ring-17770".into(),
            app_id: FcmConfig::ring_android().app_id,
            fcm_token: token.into(),
            registration: serde_json::json!({"fcm_token": token, "gcm": {"android_id": "1", "security_token": "2"}}),
            persistent_ids: vec![],
            created_at: 1,
        }
    }

    #[test]
    fn ring_config_is_the_android_app() {
        let c = FcmConfig::default();
        assert_eq!(c.project_id, "ring-17770");
        assert_eq!(c.sender_id, "876313859327");
        assert!(c.app_id.starts_with("1:876313859327:android:"));
    }

    #[test]
    fn credentials_round_trip_atomically_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        assert!(store.load().unwrap().is_none());
        let mut c = creds("tok-1");
        assert!(c.remember("p1") && !c.remember("p1"));
        store.save(&c).unwrap();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = store.load().unwrap().expect("saved");
        assert_eq!(back.fcm_token, "tok-1");
        assert_eq!(back.persistent_ids, ["p1"]);
        assert_eq!(back.registration, c.registration);
        assert!(back.matches(&FcmConfig::ring_android()));
        let other = FcmConfig {
            project_id: "other".into(),
            ..FcmConfig::ring_android()
        };
        assert!(!back.matches(&other));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        store.remove().unwrap();
        store.remove().unwrap();
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn corrupt_credentials_are_an_error_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        std::fs::write(store.path(), b"{not json").unwrap();
        assert!(matches!(
            store.load(),
            Err(PushError::CredentialsCorrupt { .. })
        ));
        assert!(store.path().exists());
        let debug = format!("{:?}", creds("secret-token"));
        assert!(!debug.contains("secret-token"), "{debug}");
    }

    #[test]
    fn persistent_ids_are_bounded() {
        let mut c = creds("t");
        for i in 0..(MAX_PERSISTENT_IDS + 5) {
            c.remember(&format!("p{i}"));
        }
        assert_eq!(c.persistent_ids.len(), MAX_PERSISTENT_IDS);
        assert_eq!(c.persistent_ids[0], "p5");
    }

    #[tokio::test]
    async fn token_uses_saved_credentials_without_network() {
        let dir = tempfile::tempdir().unwrap();
        CredentialStore::open(dir.path())
            .unwrap()
            .save(&creds("saved-token"))
            .unwrap();
        let t = FcmTransport::new(FcmOptions {
            state_dir: dir.path().to_owned(),
            config: FcmConfig::ring_android(),
        });
        assert_eq!(t.token().await.unwrap(), "saved-token");
        t.reset().await.unwrap();
        assert!(!dir.path().join(FCM_CREDENTIALS_FILE).exists());
    }

    #[cfg(not(feature = "fcm"))]
    #[tokio::test]
    async fn without_the_feature_registration_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let t = FcmTransport::new(FcmOptions {
            state_dir: dir.path().to_owned(),
            config: FcmConfig::ring_android(),
        });
        assert!(matches!(
            t.token().await,
            Err(PushError::NotCompiled { .. })
        ));
        assert!(matches!(
            t.connect().await,
            Err(PushError::NotCompiled { .. })
        ));
        assert!(!FcmTransport::available());
    }
}
