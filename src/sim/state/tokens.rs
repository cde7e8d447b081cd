//! Who may call the simulator: access tokens and single-use refresh tokens
//! (rotation), live-view tickets, and Ring's clients API session rule.
//! Methods of [`SimState`] over its one lock.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Inner, SimState, random_token};
use crate::sim::error::{SimError, SimResult};

/// How long an issued signalling ticket stays valid.
const TICKET_TTL: Duration = Duration::from_secs(300);

impl SimState {
    /// Mints a valid refresh token (single use, like every refresh token), so a
    /// daemon pointed at the simulator without a stored token can log in.
    /// Increments `token_generation`.
    pub fn bootstrap_refresh_token(&self) -> String {
        self.lock().issue_refresh_token()
    }

    /// Consumes a signalling ticket issued by `POST /api/v1/clap/ticket/request/signalsocket`.
    /// Returns `true` once per valid, unexpired ticket.
    pub fn take_ticket(&self, ticket: &str) -> bool {
        let mut inner = self.lock();
        match inner.tickets.remove(ticket) {
            Some(expires) => Instant::now() < expires,
            None => false,
        }
    }

    /// Checks the `Authorization: Bearer` access token.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> SimResult<()> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(SimError::unauthorized)?;
        let mut inner = self.lock();
        match inner.access_tokens.get(token) {
            Some(exp) if Instant::now() < *exp => {}
            Some(_) => {
                inner.access_tokens.remove(token);
                return Err(SimError::unauthorized());
            }
            None => return Err(SimError::unauthorized()),
        }
        if let Some(hid) = headers.get("hardware_id").and_then(|v| v.to_str().ok())
            && !hid.is_empty()
            && !inner.hardware_ids.contains(hid)
        {
            inner.hardware_ids.insert(hid.to_string());
        }
        Ok(())
    }

    /// [`SimState::authorize`] plus Ring's session rule for clients API paths:
    /// without a session for the request's `hardware_id` (while sessions are
    /// required) the answer is 404 `{"error":"Session not found for hardware_id
    /// <id>"}` (ring-api.md §1.5).
    pub(crate) fn authorize_client(&self, headers: &HeaderMap) -> SimResult<()> {
        self.authorize(headers)?;
        let hid = headers
            .get("hardware_id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let inner = self.lock();
        if inner.require_session && !inner.sessions.contains(hid) {
            return Err(SimError::with_body(
                StatusCode::NOT_FOUND,
                session_not_found_body(hid),
            ));
        }
        Ok(())
    }

    /// Issues an access + refresh token pair (the refresh grant's answer).
    pub(crate) fn issue_tokens(&self) -> (String, String) {
        let ttl = self.opts.access_token_ttl;
        let mut inner = self.lock();
        let access = random_token(32);
        inner
            .access_tokens
            .insert(access.clone(), Instant::now() + ttl);
        let refresh = inner.issue_refresh_token();
        (access, refresh)
    }

    /// Consumes a refresh token; `true` when it was valid (rotation: single use).
    pub(crate) fn consume_refresh_token(&self, token: &str) -> bool {
        self.lock().refresh_tokens.remove(token)
    }

    /// Issues a signalling ticket.
    pub(crate) fn issue_ticket(&self) -> String {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.tickets.retain(|_, exp| *exp > now);
        let t = random_token(24);
        inner.tickets.insert(t.clone(), now + TICKET_TTL);
        inner.tickets_issued += 1;
        t
    }
}

impl Inner {
    /// Mints a single-use refresh token; increments `token_generation`.
    pub(crate) fn issue_refresh_token(&mut self) -> String {
        let t = random_token(48);
        self.refresh_tokens.insert(t.clone());
        self.token_generation += 1;
        t
    }
}

/// Ring's "session is gone" answer, which names the hardware id (ring-api.md §1.5).
pub(crate) fn session_not_found_body(hardware_id: &str) -> Value {
    json!({"error": format!("Session not found for hardware_id {hardware_id}")})
}
