//! Browser-borne attacks the password cannot stop, checked before access
//! control on every request:
//!
//! - **DNS rebinding**: a page on `attacker.example` whose name is re-pointed at
//!   127.0.0.1 reads the API as same-origin. Requests are only answered when
//!   `Host` is an IP address, `localhost` / `*.localhost`, a name in
//!   `http.allowed_hosts`, or comes through the trusted ingress proxy. Anything
//!   else gets 403 and never reaches a handler.
//! - **Cross-site requests** (CSRF): a page on another origin can send a
//!   `no-cors` POST with a "simple" body (`text/plain`, a form). State-changing
//!   requests (anything but GET, HEAD and OPTIONS) are refused when their
//!   `Origin` is not this server or the browser marks them
//!   `Sec-Fetch-Site: cross-site`; a POST also when it carries a body type a
//!   cross-site page can send without a CORS preflight (a WHEP offer's handler
//!   demands `application/sdp` itself). JSON, SDP and ICE fragments need a
//!   preflight, which we never grant.
//!
//! The first rejection per client and reason is logged at INFO; repeats are
//! counted ([`LogThrottle`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::info;

use super::ApiError;
use super::access::client_ip;
use crate::base::ErrorKind;
use crate::base::log_throttle::{LogThrottle, Verdict};

/// Body types a cross-site page may send without a CORS preflight (Fetch
/// standard, "CORS-safelisted request-header" `Content-Type`).
const SIMPLE_BODY_TYPES: &[&str] = &[
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
];

