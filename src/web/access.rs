//! Who may use the console and the API.
//!
//! - With a password (`http.password`, HTTP Basic) or an API token
//!   (`http.api_token`, `Authorization: Bearer`), every request except
//!   `/healthz` must carry one of them.
//! - Without credentials the console is open only when it listens on loopback
//!   or `http.allow_unauthenticated` is set (start-up refuses anything else;
//!   the daemon checks that before it builds the [`AccessOptions`]).
//! - A trusted ingress proxy (`http.ingress_proxy`, Home Assistant's Supervisor)
//!   authenticates users itself: its requests carrying `X-Ingress-Path` pass.
//!   Everyone else needs credentials, or is told to use Home Assistant.
//!
//! Credentials are compared in constant time and never logged. A client that
//! sends wrong credentials 10 times in 5 minutes gets 429 (`Retry-After`) until
//! its oldest failure leaves the window, whatever it sends. More than 1000 wrong
//! attempts in 5 minutes over all clients make every further *wrong* attempt a
//! 429 as well; a client with the right credentials that has not failed itself
//! is always let in.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::base::login_limit::{LoginLimiter, LoginLimits};
use crate::base::{ErrorKind, Secret};

/// Paths that never need credentials (container health checks).
const OPEN_PATHS: &[&str] = &["/healthz"];

/// What [`Access::new`] builds the rule from (the daemon maps `[http]` and
/// `network.listen_ip` here).
#[derive(Clone, Debug)]
pub struct AccessOptions {
    /// User name of HTTP Basic (`http.username`).
    pub username: String,
    /// Password of HTTP Basic; `None`: Basic is off.
    pub password: Option<Secret<String>>,
    /// Bearer token; `None`: tokens are off.
    pub api_token: Option<Secret<String>>,
    /// The HTTP listen address: on loopback, no credentials means open.
    pub listen_ip: IpAddr,
    /// Open without credentials on any address (`http.allow_unauthenticated`).
    pub allow_unauthenticated: bool,
    /// The trusted ingress proxy (`http.ingress_proxy`).
    pub ingress_proxy: Option<IpAddr>,
}

/// The access rule, built once at start-up.
#[derive(Clone, Debug)]
pub struct Access {
    username: String,
    password: Option<Secret<String>>,
    api_token: Option<Secret<String>>,
    /// No credentials configured and that is allowed (loopback or explicit).
    open: bool,
    ingress_proxy: Option<IpAddr>,
    /// Wrong-credential attempts per client.
    failures: Arc<LoginLimiter>,
}

/// What a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Serve it.
    Allow,
    /// 401 with a Basic challenge: credentials missing or wrong.
    Challenge,
    /// 403: no credentials are configured; only the ingress proxy may enter.
    IngressOnly,
    /// 429: this client sent too many wrong credentials; retry after this.
    TooManyFailures(Duration),
}

/// Wrong console credentials allowed per client IP and window before 429.
const FAILURE_LIMITS: LoginLimits = LoginLimits {
    per_ip: 10,
    global: 1000,
    window: Duration::from_secs(300),
};

impl Access {
    /// The rule for `opts`: open when no credentials are set and the console
    /// listens on loopback or may be open anyway.
    pub fn new(opts: AccessOptions) -> Access {
        let has_credentials = opts.password.is_some() || opts.api_token.is_some();
        Access {
            open: !has_credentials && (opts.listen_ip.is_loopback() || opts.allow_unauthenticated),
            username: opts.username,
            password: opts.password,
            api_token: opts.api_token,
            ingress_proxy: opts.ingress_proxy,
            failures: Arc::new(LoginLimiter::new(FAILURE_LIMITS)),
        }
    }

