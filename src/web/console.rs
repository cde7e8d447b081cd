//! The browser console: HTML, CSS and JavaScript from `assets/`, embedded into
//! the binary at build time (no Node or files needed at run time).
//!
//! `GET /` (also `/index.html` and the seed's old `/ingest.html`) is the app;
//! `GET /assets/<file>` the rest. Every answer carries an `ETag` (a hash of the
//! embedded bytes) with `Cache-Control: no-cache`, so browsers revalidate with a
//! cheap 304 and always run the assets of the binary they talk to. The page
//! only uses relative URLs, so it also works behind a reverse-proxy prefix.
//!
//! This module serves bytes only; the console talks to the REST API
//! (`docs/API.md`), `web::logs` and WHEP like any other client.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::WebState;

/// One embedded file.
struct Asset {
    /// Path under `assets/` (and under the `/assets/` URL).
    path: &'static str,
    /// `Content-Type`.
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset {
            path: $path,
            mime: $mime,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Everything the console needs. A new file under `assets/` must be listed here.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/main.js", JS),
    asset!("js/api.js", JS),
    asset!("js/ui.js", JS),
    asset!("js/live.js", JS),
    asset!("js/tile.js", JS),
    asset!("js/announce.js", JS),
    asset!("js/stats.js", JS),
    asset!("js/whep.js", JS),
    asset!("js/history.js", JS),
    asset!("js/logs.js", JS),
    asset!("js/login.js", JS),
];

/// The page's Content-Security-Policy: our own scripts and styles only; media
/// and thumbnails may come from Ring's storage (recording redirects).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob: https: http:; media-src 'self' blob: https: http:; \
    connect-src 'self'; object-src 'none'; base-uri 'self'";

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/ingest.html", get(index))
        .route("/assets/{*path}", get(file))
}

/// FNV-1a, 64 bit: a stable content hash for ETags (not security relevant).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The quoted ETag of each asset, in [`ASSETS`] order.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{:016x}\"", fnv1a(a.body)))
            .collect()
    })
}

fn serve(i: usize, headers: &HeaderMap) -> Response {
    let a = &ASSETS[i];
    let tag = &etags()[i];
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.mime)], a.body).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if a.path == "index.html" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    resp
}

fn position(path: &str) -> Option<usize> {
    ASSETS.iter().position(|a| a.path == path)
}

async fn index(headers: HeaderMap) -> Response {
    match position("index.html") {
        Some(i) => serve(i, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match position(&path) {
        Some(i) if path != "index.html" => serve(i, &headers),
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no console asset {path:?}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_nonempty_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert!(seen.insert(a.path), "{} listed twice", a.path);
        }
    }

    #[test]
    fn index_references_only_relative_embedded_assets() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        for part in html.split(['"', '\'']) {
            if let Some(p) = part.strip_prefix("assets/") {
                assert!(
                    position(p).is_some(),
                    "index.html links {part}, not embedded"
                );
            }
            assert!(
                !part.starts_with("/assets") && !part.starts_with("/api"),
                "absolute URL {part} breaks reverse-proxy prefixes"
            );
        }
    }

    #[test]
    fn js_modules_import_only_embedded_modules() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let src = std::str::from_utf8(a.body).unwrap();
            for line in src.lines().filter(|l| l.starts_with("import ")) {
                let spec = line
                    .split(['"', '\''])
                    .nth(1)
                    .unwrap_or_else(|| panic!("{}: odd import {line}", a.path));
                let name = spec.trim_start_matches("./");
                assert!(
                    position(&format!("js/{name}")).is_some(),
                    "{} imports {spec}, not embedded",
                    a.path
                );
            }
        }
    }

    #[test]
    fn etag_changes_with_content() {
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(etags().len(), ASSETS.len());
    }

    #[test]
    fn revalidation_answers_304() {
        let i = position("console.css").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&etags()[i]).unwrap(),
        );
        assert_eq!(serve(i, &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve(i, &HeaderMap::new()).status(), StatusCode::OK);
    }
}
