//! Public URLs of this daemon (RTSP, WHEP, console), as clients reach it.
//!
//! [`PublicUrls`] builds the URLs; [`Urls`] is the shared, updatable copy the
//! outputs read (the RTSP port is known only once the RTSP server bound it).

use std::sync::{Arc, RwLock};

/// Builds public URLs for cameras (RTSP, WHEP) from the announced address.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicUrls {
    /// Host (IP or name) clients use to reach us.
    pub host: String,
    /// HTTP port actually bound.
    pub http_port: u16,
    /// Whether `host` was configured (`ANNOUNCED_IP` or a specific `LISTEN_IP`).
    /// When not, URLs in answers use the host name the client used instead.
    pub host_configured: bool,
    /// RTSP port actually bound, if RTSP is on.
    pub rtsp_port: Option<u16>,
}

impl PublicUrls {
    /// These URLs as seen by a client that sent `Host: <request_host>`: the
    /// configured host wins; otherwise the client's own host name is used (so a
    /// LAN client of a daemon on 0.0.0.0 gets a URL it can open).
    pub fn for_request(&self, request_host: Option<&str>) -> PublicUrls {
        let mut u = self.clone();
        if !self.host_configured
            && let Some(h) = request_host.and_then(host_without_port)
        {
            u.host = h;
        }
        u
    }

    /// `http://host:port/api/webrtc/<slug>/whep`.
    pub fn whep(&self, slug: &str) -> String {
        format!(
            "http://{}:{}/api/webrtc/{slug}/whep",
            self.host, self.http_port
        )
    }

    /// The console, `http://host:port/`.
    pub fn console(&self) -> String {
        format!("http://{}:{}/", self.host, self.http_port)
    }

    /// `rtsp://host:port/<slug>`.
    pub fn rtsp(&self, slug: &str) -> Option<String> {
        self.rtsp_port
            .map(|p| format!("rtsp://{}:{p}/{slug}", self.host))
    }
}

/// The daemon's [`PublicUrls`], shared by every output (cheap to clone).
#[derive(Clone, Debug)]
pub struct Urls(Arc<RwLock<PublicUrls>>);

impl Urls {
    /// Shares `u`.
    pub fn new(u: PublicUrls) -> Urls {
        Urls(Arc::new(RwLock::new(u)))
    }

    /// The current URLs.
    pub fn get(&self) -> PublicUrls {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records the RTSP port actually bound (`None`: RTSP is off).
    pub fn set_rtsp_port(&self, port: Option<u16>) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).rtsp_port = port;
    }
}

/// `"example:3000"` → `example`, `"[::1]:3000"` → `[::1]`; rejects odd input.
fn host_without_port(h: &str) -> Option<String> {
    let host = if let Some(rest) = h.strip_prefix('[') {
        format!("[{}]", rest.split(']').next()?)
    } else {
        h.rsplit_once(':').map_or(h, |(host, _)| host).to_owned()
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_host_is_used_unless_configured() {
        let u = PublicUrls {
            host: "127.0.0.1".into(),
            host_configured: false,
            http_port: 3000,
            rtsp_port: Some(8554),
        };
        let seen = u.for_request(Some("nas.local:3000"));
        assert_eq!(
            seen.rtsp("front-door").unwrap(),
            "rtsp://nas.local:8554/front-door"
        );
        assert_eq!(u.for_request(Some("[::1]:3000")).host, "[::1]");
        assert_eq!(u.for_request(Some("bad host/x")).host, "127.0.0.1");
        let fixed = PublicUrls {
            host_configured: true,
            ..u
        };
        assert_eq!(fixed.for_request(Some("nas.local")).host, "127.0.0.1");
    }

    #[test]
    fn rtsp_port_is_set_later() {
        let urls = Urls::new(PublicUrls {
            host: "h".into(),
            host_configured: true,
            http_port: 1,
            rtsp_port: None,
        });
        assert_eq!(urls.get().rtsp("a"), None);
        urls.set_rtsp_port(Some(8554));
        assert_eq!(urls.get().rtsp("a").as_deref(), Some("rtsp://h:8554/a"));
    }
}