    /// One line for the start-up log: how requests are admitted (no secrets).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.open {
            parts.push("open (no credentials)");
        }
        if self.password.is_some() {
            parts.push("password (HTTP Basic)");
        }
        if self.api_token.is_some() {
            parts.push("API token (Bearer)");
        }
        if self.ingress_proxy.is_some() {
            parts.push("trusted ingress proxy");
        }
        parts.join(" + ")
    }

    fn via_ingress(&self, ip: IpAddr, headers: &HeaderMap) -> bool {
        self.ingress_proxy
            .is_some_and(|proxy| proxy.to_canonical() == ip)
            && headers.contains_key("x-ingress-path")
    }

    /// Whether a request from `ip` with `headers` would be admitted to any path
    /// (open console, ingress, or valid credentials), without counting a
    /// failure. `/healthz` shows details only to such requests.
    pub fn trusts(&self, ip: IpAddr, headers: &HeaderMap) -> bool {
        self.open
            || self.via_ingress(ip, headers)
            || headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| self.accepts(v))
    }

    /// Decides for a request from `ip` (see [`client_ip`]) to `path` with
    /// `headers`.
    pub fn decide(&self, ip: IpAddr, path: &str, headers: &HeaderMap) -> Decision {
        if self.open || OPEN_PATHS.contains(&path) || self.via_ingress(ip, headers) {
            return Decision::Allow;
        }
        if self.password.is_none() && self.api_token.is_none() {
            return Decision::IngressOnly;
        }
        let Some(given) = headers.get(header::AUTHORIZATION) else {
            return Decision::Challenge;
        };
        // A client over its own limit is refused before its credentials are
        // compared, so it cannot keep guessing. The daemon-wide limit never
        // refuses a client that has not failed itself: guesses spread over many
        // addresses cannot lock the owner out.
        if let Err(wait) = self.failures.check_ip(ip) {
            return Decision::TooManyFailures(wait);
        }
        if given.to_str().is_ok_and(|v| self.accepts(v)) {
            return Decision::Allow;
        }
        match self.failures.record_failure(ip) {
            Ok(()) => Decision::Challenge,
            Err(wait) => Decision::TooManyFailures(wait),
        }
    }

    /// Whether an `Authorization` header value carries valid credentials.
    fn accepts(&self, value: &str) -> bool {
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self
                .api_token
                .as_ref()
                .is_some_and(|t| same(t.expose(), rest));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Some(password) = &self.password else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        let Ok(pair) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, pass)) = pair.split_once(':') else {
            return false;
        };
        // Evaluate both so timing does not tell which one was wrong.
        let user_ok = same(&self.username, user);
        let pass_ok = same(password.expose(), pass);
        user_ok & pass_ok
    }
}

/// The client's address for access decisions and rate limits: IPv4-mapped
/// IPv6 folded to IPv4; `0.0.0.0` when unknown.
pub(crate) fn client_ip(peer: Option<SocketAddr>) -> IpAddr {
    peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip().to_canonical())
}

/// The peer address as a handler extractor (absent in unit tests without a
/// connection).
pub(crate) type Peer = Option<axum::Extension<ConnectInfo<SocketAddr>>>;

/// [`client_ip`] of a [`Peer`].
pub(crate) fn peer_ip(peer: &Peer) -> IpAddr {
    client_ip(peer.as_ref().map(|p| p.0.0))
}

