//! Fault injection (`POST /_sim/faults`): the endpoint names requests are
//! counted under and [`SimState::gate`], which every handler
//! calls first to count its request and apply a matching fault (latency, error
//! status, `Retry-After`).

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::error::{SimError, SimResult};
use super::state::{Fault, Inner, SimState, session_not_found_body};

/// Endpoint names accepted in fault specs and counted in `requests`.
pub const ENDPOINTS: &[&str] = &[
    "oauth",
    "session",
    "ring_devices",
    "profile",
    "locations",
    "health",
    "light",
    "siren",
    "device_settings",
    "doorbot_settings",
    "dings_active",
    "push_register",
    "subscribe",
    "history",
    "recording",
    "media",
    "snapshot",
    "ticket",
    "groups",
];

impl SimState {
    /// Counts a request to `endpoint` and applies any matching fault: sleeps the
    /// fault's latency, then fails with its status when it has one.
    pub(crate) async fn gate(&self, endpoint: &'static str, headers: &HeaderMap) -> SimResult<()> {
        let fault = {
            let mut inner = self.lock();
            *inner.requests.entry(endpoint.to_string()).or_default() += 1;
            inner.take_fault(endpoint)
        };
        let Some(fault) = fault else { return Ok(()) };
        if let Some(ms) = fault.latency_ms {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                () = self.cancel.cancelled() => {}
            }
        }
        let Some(status) = fault.status else {
            return Ok(());
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = fault
            .body
            .clone()
            .unwrap_or_else(|| default_fault_body(status, headers));
        let mut err = SimError::with_body(status, body);
        if status == StatusCode::TOO_MANY_REQUESTS || fault.retry_after_s.is_some() {
            err = err.header(
                header::RETRY_AFTER,
                fault.retry_after_s.unwrap_or(1).to_string(),
            );
        }
        Err(err)
    }
}

impl Inner {
    fn take_fault(&mut self, endpoint: &str) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|f| f.endpoint == endpoint || f.endpoint == "*")?;
        let f = self.faults[i].clone();
        if let Some(n) = &mut self.faults[i].count {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.faults.remove(i);
            }
        }
        Some(f)
    }
}

fn default_fault_body(status: StatusCode, headers: &HeaderMap) -> Value {
    let reason = status.canonical_reason().unwrap_or("error");
    if status == StatusCode::NOT_FOUND {
        let hid = headers
            .get("hardware_id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        let mut body = session_not_found_body(hid);
        body["sim_fault"] = json!(true);
        return body;
    }
    json!({"error": reason, "status": status.as_u16(), "sim_fault": true})
}
