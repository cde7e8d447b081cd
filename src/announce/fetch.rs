//! Fetching an announcement's audio from a URL (how Home Assistant hands over
//! its TTS output): http(s) only, redirects only to http(s) and at most
//! [`MAX_REDIRECTS`], bounded in time and size. The URL's query string (often a
//! token) never reaches errors or logs.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use url::Url;

use super::AnnounceError;
use super::source::AudioType;

/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 3;

/// The URL without query or fragment, for messages.
pub(crate) fn shown(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// Checks that `url` may be fetched: http or https with a host.
pub(crate) fn check_url(url: &str) -> Result<Url, AnnounceError> {
    let u = Url::parse(url)
        .map_err(|e| AnnounceError::BadRequest(format!("url is not a valid URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(AnnounceError::BadRequest(format!(
            "url must be http(s)://host/..., not {}:",
            u.scheme()
        )));
    }
    Ok(u)
}

/// The HTTP client for audio URLs: `timeout` for the whole transfer, redirects
/// only to http(s).
pub(crate) fn client(timeout: Duration) -> reqwest::Client {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if !matches!(attempt.url().scheme(), "http" | "https") {
            attempt.error("redirect to a non-http(s) URL")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("ring-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// GETs `url` and returns its body and audio type, refusing bodies larger than
/// `max_bytes` (checked on `Content-Length` and while reading) and non-audio
/// types (`application/octet-stream` or none: the decoder sniffs the format).
pub(crate) async fn fetch(
    http: &reqwest::Client,
    url: &Url,
    max_bytes: usize,
) -> Result<(Bytes, Option<AudioType>), AnnounceError> {
    let fail = |reason: String| AnnounceError::Fetch {
        url: shown(url),
        reason,
    };
    // reqwest errors may carry the full URL: only their kind is kept.
    let describe = |e: &reqwest::Error| {
        if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_redirect() {
            "bad or too many redirects".to_owned()
        } else if e.is_connect() {
            "cannot connect".to_owned()
        } else {
            "transfer failed".to_owned()
        }
    };
    let mut resp = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| fail(describe(&e)))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status().as_u16())));
    }
    let kind = match resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => None,
        Some(ct) if AudioType::is_unknown_binary(ct) => None,
        Some(ct) => Some(AudioType::parse(ct)?),
    };
    if resp.content_length().is_some_and(|n| n > max_bytes as u64) {
        return Err(AnnounceError::TooLarge { limit: max_bytes });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(describe(&e)))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(AnnounceError::TooLarge { limit: max_bytes });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_and_no_secrets_in_messages() {
        assert!(check_url("https://ha.local:8123/api/tts_proxy/x.mp3").is_ok());
        for bad in [
            "file:///etc/passwd",
            "ftp://x/a.mp3",
            "data:audio/wav,xx",
            "nonsense",
        ] {
            assert!(
                matches!(check_url(bad), Err(AnnounceError::BadRequest(_))),
                "{bad}"
            );
        }
        let u = Url::parse("http://user:pw@ha.local/a.mp3?token=secret#x").unwrap();
        assert_eq!(shown(&u), "http://ha.local/a.mp3");
    }

    /// A local HTTP server: `/ok.wav` (audio), `/octet` (no useful type),
    /// `/big` (over the limit), `/html`, `/missing` (404), `/to-file`
    /// (redirect to `file:`), `/loop` (redirects forever).
    async fn server() -> (String, tokio::task::JoinHandle<()>) {
        use axum::http::{StatusCode, header};
        use axum::routing::get;
        let wav = || [(header::CONTENT_TYPE, "audio/wav")];
        let app = axum::Router::new()
            .route(
                "/ok.wav",
                get(move || async move { (wav(), vec![7u8; 1000]) }),
            )
            .route(
                "/octet",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "application/octet-stream")],
                        vec![1u8; 10],
                    )
                }),
            )
            .route("/big", get(move || async move { (wav(), vec![0u8; 5000]) }))
            .route(
                "/html",
                get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html></html>") }),
            )
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/to-file",
                get(|| async {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, "file:///etc/passwd")],
                    )
                }),
            )
            .route(
                "/loop",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        (base, task)
    }

    #[tokio::test]
    async fn fetches_with_type_size_and_redirect_limits() {
        let (base, task) = server().await;
        let http = client(Duration::from_secs(5));
        let get = |path: &str| {
            let http = http.clone();
            let url = Url::parse(&format!("{base}{path}?token=secret")).unwrap();
            async move { fetch(&http, &url, 2000).await }
        };
        let (body, kind) = get("/ok.wav").await.unwrap();
        assert_eq!((body.len(), kind), (1000, Some(AudioType::Wav)));
        assert_eq!(get("/octet").await.unwrap().1, None);
        assert!(matches!(
            get("/big").await,
            Err(AnnounceError::TooLarge { limit: 2000 })
        ));
        assert!(matches!(
            get("/html").await,
            Err(AnnounceError::UnsupportedType { .. })
        ));
        for path in ["/missing", "/to-file", "/loop"] {
            let e = get(path).await.unwrap_err();
            assert!(matches!(e, AnnounceError::Fetch { .. }), "{path}: {e:?}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        task.abort();
    }
}
