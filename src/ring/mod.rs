//! Ring cloud REST client: OAuth (refresh rotation persisted atomically), session,
//! devices, history, recordings, snapshots and device commands.
//!
//! Protocol reference: `../shared/ring-api.md`. The rest of ring-bridge talks to
//! Ring only through the [`RingApi`] trait, so tests can run against the
//! simulator (`crate::sim`) over real sockets.

pub mod live;
pub mod model;

pub use model::{Camera, Capabilities, HistoryEvent, HistoryPage, Location, Snapshot};

use crate::base::ErrorKind;

/// Where the client is in its authentication life.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AuthState {
    /// No token yet, or not tried yet.
    Unknown,
    /// A valid access token is held.
    Authenticated,
    /// Ring rejected the refresh token: a person must log in again
    /// (`ring-bridge auth` or the console login). Never retried in a loop.
    ReauthRequired {
        /// Why, for the UI.
        reason: String,
    },
}

/// Query for one page of history.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Page size, 1..=200.
    pub limit: u32,
    /// Cursor from a previous [`HistoryPage::next`].
    pub older_than: Option<String>,
}

/// Error from the Ring client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{inner}")]
pub struct Error {
    inner: std::sync::Arc<ErrorInner>,
}

/// The details of an [`Error`].
#[derive(Debug, thiserror::Error)]
pub enum ErrorInner {
    /// Transport failure (connect, TLS, timeout) calling `path`.
    #[error("calling Ring {path}: {source}")]
    Transport {
        /// Request path.
        path: String,
        /// The reqwest error.
        #[source]
        source: reqwest::Error,
    },
    /// Ring answered with an unexpected HTTP status.
    #[error("Ring {path} answered HTTP {status}: {body}")]
    Status {
        /// Request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Start of the answer body (never contains our secrets).
        body: String,
    },
    /// Ring answered with a body we could not parse.
    #[error("Ring {path} answered with an unexpected body: {detail}")]
    Decode {
        /// Request path.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// Authentication failed or a person must log in again.
    #[error("Ring authentication: {0}")]
    Auth(String),
    /// Ring wants a 2FA code (`tsv_state`, where it was sent).
    #[error("Ring sent a verification code ({tsv_state}{}); enter it to continue", .phone.as_deref().map(|p| format!(" to {p}")).unwrap_or_default())]
    TwoFactorRequired {
        /// `sms`, `email` or `totp`.
        tsv_state: String,
        /// Masked destination.
        phone: Option<String>,
    },
    /// Rate limited by Ring.
    #[error("Ring rate-limited {path}; retry after {retry_after_s} s")]
    RateLimited {
        /// Request path.
        path: String,
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// No such camera or event.
    #[error("{0} not found")]
    NotFound(String),
    /// The state directory (token, hardware id) could not be read or written.
    #[error("state file {path}: {source}")]
    State {
        /// File path.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Shut down while waiting.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// The details.
    pub fn inner(&self) -> &ErrorInner {
        &self.inner
    }

    /// The HTTP status Ring answered with, if this came from an answer.
    pub fn http_status(&self) -> Option<u16> {
        match &*self.inner {
            ErrorInner::Status { status, .. } => Some(*status),
            ErrorInner::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

impl From<ErrorInner> for Error {
    fn from(e: ErrorInner) -> Self {
        Error {
            inner: std::sync::Arc::new(e),
        }
    }
}

impl crate::base::ResultExt for Error {
    fn kind(&self) -> ErrorKind {
        match &*self.inner {
            ErrorInner::Transport { source, .. } if source.is_timeout() => ErrorKind::DeadlineExceeded,
            ErrorInner::Transport { .. } => ErrorKind::Unavailable,
            ErrorInner::Status { status, .. } => match *status {
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                400..=499 => ErrorKind::FailedPrecondition,
                _ => ErrorKind::Unavailable,
            },
            ErrorInner::Decode { .. } => ErrorKind::Unavailable,
            ErrorInner::Auth(_) | ErrorInner::TwoFactorRequired { .. } => ErrorKind::Unauthenticated,
            ErrorInner::RateLimited { .. } => ErrorKind::ResourceExhausted,
            ErrorInner::NotFound(_) => ErrorKind::NotFound,
            ErrorInner::State { .. } => ErrorKind::Internal,
            ErrorInner::Cancelled => ErrorKind::Cancelled,
        }
    }
}

/// The Ring cloud as ring-bridge sees it. Production: [`client::RingClient`];
/// tests: the same client against the simulator.
#[async_trait::async_trait]
pub trait RingApi: Send + Sync {
    /// All cameras and doorbells of the account (every array of `ring_devices`).
    async fn cameras(&self) -> Result<Vec<Camera>, Error>;
    /// The account's locations.
    async fn locations(&self) -> Result<Vec<Location>, Error>;
    /// One page of a camera's event history, newest first.
    async fn history(&self, camera_id: u64, query: HistoryQuery) -> Result<HistoryPage, Error>;
    /// A (signed, expiring) URL of the MP4 recording of event `ding_id`.
    async fn recording_url(&self, ding_id: &str) -> Result<url::Url, Error>;
    /// The latest snapshot of a camera.
    async fn snapshot(&self, camera_id: u64) -> Result<Snapshot, Error>;
    /// Turns a camera's light on or off.
    async fn set_light(&self, camera_id: u64, on: bool) -> Result<(), Error>;
    /// Sounds or silences a camera's siren.
    async fn set_siren(&self, camera_id: u64, on: bool) -> Result<(), Error>;
    /// Enables or disables motion detection.
    async fn set_motion_detection(&self, camera_id: u64, on: bool) -> Result<(), Error>;
    /// A one-use ticket for the live-view signalling socket (ring-api.md §6.1).
    async fn live_ticket(&self) -> Result<String, Error>;
    /// The current authentication state (watch it for changes).
    fn auth_state(&self) -> tokio::sync::watch::Receiver<AuthState>;
}
