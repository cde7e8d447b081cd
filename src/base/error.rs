//! Error kinds shared across layers.
//!
//! Each layer has its own typed `thiserror` error; each of them maps to one
//! [`ErrorKind`], and the kind alone decides retry policy, the HTTP status at the
//! web edge and whether a camera is shown unavailable.

use std::fmt;

/// The small fixed set of error kinds (modelled on gRPC status codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller sent something malformed (bad id, bad query value, bad body).
    InvalidArgument,
    /// The thing asked for does not exist.
    NotFound,
    /// Credentials are missing, expired or rejected (Ring: re-authentication needed).
    Unauthenticated,
    /// Credentials are fine but not allowed to do this.
    PermissionDenied,
    /// A peer (Ring, broker) is unreachable or answered 5xx; retry with backoff.
    Unavailable,
    /// A peer took too long; retry with backoff.
    DeadlineExceeded,
    /// Rate limited; retry after the advertised delay.
    ResourceExhausted,
    /// The operation was cancelled by shutdown.
    Cancelled,
    /// The system is not in a state that allows this (e.g. camera offline).
    FailedPrecondition,
    /// A bug or an unexpected answer.
    Internal,
}

impl ErrorKind {
    /// Whether an operation that failed with this kind is worth retrying later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::DeadlineExceeded | ErrorKind::ResourceExhausted
        )
    }

    /// The HTTP status the web layer answers with for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::FailedPrecondition => 409,
            ErrorKind::ResourceExhausted => 429,
            ErrorKind::Cancelled => 503,
            ErrorKind::Unavailable => 502,
            ErrorKind::DeadlineExceeded => 504,
            ErrorKind::Internal => 500,
        }
    }

    /// A stable snake_case name, used as the `error` field of JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::ResourceExhausted => "resource_exhausted",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::FailedPrecondition => "failed_precondition",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats an error with its whole `source()` chain, `a: b: c`, for logging once
/// where the error is handled.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Implemented by every layer's error so callers can branch on the kind alone.
pub trait ResultExt {
    /// The kind of this error.
    fn kind(&self) -> ErrorKind;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        assert!(ErrorKind::Unavailable.is_retryable());
        assert!(!ErrorKind::Unauthenticated.is_retryable());
        assert_eq!(ErrorKind::NotFound.http_status(), 404);
    }

    #[test]
    fn chain_joins_sources() {
        let inner = std::io::Error::other("disk full");
        #[derive(Debug, thiserror::Error)]
        #[error("saving token")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(chain(&Outer(inner)), "saving token: disk full");
    }
}
