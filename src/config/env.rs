//! Environment overrides, compatible with the seed's variable names.
//!
//! | variable | key |
//! |---|---|
//! | `RING_REFRESH_TOKEN` | `ring.refresh_token` |
//! | `RING_SIMULATOR_URL` | `ring.simulator_url` |
//! | `RING_BRIDGE_STATE_DIR` | `ring.state_dir` |
//! | `RING_DEBUG` | `ring.debug` |
//! | `RING_LOCATION_IDS` | `ring.location_ids` (comma separated) |
//! | `LISTEN_IP` | `network.listen_ip` |
//! | `ANNOUNCED_IP` | `network.announced_ip` |
//! | `HTTP_PORT` | `http.port` |
//! | `HTTP_USERNAME` / `HTTP_PASSWORD` | `http.username` / `http.password` |
//! | `HTTP_API_TOKEN` | `http.api_token` |
//! | `ALLOW_UNAUTHENTICATED` | `http.allow_unauthenticated` |
//! | `INGRESS_PROXY_IP` | `http.ingress_proxy` |
//! | `HTTP_ALLOWED_HOSTS` | `http.allowed_hosts` (comma separated) |
//! | `RTSP_PORT` | `rtsp.port` |
//! | `RTSP_USERNAME` / `RTSP_PASSWORD` | `rtsp.username` / `rtsp.password` |
//! | `RTC_MIN_PORT` / `RTC_MAX_PORT` | `webrtc.min_port` / `webrtc.max_port` |
//! | `RTC_UDP_PORT` | `webrtc.udp_port` |
//! | `RING_TALK_PT` / `RING_TALK_SSRC` | `webrtc.talk_payload_type` / `webrtc.talk_ssrc` |
//! | `RING_H265` | `stream.h265` |
//! | `MQTT_URL` | `mqtt.url` |
//! | `MQTT_ENABLED` | `mqtt.enabled` |
//! | `MQTT_LOCAL_PORT` | `mqtt.local_port` |
//!
//! Empty values are treated as unset (docker-compose `env_file` writes them).

use std::collections::HashMap;
use std::str::FromStr;

use super::{Config, ConfigError};
use crate::base::Secret;

/// A snapshot of environment variables.
pub type Vars = HashMap<String, String>;

/// The process environment.
pub fn process_env() -> Vars {
    std::env::vars().collect()
}

fn get<'a>(vars: &'a Vars, name: &str) -> Option<&'a str> {
    vars.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn parse<T: FromStr>(
    vars: &Vars,
    var: &'static str,
    expected: &str,
) -> Result<Option<T>, ConfigError> {
    match get(vars, var) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ConfigError::Env {
            var,
            value: v.to_owned(),
            expected: expected.to_owned(),
        }),
    }
}

fn parse_bool(vars: &Vars, var: &'static str) -> Result<Option<bool>, ConfigError> {
    match get(vars, var).map(|v| v.to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError::Env {
                var,
                value: v,
                expected: "one of true/false/1/0/yes/no/on/off".into(),
            }),
        },
    }
}

/// `"a, b,,c"` → `["a", "b", "c"]`.
fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Applies the variables in the table above to `cfg`.
pub fn apply(cfg: &mut Config, vars: &Vars) -> Result<(), ConfigError> {
    const PORT: &str = "a port number 0..=65535";
    if let Some(t) = get(vars, "RING_REFRESH_TOKEN") {
        cfg.ring.refresh_token = Some(Secret::new(t.to_owned()));
    }
    if let Some(u) = parse(
        vars,
        "RING_SIMULATOR_URL",
        "a URL like http://127.0.0.1:8080",
    )? {
        cfg.ring.simulator_url = Some(u);
    }
    if let Some(d) = get(vars, "RING_BRIDGE_STATE_DIR") {
        cfg.ring.state_dir = d.into();
    }
    if let Some(b) = parse_bool(vars, "RING_DEBUG")? {
        cfg.ring.debug = b;
    }
    if let Some(ids) = get(vars, "RING_LOCATION_IDS") {
        cfg.ring.location_ids = comma_list(ids);
    }
    if let Some(ip) = parse(vars, "LISTEN_IP", "an IP address like 0.0.0.0 or 127.0.0.1")? {
        cfg.network.listen_ip = ip;
    }
    if let Some(ip) = parse(vars, "ANNOUNCED_IP", "an IP address like 192.168.1.10")? {
        cfg.network.announced_ip = Some(ip);
    }
    if let Some(p) = parse(vars, "HTTP_PORT", PORT)? {
        cfg.http.port = p;
    }
    if let Some(u) = get(vars, "HTTP_USERNAME") {
        cfg.http.username = u.to_owned();
    }
    if let Some(p) = get(vars, "HTTP_PASSWORD") {
        cfg.http.password = Some(Secret::new(p.to_owned()));
    }
    if let Some(t) = get(vars, "HTTP_API_TOKEN") {
        cfg.http.api_token = Some(Secret::new(t.to_owned()));
    }
    if let Some(b) = parse_bool(vars, "ALLOW_UNAUTHENTICATED")? {
        cfg.http.allow_unauthenticated = b;
    }
    if let Some(ip) = parse(vars, "INGRESS_PROXY_IP", "an IP address like 172.30.32.2")? {
        cfg.http.ingress_proxy = Some(ip);
    }
    if let Some(p) = parse(vars, "MQTT_LOCAL_PORT", PORT)? {
        cfg.mqtt.local_port = p;
    }
    if let Some(hosts) = get(vars, "HTTP_ALLOWED_HOSTS") {
        cfg.http.allowed_hosts = comma_list(hosts);
    }
    if let Some(p) = parse(vars, "RTSP_PORT", PORT)? {
        cfg.rtsp.port = p;
    }
    if let Some(u) = get(vars, "RTSP_USERNAME") {
        cfg.rtsp.username = Some(u.to_owned());
    }
    if let Some(p) = get(vars, "RTSP_PASSWORD") {
        cfg.rtsp.password = Some(Secret::new(p.to_owned()));
    }
    if let Some(p) = parse(vars, "RTC_MIN_PORT", PORT)? {
        cfg.webrtc.min_port = p;
    }
    if let Some(p) = parse(vars, "RTC_MAX_PORT", PORT)? {
        cfg.webrtc.max_port = p;
    }
    if let Some(p) = parse(vars, "RTC_UDP_PORT", PORT)? {
        cfg.webrtc.udp_port = Some(p);
    }
    if let Some(pt) = parse(vars, "RING_TALK_PT", "an RTP payload type 0..=127")? {
        cfg.webrtc.talk_payload_type = Some(pt);
    }
    if let Some(s) = parse(vars, "RING_TALK_SSRC", "a 32-bit unsigned SSRC")? {
        cfg.webrtc.talk_ssrc = Some(s);
    }
    if let Some(b) = parse_bool(vars, "RING_H265")? {
        cfg.stream.h265 = b;
    }
    if let Some(b) = parse_bool(vars, "MQTT_ENABLED")? {
        cfg.mqtt.enabled = b;
    }
    if let Some(u) = get(vars, "MQTT_URL") {
        cfg.mqtt.url = Some(Secret::new(u.to_owned()));
    }
    Ok(())
}