/// The rules, built once from the configuration.
#[derive(Debug)]
pub struct Guard {
    /// Lower-case host names allowed besides IPs and `localhost`.
    allowed_hosts: Vec<String>,
    /// `*` in `http.allowed_hosts`: no Host check.
    any_host: bool,
    /// Requests from this peer with `X-Ingress-Path` are Home Assistant ingress.
    ingress_proxy: Option<IpAddr>,
    /// First rejection per client and reason at INFO.
    log: LogThrottle,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` names a host we do not serve.
    UnknownHost,
    /// `Origin` (or `Sec-Fetch-Site`) shows another site sent it.
    CrossOrigin,
    /// A state-changing request with a body type needing no preflight.
    SimpleBody,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownHost => "unknown host",
            Refusal::CrossOrigin => "cross-origin",
            Refusal::SimpleBody => "simple body type",
        }
    }
}

impl Guard {
    /// Rules for `allowed_hosts` (`http.allowed_hosts`) and the ingress proxy.
    pub fn new(allowed_hosts: &[String], ingress_proxy: Option<IpAddr>) -> Guard {
        Guard {
            any_host: allowed_hosts.iter().any(|h| h == "*"),
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            ingress_proxy,
            log: LogThrottle::new(Duration::from_secs(600)),
        }
    }

    fn via_ingress(&self, ip: IpAddr, headers: &HeaderMap) -> bool {
        self.ingress_proxy.is_some_and(|p| p.to_canonical() == ip)
            && headers.contains_key("x-ingress-path")
    }

    /// Whether `host` (a `Host` header value, port allowed) is served.
    fn host_allowed(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        let name = authority_host(host);
        if name.parse::<IpAddr>().is_ok() {
            return true; // an IP cannot be rebound
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name == "localhost" || name.ends_with(".localhost") || self.allowed_hosts.contains(&name)
    }

    /// Checks a request from `ip`; `None` lets it through.
    pub fn check(
        &self,
        ip: IpAddr,
        method: &Method,
        path: &str,
        uri_host: Option<&str>,
        headers: &HeaderMap,
    ) -> Option<Refusal> {
        let ingress = self.via_ingress(ip, headers);
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or(uri_host);
        if !ingress && host.is_some_and(|h| !self.host_allowed(h)) {
            return Some(Refusal::UnknownHost);
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return None;
        }
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if fetch_site.is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
            return Some(Refusal::CrossOrigin);
        }
        // Home Assistant's frontend (another origin) talks to us through ingress.
        if !ingress && let Some(origin) = headers.get(header::ORIGIN) {
            let same = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .zip(host)
                .is_some_and(|((_, authority), host)| authority.eq_ignore_ascii_case(host));
            if !same {
                return Some(Refusal::CrossOrigin);
            }
        }
        // Only POST can carry a body cross-site without a preflight. A WHEP offer
        // must be `application/sdp`, which its handler checks itself (415).
        if *method != Method::POST || path.ends_with("/whep") {
            return None;
        }
        let simple = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|ct| {
                SIMPLE_BODY_TYPES
                    .iter()
                    .any(|s| ct.trim().eq_ignore_ascii_case(s))
            });
        simple.then_some(Refusal::SimpleBody)
    }

    /// Logs a refused request at INFO the first time per client and `reason`
    /// (again after 10 minutes, with the count of those left out). Used for this
    /// guard's refusals and for limits elsewhere in `web` (WHEP offers, the
    /// session cap).
    pub fn note_refusal(&self, ip: IpAddr, reason: &str, path: &str) {
        if let Verdict::Log { suppressed } = self.log.check(&format!("{ip} {reason}")) {
            info!(client = %ip, reason, path, suppressed, "request refused");
        }
    }
}

/// `example:3000` → `example`, `[::1]:3000` → `::1`, `::1` stays.
fn authority_host(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match h.rsplit_once(':') {
        // More than one ':' without brackets: a bare IPv6 address.
        Some((host, _)) if !host.contains(':') => host,
        _ => h,
    }
}

/// axum middleware applying [`Guard`] to every request.
pub async fn enforce(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = client_ip(peer);
    let Some(why) = guard.check(
        ip,
        req.method(),
        req.uri().path(),
        req.uri().host(),
        req.headers(),
    ) else {
        return next.run(req).await;
    };
    guard.note_refusal(ip, why.as_str(), req.uri().path());
    let err = match why {
        Refusal::UnknownHost => ApiError::new(
            ErrorKind::PermissionDenied,
            "this host name is not served; use the IP address, or add the name to \
             http.allowed_hosts (HTTP_ALLOWED_HOSTS)",
        ),
        Refusal::CrossOrigin => ApiError::new(
            ErrorKind::PermissionDenied,
            "cross-origin requests that change state are refused",
        ),
        Refusal::SimpleBody => ApiError::bad_request(
            "requests that change state must send Content-Type: application/json \
             (or the WHEP SDP types), or no body",
        ),
    };
    err.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const LAN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 20));

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn host_names() {
        let g = Guard::new(&["NAS.local".into()], Some("172.30.32.2".parse().unwrap()));
        let get = |host| g.check(LAN, &Method::GET, "/", None, &headers(&[("host", host)]));
        for ok in [
            "127.0.0.1:3000",
            "[::1]:3000",
            "::1",
            "localhost:3000",
            "app.localhost",
            "192.168.1.5",
            "nas.local:3000",
            "nas.local.",
        ] {
            assert_eq!(get(ok), None, "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:3000",
            "127.0.0.1.nip.io",
        ] {
            assert_eq!(get(bad), Some(Refusal::UnknownHost), "{bad}");
        }
        assert_eq!(
            g.check(LAN, &Method::GET, "/", None, &HeaderMap::new()),
            None
        );
        let proxy: IpAddr = "172.30.32.2".parse().unwrap();
        let ingress = headers(&[("host", "a0d7b954-ring-bridge"), ("x-ingress-path", "/x")]);
        assert_eq!(g.check(proxy, &Method::GET, "/", None, &ingress), None);
        assert_eq!(
            g.check(LAN, &Method::GET, "/", None, &ingress),
            Some(Refusal::UnknownHost)
        );
        let any = Guard::new(&["*".into()], None);
        assert_eq!(
            any.check(
                LAN,
                &Method::GET,
                "/",
                None,
                &headers(&[("host", "x.example")])
            ),
            None
        );
    }

    #[test]
    fn cross_site_writes() {
        let g = Guard::new(&[], None);
        let post = |list: &[(&'static str, &'static str)]| {
            let mut all = vec![("host", "127.0.0.1:3000")];
            all.extend_from_slice(list);
            g.check(LAN, &Method::POST, "/api/ingest/stop", None, &headers(&all))
        };
        assert_eq!(post(&[]), None, "curl without a body");
        assert_eq!(post(&[("content-type", "application/json")]), None);
        assert_eq!(
            post(&[
                ("origin", "http://127.0.0.1:3000"),
                ("content-type", "application/sdp")
            ]),
            None
        );
        assert_eq!(
            post(&[("origin", "http://evil.example")]),
            Some(Refusal::CrossOrigin)
        );
        assert_eq!(post(&[("origin", "null")]), Some(Refusal::CrossOrigin));
        assert_eq!(
            post(&[("sec-fetch-site", "cross-site")]),
            Some(Refusal::CrossOrigin)
        );
        assert_eq!(
            post(&[("content-type", "text/plain;charset=UTF-8")]),
            Some(Refusal::SimpleBody)
        );
        assert_eq!(
            post(&[("content-type", "application/x-www-form-urlencoded")]),
            Some(Refusal::SimpleBody)
        );
        // Reads are never refused for their origin.
        let h = headers(&[("host", "127.0.0.1"), ("origin", "http://evil.example")]);
        assert_eq!(g.check(LAN, &Method::GET, "/", None, &h), None);
        // PATCH and DELETE need a preflight whatever the body; a WHEP offer's
        // handler demands application/sdp itself.
        let text = headers(&[("host", "127.0.0.1"), ("content-type", "text/plain")]);
        assert_eq!(g.check(LAN, &Method::PATCH, "/x", None, &text), None);
        assert_eq!(
            g.check(
                LAN,
                &Method::POST,
                "/api/webrtc/front-door/whep",
                None,
                &text
            ),
            None
        );
    }
}
