//! `ring-bridge healthcheck`: asks a running daemon's `GET /healthz` on the
//! address the *effective* configuration (file + environment, the same
//! [`Config`] `run` uses) makes it listen on, so a port set only in the TOML
//! file (`http.port`) is followed as well as `HTTP_PORT`.
//!
//! Used by the Docker `HEALTHCHECK` and compose. It only reads the
//! configuration and makes one loopback HTTP request; it must not start
//! anything or touch the state directory.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Config;

/// Why the health check failed (the command exits 1 with this message).
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// `http.port = 0` lets the OS pick a port, which another process cannot know.
    #[error("http.port is 0 (picked at start-up): set http.port or HTTP_PORT to check health")]
    EphemeralPort,
    /// No answer (refused, timed out, not HTTP).
    #[error("no answer from http://{addr}/healthz: {source}")]
    Unreachable {
        /// Address asked.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: reqwest::Error,
    },
    /// An answer, but not a healthy one.
    #[error("http://{addr}/healthz answered {status}: {body}")]
    Unhealthy {
        /// Address asked.
        addr: SocketAddr,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

/// The address to ask: the listening address of `cfg`, with a wildcard
/// (`0.0.0.0`, `::`) replaced by the matching loopback address.
pub fn health_addr(cfg: &Config) -> Result<SocketAddr, HealthError> {
    if cfg.http.port == 0 {
        return Err(HealthError::EphemeralPort);
    }
    let ip = match cfg.network.listen_ip {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SocketAddr::new(ip, cfg.http.port))
}

/// Asks `/healthz` once, bounded by `timeout`. `Ok` carries the answer body.
/// Healthy means HTTP 200 with `"status": "ok"`.
pub async fn check(cfg: &Config, timeout: Duration) -> Result<String, HealthError> {
    let addr = health_addr(cfg)?;
    let unreachable = |source| HealthError::Unreachable { addr, source };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(unreachable)?;
    let resp = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .map_err(unreachable)?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(unreachable)?;
    let ok = status == 200
        && serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| v["status"] == "ok");
    if ok {
        Ok(body)
    } else {
        Err(HealthError::Unhealthy {
            addr,
            status,
            body: body.chars().take(200).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_become_loopback_and_port_zero_is_refused() {
        let mut cfg = Config::default();
        cfg.http.port = 3100;
        assert_eq!(health_addr(&cfg).unwrap().to_string(), "127.0.0.1:3100");
        cfg.network.listen_ip = "::".parse().unwrap();
        assert_eq!(health_addr(&cfg).unwrap().to_string(), "[::1]:3100");
        cfg.network.listen_ip = "192.168.1.5".parse().unwrap();
        assert_eq!(health_addr(&cfg).unwrap().to_string(), "192.168.1.5:3100");
        cfg.http.port = 0;
        assert!(matches!(health_addr(&cfg), Err(HealthError::EphemeralPort)));
    }
}
