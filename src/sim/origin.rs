//! The origin (`scheme://host[:port]`) of the absolute URLs the simulator hands
//! out: signed recording and thumbnail URLs (ring-api.md §4). Real Ring hands out
//! absolute `https` URLs, so behind a TLS reverse proxy the simulator must not
//! answer with `http://`.
//!
//! In order: [`SimOptions::public_url`](super::SimOptions::public_url) (`sim
//! --public-url`), the RFC 7239 `Forwarded` header (`proto=`, `host=` of its first
//! element), `X-Forwarded-Proto` / `X-Forwarded-Host`, then `http://` plus the
//! request's `Host`. Header values that are not a plain scheme or host are ignored.

use axum::http::{HeaderMap, header};

use super::state::SimState;

/// The origin for URLs in the answer to a request with `headers`, without a
/// trailing slash (e.g. `https://api.ring.com`).
pub(crate) fn origin(st: &SimState, headers: &HeaderMap) -> String {
    if let Some(u) = &st.options().public_url {
        return u.as_str().trim_end_matches('/').to_owned();
    }
    let (mut proto, mut host) = forwarded(headers);
    if proto.is_none() {
        proto = first_value(headers, "x-forwarded-proto").filter(|p| valid_proto(p));
    }
    if host.is_none() {
        host = first_value(headers, "x-forwarded-host").filter(|h| valid_host(h));
    }
    let host = host
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .filter(|h| valid_host(h))
        })
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let proto = proto.unwrap_or_else(|| "http".to_owned());
    format!("{proto}://{host}")
}

/// `proto` and `host` of the first element of `Forwarded` (RFC 7239 §4).
fn forwarded(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let Some(first) = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
    else {
        return (None, None);
    };
    let mut proto = None;
    let mut host = None;
    for pair in first.split(';') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_ascii_lowercase();
        match k.trim().to_ascii_lowercase().as_str() {
            "proto" if valid_proto(&v) => proto = Some(v),
            "host" if valid_host(&v) => host = Some(v),
            _ => {}
        }
    }
    (proto, host)
}

/// The first comma-separated value of header `name`, trimmed and lower-cased.
fn first_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

fn valid_proto(p: &str) -> bool {
    p == "http" || p == "https"
}

/// A host or `host:port` (IPv6 in brackets): no path, user info or spaces.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forwarded_forms() {
        assert_eq!(
            forwarded(&headers(&[(
                "forwarded",
                "for=1.2.3.4;proto=HTTPS;host=\"api.ring.com\", proto=http"
            )])),
            (Some("https".into()), Some("api.ring.com".into()))
        );
        assert_eq!(
            forwarded(&headers(&[("forwarded", "proto=gopher;host=a/b")])),
            (None, None)
        );
        assert_eq!(
            first_value(
                &headers(&[("x-forwarded-proto", "https, http")]),
                "x-forwarded-proto"
            ),
            Some("https".into())
        );
        assert!(valid_host("[::1]:8443"));
        assert!(!valid_host("evil.com/x"));
        assert!(!valid_host("a@b"));
    }
}
