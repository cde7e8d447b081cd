//! The HTTP error body `{error, message}` and the mapping from error kinds to
//! statuses (modelled on moonfire-nvr's `from_base_error`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::base::error::chain;
use crate::base::{ErrorKind, ResultExt};

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    /// Kind: decides status and the `error` field.
    pub kind: ErrorKind,
    /// Human-readable message.
    pub message: String,
    /// `Retry-After` seconds for rate limits.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// With a `Retry-After` header of `secs` (at least 1).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
}

impl From<crate::ring::Error> for ApiError {
    fn from(e: crate::ring::Error) -> Self {
        let kind = match e.kind() {
            // Ring could not be reached or said no: from our client's view that
            // is a bad gateway, except auth, which needs the person.
            ErrorKind::Unauthenticated => ErrorKind::Unauthenticated,
            ErrorKind::NotFound => ErrorKind::NotFound,
            ErrorKind::ResourceExhausted => ErrorKind::ResourceExhausted,
            ErrorKind::DeadlineExceeded => ErrorKind::DeadlineExceeded,
            ErrorKind::FailedPrecondition => ErrorKind::FailedPrecondition,
            _ => ErrorKind::Unavailable,
        };
        ApiError::new(kind, chain(&e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), err = %self.message, "request failed");
        }
        let body = serde_json::json!({ "error": self.kind.as_str(), "message": self.message });
        let mut resp = (status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        resp
    }
}
