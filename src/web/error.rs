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

/// The `error` field for a status that no handler produced from a kind (axum's
/// own rejections: 405, 413, 415, ...).
fn status_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => ErrorKind::PermissionDenied.as_str(),
        404 => ErrorKind::NotFound.as_str(),
        405 => "method_not_allowed",
        408 => ErrorKind::DeadlineExceeded.as_str(),
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => ErrorKind::ResourceExhausted.as_str(),
        431 => "headers_too_large",
        400..=499 => ErrorKind::InvalidArgument.as_str(),
        502 | 503 => ErrorKind::Unavailable.as_str(),
        504 => ErrorKind::DeadlineExceeded.as_str(),
        _ => ErrorKind::Internal.as_str(),
    }
}

/// The `{error, message}` body for `status` when no handler chose a kind.
pub(super) fn error_body(status: StatusCode, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": status_kind(status), "message": message })
}

/// Longest plain-text rejection message carried over into the JSON body.
const MAX_TEXT_MESSAGE: usize = 2048;

/// Middleware: every error answer has the `{error, message}` JSON shape. Errors
/// our handlers make already have it; axum's own rejections (body too large,
/// method not allowed, bad JSON or path) come as text or empty and are rewritten
/// here, keeping status and headers (`Allow`, `Retry-After`).
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let status = resp.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body may be unread: the connection cannot be reused,
        // and saying so keeps clients from sending the next request into it.
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, MAX_TEXT_MESSAGE).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() || text.starts_with('<') {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let body = error_body(status, &message);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}
