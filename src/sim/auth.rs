//! `POST /oauth/token` (password grant with 2FA, refresh grant with rotation) and
//! the live-view ticket endpoint `POST /api/v1/clap/ticket/request/signalsocket`
//! (ring-api.md §1 and §6.1).
//!
//! Bodies are JSON (dgreif, go2rtc) or form-urlencoded with optional HTTP Basic
//! client auth (python). Like Ring's OAuth server, the token endpoint refuses
//! what no real client sends (docs/SIMULATOR.md, *Strictness*): a body whose
//! `Content-Type` is neither JSON nor form (400 `invalid_request`), a client id
//! other than `ring_official_android` in the body or HTTP Basic, or none at all
//! (401 `invalid_client`), a `scope` other than `client` (400 `invalid_scope`),
//! and a password grant without the `hardware_id` header (400
//! `invalid_request`; python's refresh grant sends none, so refreshes may omit
//! it).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::{SimError, SimResult, is_form, parse_json};
use super::state::SimState;
use super::{DEMO_2FA_CODE, DEMO_EMAIL, DEMO_PASSWORD};

/// The only OAuth client id Ring's public clients use (ring-api.md §1.1).
const CLIENT_ID: &str = "ring_official_android";

/// The fields of a token request we read.
#[derive(Debug, Default, serde::Deserialize)]
struct TokenRequest {
    client_id: Option<String>,
    scope: Option<String>,
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match token_inner(&st, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn token_inner(st: &SimState, headers: &HeaderMap, body: &[u8]) -> SimResult<Response> {
    st.gate("oauth", headers).await?;
    let req: TokenRequest = if is_form(headers) {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| SimError::bad_request(format!("invalid form body: {e}")))?
    } else if is_json(headers) {
        parse_json::<Option<TokenRequest>>(body)?.unwrap_or_default()
    } else {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/json or application/x-www-form-urlencoded",
        ));
    };
    check_client(headers, &req)?;
    if let Some(scope) = req.scope.as_deref()
        && scope.split_whitespace().any(|s| s != "client")
    {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed.",
        ));
    }
    match req.grant_type.as_deref() {
        Some("password") => password_grant(st, headers, &req),
        Some("refresh_token") => refresh_grant(st, &req),
        Some(other) => Err(SimError::with_body(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type",
                   "error_description": format!("grant_type {other:?} is not supported")}),
        )),
        None => Err(SimError::with_body(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "missing grant_type"}),
        )),
    }
}

/// An OAuth error answer `{error, error_description}`.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> SimError {
    SimError::with_body(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// Whether the body is JSON (`application/json`, any parameters, or `+json`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || v.ends_with("+json"))
}

/// The client id from the body or from HTTP Basic (`client_id:` with an empty
/// secret, python's way) must be Ring's Android app.
fn check_client(headers: &HeaderMap, req: &TokenRequest) -> SimResult<()> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.split(':').next().unwrap_or_default().to_owned());
    let ids: Vec<&str> = req
        .client_id
        .as_deref()
        .into_iter()
        .chain(basic.as_deref())
        .collect();
    if ids.is_empty() || ids.iter().any(|id| *id != CLIENT_ID) {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
        ));
    }
    Ok(())
}

fn password_grant(st: &SimState, headers: &HeaderMap, req: &TokenRequest) -> SimResult<Response> {
    let hardware_id = headers
        .get("hardware_id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if hardware_id.is_empty() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the hardware_id header is required",
        ));
    }
    let user_ok = req
        .username
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case(DEMO_EMAIL));
    if !user_ok || req.password.as_deref() != Some(DEMO_PASSWORD) {
        return Err(SimError::with_body(
            StatusCode::UNAUTHORIZED,
            json!({"error": "access_denied", "error_description": "invalid user credentials"}),
        ));
    }
    let code = headers
        .get("2fa-code")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if code.is_empty() {
        return Ok((
            StatusCode::PRECONDITION_FAILED,
            Json(json!({"next_time_in_secs": 60, "phone": "+1xxxxxx89", "tsv_state": "sms"})),
        )
            .into_response());
    }
    if code != DEMO_2FA_CODE {
        return Err(SimError::with_body(
            StatusCode::BAD_REQUEST,
            json!({"error": "Verification Code is invalid or expired"}),
        )
        .header(
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="Ring", error="invalid_request", error_description="Verification Code is invalid or expired""#,
        ));
    }
    Ok(token_answer(st))
}

fn refresh_grant(st: &SimState, req: &TokenRequest) -> SimResult<Response> {
    let token = req.refresh_token.as_deref().unwrap_or("");
    if token.is_empty() || !st.consume_refresh_token(token) {
        return Err(SimError::with_body(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_grant", "error_description": "token is invalid or does not exists"}),
        ));
    }
    Ok(token_answer(st))
}

fn token_answer(st: &SimState) -> Response {
    let (access, refresh) = st.issue_tokens();
    let body = json!({
        "access_token": access,
        "expires_in": st.options().access_token_ttl.as_secs(),
        "refresh_token": refresh,
        "scope": "client",
        "token_type": "Bearer",
        "created_at": super::clock::now_ms() / 1000,
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `POST /api/v1/clap/ticket/request/signalsocket`: Bearer auth, no body; answers
/// `{"ticket": "..."}` (one use, see [`SimState::take_ticket`]).
pub(crate) async fn ticket(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    st.gate("ticket", &headers).await?;
    st.authorize(&headers)?;
    Ok(Json(json!({"ticket": st.issue_ticket()})))
}
