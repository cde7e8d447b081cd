//! Ring cloud REST client: OAuth (refresh rotation persisted atomically), session,
//! devices, history, recordings, snapshots and device commands.
//!
//! Protocol reference: `../shared/ring-api.md`. The rest of ring-bridge talks to
//! Ring only through the [`RingApi`] trait, so tests can run against the
//! simulator (`crate::sim`) over real sockets.
//!
//! Layout: [`client`] ([`RingClient`], [`RingOptions`], the endpoints),
//! `request` (headers, session, 401/404/429/5xx handling), `auth` (OAuth,
//! 2FA, rotation), [`state`] (token + hardware id files, atomic writes),
//! [`hosts`], [`retry`], and the parsers [`devices`] and [`history`]. Tests
//! against scripted in-process servers are in `tests/`; JSON bodies in Ring's
//! shapes (our own data) in `testdata/`.

mod auth;
pub mod client;
pub mod devices;
pub mod history;
pub mod hosts;
pub mod push_api;
mod request;
pub mod retry;
mod snapshots;
pub mod state;

pub mod live;
pub mod model;

#[cfg(test)]
mod tests;

pub use client::{RingClient, RingOptions};
pub use devices::DeviceHealth;
pub use hosts::RingHosts;
pub use model::{Camera, Capabilities, HistoryEvent, HistoryPage, Location, Profile, Snapshot};
pub use push_api::PushSubscription;
pub use retry::RetryPolicy;

use crate::base::{CameraId, ErrorKind};

/// Where the client is in its authentication life.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AuthState {
    /// A refresh token is saved but has not been used yet.
    Unknown,
    /// A valid access token is held.
    Authenticated,
    /// No usable refresh token (none saved, the saved file is unreadable, or Ring
    /// rejected it): a person must log in (`ring-bridge auth` or the console
    /// login). Never retried in a loop.
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
    Auth(AuthFailure),
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
    /// A state file exists but cannot be understood. It is left in place (never
    /// deleted) so a person can inspect it.
    #[error("state file {path} is corrupt: {detail}")]
    StateCorrupt {
        /// File path.
        path: std::path::PathBuf,
        /// What was wrong (never contains the token).
        detail: String,
    },
    /// Ring says the device cannot serve the request now: 404 with
    /// `errors:[70xx]` (ring-api.md §1.6, §8), e.g. `7019` ASSET_OFFLINE.
    /// Retry in about 20 s.
    #[error("Ring {path}: device unavailable ({code} {})", device_error_name(*.code))]
    DeviceUnavailable {
        /// Request path.
        path: String,
        /// Ring's error code (7050, 7019, 7061, 7062, 7063, ...).
        code: u32,
    },
    /// An id given by the caller is malformed (e.g. a ding id that is not digits).
    #[error("invalid {what}: {value:?}")]
    InvalidId {
        /// What kind of id.
        what: &'static str,
        /// The rejected value.
        value: String,
    },
    /// Shut down while waiting.
    #[error("cancelled")]
    Cancelled,
}

/// Why authentication failed (see ring-api.md §1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No refresh token is saved yet.
    #[error(
        "not logged in: no Ring refresh token is saved; log in with `ring-bridge auth` or the console"
    )]
    NotLoggedIn,
    /// 401 on the password grant.
    #[error("Ring rejected the email or password")]
    BadCredentials,
    /// 400 "Verification Code is invalid or expired".
    #[error("the verification code is invalid or expired")]
    WrongCode,
    /// "too many requests from dependency service": too many 2FA codes
    /// (about 10 per 10 minutes).
    #[error("Ring refused: too many verification code requests; wait about 10 minutes")]
    TooManyCodeRequests,
    /// Ring rejected the refresh token (401 `invalid_grant`). The saved token is
    /// kept on disk; a person must log in again.
    #[error("Ring rejected the saved refresh token (revoked or expired); log in again")]
    RefreshRejected,
    /// Ring answered 401 to an API call even with a freshly refreshed access token.
    #[error("Ring rejected a freshly refreshed access token on {path}")]
    AccessRejected {
        /// Request path.
        path: String,
    },
    /// The OAuth endpoint answered something we do not understand.
    #[error("unexpected OAuth answer HTTP {status}: {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// Start of the answer body.
        body: String,
    },
}

/// Ring's name for a 404 `errors` code (ring-api.md §1.6).
fn device_error_name(code: u32) -> &'static str {
    match code {
        7050 => "NO_ASSET",
        7019 => "ASSET_OFFLINE",
        7061 => "ASSET_CELL_BACKUP",
        7062 => "UPDATING",
        7063 => "MAINTENANCE",
        _ => "unknown",
    }
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
            ErrorInner::Auth(AuthFailure::Unexpected { status, .. }) => Some(*status),
            ErrorInner::RateLimited { .. } => Some(429),
            ErrorInner::DeviceUnavailable { .. } => Some(404),
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
            ErrorInner::Transport { source, .. } if source.is_timeout() => {
                ErrorKind::DeadlineExceeded
            }
            ErrorInner::Transport { .. } => ErrorKind::Unavailable,
            ErrorInner::Status { status, .. } => match *status {
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                400..=499 => ErrorKind::FailedPrecondition,
                _ => ErrorKind::Unavailable,
            },
            ErrorInner::Decode { .. } => ErrorKind::Unavailable,
            ErrorInner::Auth(AuthFailure::TooManyCodeRequests) => ErrorKind::ResourceExhausted,
            ErrorInner::Auth(AuthFailure::Unexpected { status, .. }) if *status >= 500 => {
                ErrorKind::Unavailable
            }
            ErrorInner::Auth(_) | ErrorInner::TwoFactorRequired { .. } => {
                ErrorKind::Unauthenticated
            }
            ErrorInner::RateLimited { .. } => ErrorKind::ResourceExhausted,
            ErrorInner::NotFound(_) => ErrorKind::NotFound,
            ErrorInner::State { .. } => ErrorKind::Internal,
            ErrorInner::StateCorrupt { .. } => ErrorKind::FailedPrecondition,
            ErrorInner::DeviceUnavailable { .. } => ErrorKind::Unavailable,
            ErrorInner::InvalidId { .. } => ErrorKind::InvalidArgument,
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
    async fn history(&self, camera_id: CameraId, query: HistoryQuery)
    -> Result<HistoryPage, Error>;
    /// A (signed, expiring) URL of the MP4 recording of event `ding_id`.
    async fn recording_url(&self, ding_id: &str) -> Result<url::Url, Error>;
    /// The latest snapshot of a camera.
    async fn snapshot(&self, camera_id: CameraId) -> Result<Snapshot, Error>;
    /// Turns a camera's light on or off.
    async fn set_light(&self, camera_id: CameraId, on: bool) -> Result<(), Error>;
    /// Sounds or silences a camera's siren.
    async fn set_siren(&self, camera_id: CameraId, on: bool) -> Result<(), Error>;
    /// Enables or disables motion detection.
    async fn set_motion_detection(&self, camera_id: CameraId, on: bool) -> Result<(), Error>;
    /// A one-use ticket for the live-view signalling socket (ring-api.md §6.1).
    async fn live_ticket(&self) -> Result<String, Error>;
    /// The current authentication state (watch it for changes).
    fn auth_state(&self) -> tokio::sync::watch::Receiver<AuthState>;
}
