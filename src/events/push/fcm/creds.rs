//! FCM credentials and configuration: the Firebase project to register
//! against ([`FcmConfig`]), what a registration yields ([`FcmCredentials`])
//! and the 0600 file that keeps it ([`CredentialStore`]). No network here;
//! both the transport (`mod.rs`) and its network half (`live.rs`) use it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::events::push::transport::PushError;
use crate::ring::state::TokenStore;

/// Name of the FCM credentials file in the state directory.
pub const FCM_CREDENTIALS_FILE: &str = "fcm_credentials.json";

/// How many persistent ids of received messages are remembered and sent at
/// login, so FCM does not deliver them again.
pub const MAX_PERSISTENT_IDS: usize = 100;

/// The Firebase project FCM registers against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FcmConfig {
    /// Firebase API key.
    pub api_key: String,
    /// Firebase project id.
    pub project_id: String,
    /// Firebase (Android) app id.
    pub app_id: String,
    /// Sender id (the project number): the `from` of Ring's pushes.
    pub sender_id: String,
}

impl FcmConfig {
    /// Ring's Android app config (ring-api.md §7.1).
    pub fn ring_android() -> Self {
        FcmConfig {
            api_key: "AIzaSyCv-hdFBmmdBBJadNy-TFwB-xN_H5m3Bk8".into(),
            project_id: "ring-17770".into(),
            app_id: "1:876313859327:android:e10ec6ddb3c81f39".into(),
            sender_id: "876313859327".into(),
        }
    }
}

impl Default for FcmConfig {
    fn default() -> Self {
        FcmConfig::ring_android()
    }
}

/// What [`FCM_CREDENTIALS_FILE`] holds.
#[derive(Clone, Serialize, Deserialize)]
pub struct FcmCredentials {
    /// File format version (1).
    pub version: u32,
    /// The project these credentials belong to (a changed config registers afresh).
    pub project_id: String,
    /// The app id these credentials belong to.
    pub app_id: String,
    /// The FCM registration token: what Ring is told to send to.
    pub fcm_token: String,
    /// The `fcm-push-listener` registration (GCM session and Web Push keys),
    /// opaque to us.
    pub registration: serde_json::Value,
    /// Persistent ids of the most recent received messages, oldest first.
    #[serde(default)]
    pub persistent_ids: Vec<String>,
    /// When the registration was made, seconds since the epoch.
    #[serde(default)]
    pub created_at: u64,
}

impl std::fmt::Debug for FcmCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmCredentials")
            .field("project_id", &self.project_id)
            .field("app_id", &self.app_id)
            .field("fcm_token", &"<redacted>")
            .field("registration", &"<redacted>")
            .field("persistent_ids", &self.persistent_ids.len())
            .finish()
    }
}

impl FcmCredentials {
    /// Whether these credentials were made for `config`.
    pub fn matches(&self, config: &FcmConfig) -> bool {
        self.project_id == config.project_id && self.app_id == config.app_id
    }

    /// Remembers a received message's persistent id (bounded, no duplicates).
    /// Returns whether it was new.
    pub fn remember(&mut self, persistent_id: &str) -> bool {
        if self.persistent_ids.iter().any(|p| p == persistent_id) {
            return false;
        }
        self.persistent_ids.push(persistent_id.to_owned());
        let excess = self.persistent_ids.len().saturating_sub(MAX_PERSISTENT_IDS);
        self.persistent_ids.drain(..excess);
        true
    }
}

/// Reads and writes [`FCM_CREDENTIALS_FILE`] (blocking file I/O).
#[derive(Clone, Debug)]
pub struct CredentialStore {
    store: TokenStore,
}

impl CredentialStore {
    /// Opens (creating 0700 if needed) the state directory.
    pub fn open(dir: &Path) -> Result<Self, PushError> {
        Ok(CredentialStore {
            store: TokenStore::open(dir).map_err(PushError::Credentials)?,
        })
    }

    /// Path of the credentials file.
    pub fn path(&self) -> PathBuf {
        self.store.dir().join(FCM_CREDENTIALS_FILE)
    }

    /// The saved credentials; `None` if there is no file. A file that cannot
    /// be parsed is an error and stays in place.
    pub fn load(&self) -> Result<Option<FcmCredentials>, PushError> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(PushError::Credentials(
                    crate::ring::ErrorInner::State { path, source }.into(),
                ));
            }
        };
        let creds: FcmCredentials =
            serde_json::from_slice(&bytes).map_err(|e| PushError::CredentialsCorrupt {
                path: path.clone(),
                detail: format!(
                    "not the expected JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        if creds.version != 1 || creds.fcm_token.is_empty() {
            return Err(PushError::CredentialsCorrupt {
                path,
                detail: format!("version {} or empty token", creds.version),
            });
        }
        Ok(Some(creds))
    }

    /// Saves atomically (temp file 0600, fsync, rename, fsync dir).
    pub fn save(&self, creds: &FcmCredentials) -> Result<(), PushError> {
        let bytes =
            serde_json::to_vec_pretty(creds).map_err(|e| PushError::CredentialsCorrupt {
                path: self.path(),
                detail: format!("cannot serialize: {e}"),
            })?;
        self.store
            .stage(FCM_CREDENTIALS_FILE, &bytes)
            .and_then(|s| s.commit())
            .map_err(PushError::Credentials)
    }

    /// Removes the file (register afresh next time). Missing is fine.
    pub fn remove(&self) -> Result<(), PushError> {
        match std::fs::remove_file(self.path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PushError::Credentials(
                crate::ring::ErrorInner::State {
                    path: self.path(),
                    source,
                }
                .into(),
            )),
        }
    }
}

/// Runs blocking credential file I/O off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PushError> + Send + 'static,
) -> Result<T, PushError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(PushError::Cancelled))
}
