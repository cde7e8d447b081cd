//! [`SimError`]: every error answer of the simulator, as a JSON body with a status
//! and optional extra headers, plus small request-parsing helpers that turn bad
//! input into clear 4xx JSON instead of axum's plain-text rejections.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// An error answer: status, JSON body and extra headers.
#[derive(Debug)]
pub struct SimError {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Value,
    /// Extra headers (`Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(HeaderName, String)>,
}

impl SimError {
    /// An answer with body `{"error": msg}`.
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        SimError {
            status,
            body: json!({ "error": msg.into() }),
            headers: Vec::new(),
        }
    }

    /// An answer with a given JSON body.
    pub fn with_body(status: StatusCode, body: Value) -> Self {
        SimError {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// 400 with `{"error": msg}`.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        SimError::new(StatusCode::BAD_REQUEST, msg)
    }

    /// 404 with `{"error": msg}`.
    pub fn not_found(msg: impl Into<String>) -> Self {
        SimError::new(StatusCode::NOT_FOUND, msg)
    }

    /// 401 for a missing, unknown or expired access token.
    pub fn unauthorized() -> Self {
        SimError::with_body(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Unauthorized", "error_description": "access token is missing, invalid or expired"}),
        )
    }

    /// 404 with Ring's `errors` code list: 7019 is ASSET_OFFLINE (ring-api.md §1.6).
    pub fn camera_offline(id: u64) -> Self {
        SimError::with_body(
            StatusCode::NOT_FOUND,
            json!({"error": format!("device {id} is offline"), "errors": [7019]}),
        )
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().append(name, v);
            }
        }
        resp
    }
}

/// Result of a simulator handler.
pub type SimResult<T> = Result<T, SimError>;

/// Parses a JSON body; an empty body parses as `null` (Ring clients send PUTs
/// without payload as JSON `null`).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> SimResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| SimError::bad_request(format!("invalid JSON body: {e}")))
}

/// Parses a JSON body that must be an object (or empty, giving `{}`).
pub fn parse_object(body: &[u8]) -> SimResult<serde_json::Map<String, Value>> {
    match parse_json::<Value>(body)? {
        Value::Null => Ok(serde_json::Map::new()),
        Value::Object(m) => Ok(m),
        _ => Err(SimError::bad_request("JSON body must be an object")),
    }
}

/// Parses a numeric id from a path segment.
pub fn parse_id(what: &str, s: &str) -> SimResult<u64> {
    s.parse()
        .map_err(|_| SimError::bad_request(format!("invalid {what} id {s:?}: expected a number")))
}

/// Query pairs in request order (`axum::extract::Query<Pairs>`).
pub type Pairs = Vec<(String, String)>;

/// Whether the request body is form-urlencoded.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Parses a JSON-or-form value: `"true"`, `"12"` and `"x"` become typed JSON.
pub fn form_value(s: &str) -> Value {
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => s
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(s.to_string())),
    }
}

/// Deep-merges `patch` into `target` (objects merge, everything else replaces).
pub fn merge_json(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge_json(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_deep() {
        let mut a = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge_json(&mut a, &json!({"a": {"b": 5}, "e": true}));
        assert_eq!(a, json!({"a": {"b": 5, "c": 2}, "d": 3, "e": true}));
    }

    #[test]
    fn empty_body_is_null() {
        assert_eq!(parse_object(b"").map(|m| m.len()).ok(), Some(0));
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_json::<Value>(b"{bad").is_err());
    }
}