/// Constant-time string equality (the length may leak, the content does not).
fn same(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// axum middleware applying [`Access`] to every request.
pub async fn enforce(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    match access.decide(client_ip(peer), req.uri().path(), req.headers()) {
        Decision::Allow => next.run(req).await,
        // Not ErrorKind::Unauthenticated: that one means Ring wants a new login,
        // and the console tells the two apart by `error`.
        Decision::Challenge => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ring-bridge\", charset=\"UTF-8\""),
            )],
            axum::Json(serde_json::json!({
                "error": "unauthorized",
                "message": "this ring-bridge needs a password (HTTP Basic) or an API token (Authorization: Bearer)",
            })),
        )
            .into_response(),
        Decision::TooManyFailures(wait) => ApiError::new(
            ErrorKind::ResourceExhausted,
            format!(
                "too many wrong passwords from this address; try again in {} s",
                wait.as_secs()
            ),
        )
        .with_retry_after(wait.as_secs())
        .into_response(),
        Decision::IngressOnly => ApiError::new(
            ErrorKind::PermissionDenied,
            "open ring-bridge from Home Assistant (sidebar), or set a console password in the add-on options to use it directly",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options as the daemon maps these environment settings.
    fn opts(env: &[(&str, &str)]) -> AccessOptions {
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        AccessOptions {
            username: "admin".into(),
            password: get("HTTP_PASSWORD").map(|p| Secret::new(p.to_owned())),
            api_token: get("HTTP_API_TOKEN").map(|t| Secret::new(t.to_owned())),
            listen_ip: get("LISTEN_IP").unwrap().parse().unwrap(),
            allow_unauthenticated: get("ALLOW_UNAUTHENTICATED") == Some("true"),
            ingress_proxy: get("INGRESS_PROXY_IP").map(|ip| ip.parse().unwrap()),
        }
    }

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn basic(user: &str, pass: &str) -> HeaderMap {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        auth(&format!("Basic {b}"))
    }

    const LAN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 20));

    #[test]
    fn password_and_token() {
        let a = Access::new(opts(&[
            ("LISTEN_IP", "0.0.0.0"),
            ("HTTP_PASSWORD", "s3cret pass"),
            ("HTTP_API_TOKEN", "tok"),
        ]));
        let none = HeaderMap::new();
        assert_eq!(a.decide(LAN, "/api/cameras", &none), Decision::Challenge);
        assert_eq!(a.decide(LAN, "/healthz", &none), Decision::Allow);
        assert_eq!(
            a.decide(LAN, "/", &basic("admin", "s3cret pass")),
            Decision::Allow
        );
        assert_eq!(
            a.decide(LAN, "/", &basic("admin", "wrong")),
            Decision::Challenge
        );
        assert_eq!(
            a.decide(LAN, "/", &basic("root", "s3cret pass")),
            Decision::Challenge
        );
        assert_eq!(a.decide(LAN, "/", &auth("Bearer tok")), Decision::Allow);
        assert_eq!(a.decide(LAN, "/", &auth("bearer  tok ")), Decision::Allow);
        assert_eq!(
            a.decide(LAN, "/", &auth("Bearer tok2")),
            Decision::Challenge
        );
        assert_eq!(a.decide(LAN, "/", &auth("Basic !!!")), Decision::Challenge);
        assert_eq!(a.decide(LAN, "/", &auth("Digest x")), Decision::Challenge);
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_wrong_passwords_are_throttled_per_client() {
        let a = Access::new(opts(&[("LISTEN_IP", "0.0.0.0"), ("HTTP_PASSWORD", "pw")]));
        for _ in 0..10 {
            assert_eq!(
                a.decide(LAN, "/", &basic("admin", "guess")),
                Decision::Challenge
            );
        }
        let Decision::TooManyFailures(wait) = a.decide(LAN, "/", &basic("admin", "guess")) else {
            panic!("after 10 wrong passwords the next attempt is refused");
        };
        assert_eq!(wait, Duration::from_secs(300));
        assert!(
            matches!(
                a.decide(LAN, "/", &basic("admin", "pw")),
                Decision::TooManyFailures(_)
            ),
            "even the right password waits"
        );
        let other: IpAddr = "192.168.1.21".parse().unwrap();
        assert_eq!(a.decide(other, "/", &basic("admin", "pw")), Decision::Allow);
        // No credentials: the challenge, so browsers can prompt later.
        assert_eq!(a.decide(LAN, "/", &HeaderMap::new()), Decision::Challenge);
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(a.decide(LAN, "/", &basic("admin", "pw")), Decision::Allow);
    }

    #[tokio::test(start_paused = true)]
    async fn guesses_from_many_addresses_never_lock_the_owner_out() {
        let a = Access::new(opts(&[
            ("LISTEN_IP", "0.0.0.0"),
            ("HTTP_PASSWORD", "pw"),
            ("HTTP_API_TOKEN", "tok"),
        ]));
        for i in 0..130u8 {
            let ip = IpAddr::from([127, 0, 1, i]);
            for _ in 0..10 {
                assert_ne!(a.decide(ip, "/", &basic("admin", "guess")), Decision::Allow);
            }
        }
        let owner: IpAddr = "127.0.2.1".parse().unwrap();
        assert_eq!(a.decide(owner, "/", &basic("admin", "pw")), Decision::Allow);
        assert_eq!(a.decide(owner, "/", &auth("Bearer tok")), Decision::Allow);
        // Wrong guesses from a fresh address are refused while the flood lasts.
        assert!(matches!(
            a.decide(owner, "/", &basic("admin", "guess")),
            Decision::TooManyFailures(_)
        ));
        assert!(a.trusts(owner, &basic("admin", "pw")));
        assert!(!a.trusts(owner, &basic("admin", "guess")));
    }

    #[test]
    fn loopback_and_explicit_opt_out_are_open() {
        let none = HeaderMap::new();
        let local = Access::new(opts(&[("LISTEN_IP", "127.0.0.1")]));
        assert_eq!(local.decide(LAN, "/api/cameras", &none), Decision::Allow);
        let lan = Access::new(opts(&[
            ("LISTEN_IP", "0.0.0.0"),
            ("ALLOW_UNAUTHENTICATED", "true"),
        ]));
        assert_eq!(lan.decide(LAN, "/api/cameras", &none), Decision::Allow);
        // Credentials on loopback are still enforced.
        let locked = Access::new(opts(&[("LISTEN_IP", "127.0.0.1"), ("HTTP_PASSWORD", "pw")]));
        assert_eq!(locked.decide(LAN, "/", &none), Decision::Challenge);
    }

    #[test]
    fn ingress_proxy_is_trusted_only_with_its_header() {
        let a = Access::new(opts(&[
            ("LISTEN_IP", "0.0.0.0"),
            ("INGRESS_PROXY_IP", "172.30.32.2"),
        ]));
        let proxy: IpAddr = "172.30.32.2".parse().unwrap();
        let mapped = client_ip(Some("[::ffff:172.30.32.2]:4000".parse().unwrap()));
        let mut ingress = HeaderMap::new();
        ingress.insert(
            "x-ingress-path",
            HeaderValue::from_static("/api/hassio_ingress/abc"),
        );
        assert_eq!(a.decide(proxy, "/", &ingress), Decision::Allow);
        assert_eq!(a.decide(mapped, "/", &ingress), Decision::Allow);
        assert_eq!(
            a.decide(proxy, "/", &HeaderMap::new()),
            Decision::IngressOnly
        );
        assert_eq!(a.decide(LAN, "/", &ingress), Decision::IngressOnly);
        assert_eq!(
            a.decide(client_ip(None), "/", &ingress),
            Decision::IngressOnly
        );
    }
}
