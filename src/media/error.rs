//! Typed errors of the media hub: [`SourceError`] (what a live source reports),
//! [`HubError`] (what hub calls return) and [`RecvError`] (what a subscriber sees).
//!
//! All are `Clone` (shared through `watch` channels) and map to an [`ErrorKind`].

use std::sync::Arc;
use std::time::Duration;

use crate::base::{CameraId, ErrorKind, ResultExt};

/// An error from a [`crate::media::LiveOpener`] or [`crate::media::LiveSource`].
///
/// Opaque and cheap to clone. The producer (e.g. `ring::live`) chooses the
/// [`ErrorKind`]; the hub retries every kind while viewers hold leases, but backs off
/// to the maximum delay at once for kinds that are not [`ErrorKind::is_retryable`].
#[derive(Clone, Debug, thiserror::Error)]
#[error("{context}")]
pub struct SourceError {
    kind: ErrorKind,
    context: String,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl SourceError {
    /// An error described by `context` alone (e.g. "live call rejected: camera offline").
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Self {
        SourceError {
            kind,
            context: context.into(),
            source: None,
        }
    }

    /// An error with a context sentence and an underlying cause, kept for the chain.
    pub fn with_source(
        kind: ErrorKind,
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        SourceError {
            kind,
            context: context.into(),
            source: Some(Arc::new(source)),
        }
    }
}

impl ResultExt for SourceError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// An error returned by hub calls such as [`crate::media::CameraStream::wait_ready`].
#[derive(Clone, Debug, thiserror::Error)]
pub enum HubError {
    /// No key frame arrived in time.
    #[error("camera {camera}: no key frame within {waited:?}")]
    Timeout {
        /// Camera id.
        camera: CameraId,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The hub (or daemon) is shutting down.
    #[error("camera {camera}: media hub is shut down")]
    ShutDown {
        /// Camera id.
        camera: CameraId,
    },
    /// The stream has no viewer lease, so nothing will start it.
    #[error("camera {camera}: stream is not leased, so it will never become ready")]
    NotLeased {
        /// Camera id.
        camera: CameraId,
    },
}

impl ResultExt for HubError {
    fn kind(&self) -> ErrorKind {
        match self {
            HubError::Timeout { .. } => ErrorKind::DeadlineExceeded,
            HubError::ShutDown { .. } => ErrorKind::Cancelled,
            HubError::NotLeased { .. } => ErrorKind::FailedPrecondition,
        }
    }
}

/// Why [`crate::media::Subscriber::recv`] returned no frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscriber fell behind and `dropped` frames were lost. The subscriber has
    /// already resynchronised: the next frame it yields is a video key frame.
    #[error("subscriber fell behind; {dropped} frames dropped, resuming at a key frame")]
    Lagged {
        /// Number of frames lost from the subscriber's buffer.
        dropped: u64,
    },
    /// The hub shut down; no more frames will come.
    #[error("media hub closed")]
    Closed,
}

impl ResultExt for RecvError {
    fn kind(&self) -> ErrorKind {
        match self {
            RecvError::Lagged { .. } => ErrorKind::ResourceExhausted,
            RecvError::Closed => ErrorKind::Cancelled,
        }
    }
}
