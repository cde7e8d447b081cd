//! `/api/auth`: the linked Ring account for the console (status, login with 2FA,
//! unlink), over [`crate::cameras::Account`]. Contract in `docs/API.md`.
//!
//! POST bodies must be JSON with `Content-Type: application/json`: that makes a
//! cross-site form post impossible (a browser sends that content type across
//! sites only after a CORS preflight, which is not answered). Bodies are read
//! field by field, and no error message ever echoes a value: the password and
//! the code cannot leak through a validation error.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::Value;

use super::{ApiError, WebState};
use crate::base::Secret;
use crate::cameras::{AccountError, Credentials};
use crate::ring::ErrorInner;

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/auth", get(status))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
}

/// Longest accepted e-mail, password and code (characters).
const MAX_EMAIL: usize = 320;
const MAX_PASSWORD: usize = 1024;
const MAX_CODE: usize = 16;

async fn status(State(st): State<WebState>) -> Response {
    Json(st.account.status().await).into_response()
}

async fn login(
    State(st): State<WebState>,
    ci: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let creds = match credentials(&headers, &body) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let peer = ci.map(|Extension(ConnectInfo(a))| a);
    match st
        .account
        .login(super::access::client_ip(peer), &creds)
        .await
    {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => account_error(e),
    }
}

async fn logout(State(st): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = json_object(&headers, &body, true) {
        return e.into_response();
    }
    match st.account.unlink().await {
        Ok(()) => Json(serde_json::json!({
            "status": "unlinked",
            "message": "the Ring account is unlinked; ring-bridge restarts without it",
        }))
        .into_response(),
        Err(e) => account_error(e),
    }
}

/// The error answer, with `Retry-After` for rate limits (ours or Ring's).
fn account_error(e: AccountError) -> Response {
    use crate::base::ResultExt;
    let retry_after = match &e {
        AccountError::RateLimited { retry_after } => Some(retry_after.as_secs()),
        AccountError::Ring(r) => match r.inner() {
            ErrorInner::RateLimited { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        },
        _ => None,
    };
    let api = match e {
        AccountError::Ring(r) => ApiError::from(r),
        other => ApiError::new(other.kind(), crate::base::error::chain(&other)),
    };
    match retry_after {
        Some(s) => api.with_retry_after(s),
        None => api,
    }
    .into_response()
}

/// The JSON object of a POST body; `empty_ok` accepts an empty body.
fn json_object(
    headers: &HeaderMap,
    body: &[u8],
    empty_ok: bool,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::bad_request(
            "send a JSON body with Content-Type: application/json",
        ));
    }
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        // serde_json's syntax errors name a position, never the content.
        Err(e) => Err(ApiError::bad_request(format!(
            "the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

/// A required string field, trimmed unless it is the password.
fn text_field(
    m: &serde_json::Map<String, Value>,
    name: &str,
    max: usize,
    trim: bool,
) -> Result<String, ApiError> {
    match m.get(name) {
        Some(Value::String(s)) => {
            let s = if trim { s.trim() } else { s.as_str() };
            if s.is_empty() {
                Err(ApiError::bad_request(format!("`{name}` is empty")))
            } else if s.chars().count() > max {
                Err(ApiError::bad_request(format!(
                    "`{name}` is longer than {max} characters"
                )))
            } else {
                Ok(s.to_owned())
            }
        }
        None | Some(Value::Null) => Err(ApiError::bad_request(format!("`{name}` is missing"))),
        Some(_) => Err(ApiError::bad_request(format!("`{name}` must be a string"))),
    }
}

/// `{email, password, code?}` from a login body. `code` may be a string or a
/// number; an empty one counts as absent.
fn credentials(headers: &HeaderMap, body: &[u8]) -> Result<Credentials, ApiError> {
    let m = json_object(headers, body, false)?;
    let email = text_field(&m, "email", MAX_EMAIL, true)?;
    let password = Secret::new(text_field(&m, "password", MAX_PASSWORD, false)?);
    let code = match m.get("code") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(_)) => Some(text_field(&m, "code", MAX_CODE, true)?),
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "`code` must be the verification code as a string",
            ));
        }
    };
    if code.as_ref().is_some_and(|c| c.chars().count() > MAX_CODE) {
        return Err(ApiError::bad_request(format!(
            "`code` is longer than {MAX_CODE} characters"
        )));
    }
    Ok(Credentials {
        email,
        password,
        code: code.map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        h
    }

    #[test]
    fn credentials_are_read_and_errors_never_echo_values() {
        let h = json_headers();
        let c = credentials(
            &h,
            br#"{"email":" a@b.c ","password":" pw ","code":123456}"#,
        )
        .unwrap();
        assert_eq!(
            (c.email.as_str(), c.password.expose().as_str()),
            ("a@b.c", " pw ")
        );
        assert_eq!(c.code.unwrap().expose(), "123456");
        let c = credentials(&h, br#"{"email":"a","password":"p","code":""}"#).unwrap();
        assert!(c.code.is_none());

        for (body, want) in [
            (&br#"{"email":"a"}"#[..], "`password` is missing"),
            (
                br#"{"email":"a","password":"p","code":{"x":"hunter2"}}"#,
                "`code` must be",
            ),
            (
                br#"{"email":"a","password":["hunter2"]}"#,
                "must be a string",
            ),
            (br#"{"email":"a","password":"hunter2""#, "not valid JSON"),
            (br#"["hunter2"]"#, "JSON object"),
            (
                br#"{"email":"  ","password":"hunter2"}"#,
                "`email` is empty",
            ),
        ] {
            let e = credentials(&h, body).unwrap_err();
            assert!(e.message.contains(want), "{} vs {want}", e.message);
            assert!(!e.message.contains("hunter2"), "{}", e.message);
        }
        let e = credentials(&HeaderMap::new(), br#"{"email":"a","password":"p"}"#).unwrap_err();
        assert!(e.message.contains("Content-Type: application/json"));
    }
}
