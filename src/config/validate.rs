//! The rules a configuration must follow beyond its types: cross-field checks
//! ([`Config::validate`]) and the access rule of `run` ([`Config::check_access`]).

use std::time::Duration;

use url::Url;

use super::{Config, ConfigError};

impl Config {
    /// Cross-field rules. Called by [`load`]; call again after editing a `Config`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.webrtc;
        if w.min_port == 0 || w.max_port < w.min_port {
            return Err(ConfigError::Invalid {
                key: "webrtc.min_port",
                message: format!(
                    "port range {}..{} is empty; need 1 <= min_port <= max_port",
                    w.min_port, w.max_port
                ),
            });
        }
        if w.max_sessions == 0 {
            return Err(ConfigError::Invalid {
                key: "webrtc.max_sessions",
                message: "must be at least 1".into(),
            });
        }
        if let Some(pt) = w.talk_payload_type
            && pt > 127
        {
            return Err(ConfigError::Invalid {
                key: "webrtc.talk_payload_type",
                message: format!("{pt} is not an RTP payload type; allowed 0..=127"),
            });
        }
        if self.rtsp.username.is_some() != self.rtsp.password.is_some() {
            return Err(ConfigError::Invalid {
                key: "rtsp.username",
                message: "set both rtsp.username and rtsp.password, or neither".into(),
            });
        }
        let h = &self.http;
        if h.username.is_empty() || h.username.contains(':') {
            return Err(ConfigError::Invalid {
                key: "http.username",
                message: "must be non-empty and must not contain ':'".into(),
            });
        }
        for (key, secret) in [
            ("http.password", &h.password),
            ("http.api_token", &h.api_token),
        ] {
            if secret
                .as_ref()
                .is_some_and(|s| s.expose().trim().is_empty())
            {
                return Err(ConfigError::Invalid {
                    key,
                    message: "is empty; remove it or set a value".into(),
                });
            }
        }
        if let Some(h) = h.allowed_hosts.iter().find(|h| {
            h.as_str() != "*"
                && (h.is_empty()
                    || !h
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        }) {
            return Err(ConfigError::Invalid {
                key: "http.allowed_hosts",
                message: format!("{h:?} is not a host name (letters, digits, '.', '-'; or \"*\")"),
            });
        }
        self.limits.validate()?;
        if self.mqtt.stream_stats_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                key: "mqtt.stream_stats_interval",
                message: "must be at least 1s".into(),
            });
        }
        if self.stream.renew_before >= self.stream.session_cap {
            return Err(ConfigError::Invalid {
                key: "stream.renew_before",
                message: "must be shorter than stream.session_cap".into(),
            });
        }
        if self.ring.device_poll_interval < Duration::from_secs(5) {
            return Err(ConfigError::Invalid {
                key: "ring.device_poll_interval",
                message: "must be at least 5s (Ring rate-limits eager clients)".into(),
            });
        }
        if let Some(u) = &self.ring.simulator_url
            && !matches!(u.scheme(), "http" | "https")
        {
            return Err(ConfigError::Invalid {
                key: "ring.simulator_url",
                message: format!("scheme {:?} not allowed; use http or https", u.scheme()),
            });
        }
        if let Some(u) = &self.mqtt.url {
            let parsed = Url::parse(u.expose()).map_err(|e| ConfigError::Invalid {
                key: "mqtt.url",
                message: format!("not a URL ({e}); expected mqtt://host:port or mqtts://host:port"),
            })?;
            if !matches!(parsed.scheme(), "mqtt" | "mqtts" | "tcp" | "ssl") {
                return Err(ConfigError::Invalid {
                    key: "mqtt.url",
                    message: format!(
                        "scheme {:?} not allowed; use mqtt or mqtts",
                        parsed.scheme()
                    ),
                });
            }
        }
        if let Some(i) = &self.mqtt.instance
            && (i.is_empty()
                || !i
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(ConfigError::Invalid {
                key: "mqtt.instance",
                message: format!("{i:?} is invalid; allowed: letters, digits, '_' and '-'"),
            });
        }
        if self.events.poll_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                key: "events.poll_interval",
                message: "must be at least 1s".into(),
            });
        }
        if self.events.push_watchdog_grace < Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                key: "events.push_watchdog_grace",
                message: "must be at least 1s".into(),
            });
        }
        for (key, topic) in [
            ("mqtt.topic_prefix", &self.mqtt.topic_prefix),
            ("mqtt.discovery_prefix", &self.mqtt.discovery_prefix),
        ] {
            if topic.is_empty() || topic.contains(['#', '+']) {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("{topic:?} must be non-empty without MQTT wildcards"),
                });
            }
        }
        Ok(())
    }

    /// The access rule for `run`: a console and API reachable beyond this
    /// machine need credentials, a trusted ingress proxy, or an explicit
    /// `http.allow_unauthenticated = true`.
    pub fn check_access(&self) -> Result<(), ConfigError> {
        let ip = self.network.listen_ip;
        if ip.is_loopback()
            || self.http.has_credentials()
            || self.http.allow_unauthenticated
            || self.http.ingress_proxy.is_some()
        {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            key: "http.password",
            message: format!(
                "the console and API would listen on {ip}, reachable from other machines, \
                 without authentication. Set a password (HTTP_PASSWORD or http.password) \
                 or an API token (HTTP_API_TOKEN), or listen on this machine only \
                 (LISTEN_IP=127.0.0.1), or accept anyone on your network with \
                 ALLOW_UNAUTHENTICATED=true"
            ),
        })
    }
}
