//! Configuration: the TOML file schema, environment overrides and validation.
//!
//! This is the only module that knows the file layout. [`load`] reads the file
//! (optional), applies the environment (`RING_REFRESH_TOKEN`, `HTTP_PORT`, ...,
//! see [`env`]) and [`Config::validate`] checks cross-field rules (`validate.rs`). Every error names
//! the file or variable, the key and the allowed values. Reference:
//! `docs/CONFIG.md`; example: `config/ring-bridge.example.toml`.

pub mod env;
mod limits;
mod validate;

pub use limits::LimitsConfig;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::base::Secret;

/// Why the configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys / bad values.
    #[error("config file {path}: {message}(see docs/CONFIG.md)")]
    Parse {
        /// File path.
        path: PathBuf,
        /// The parser's message, naming the key and what is allowed.
        message: String,
    },
    /// An environment variable has a bad value.
    #[error("environment variable {var}={value:?}: {expected}")]
    Env {
        /// Variable name.
        var: &'static str,
        /// The value found (never a secret's value).
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// A cross-field rule failed.
    #[error("config key {key}: {message} (see docs/CONFIG.md)")]
    Invalid {
        /// Dotted key, e.g. `webrtc.min_port`.
        key: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// The whole configuration, as in the TOML file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Ring account and cloud.
    pub ring: RingConfig,
    /// Addresses the servers bind to and announce.
    pub network: NetworkConfig,
    /// Web console and REST API.
    pub http: HttpConfig,
    /// RTSP server.
    pub rtsp: RtspConfig,
    /// WebRTC (browser viewers and talkback).
    pub webrtc: WebrtcConfig,
    /// Live streams (the media hub).
    pub stream: StreamConfig,
    /// MQTT and Home Assistant discovery.
    pub mqtt: MqttConfig,
    /// Motion and ding intake.
    pub events: EventsConfig,
    /// Resource limits against hostile or broken clients.
    pub limits: LimitsConfig,
}

/// `[events]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// History polling interval while push is silent or unavailable.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// History polling interval while push delivers (a safety net).
    #[serde(with = "humantime_serde")]
    pub poll_interval_push_healthy: Duration,
    /// Push watchdog: an event that polling found and push did not deliver
    /// within this long marks push degraded and re-registers it.
    #[serde(with = "humantime_serde")]
    pub push_watchdog_grace: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            poll_interval: Duration::from_secs(60),
            poll_interval_push_healthy: Duration::from_secs(600),
            push_watchdog_grace: Duration::from_secs(120),
        }
    }
}

/// `[ring]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingConfig {
    /// Seeds the token store (`RING_REFRESH_TOKEN`). After the first rotation the
    /// state dir holds the live token; see docs/CONFIG.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret<String>>,
    /// Use a running Ring simulator instead of Ring (`RING_SIMULATOR_URL`).
    pub simulator_url: Option<Url>,
    /// Where the refresh token, hardware id and other state live
    /// (`RING_BRIDGE_STATE_DIR`).
    pub state_dir: PathBuf,
    /// Only bridge cameras of these locations (empty: all).
    pub location_ids: Vec<String>,
    /// Name shown in Ring Control Center → Authorized Client Devices.
    pub device_name: Option<String>,
    /// How often the device list is refreshed.
    #[serde(with = "humantime_serde")]
    pub device_poll_interval: Duration,
    /// Debug logging for ring-bridge (`RING_DEBUG`).
    pub debug: bool,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            refresh_token: None,
            simulator_url: None,
            state_dir: PathBuf::from("state"),
            location_ids: Vec::new(),
            device_name: None,
            device_poll_interval: Duration::from_secs(20),
            debug: false,
        }
    }
}

/// `[network]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// IP the HTTP, RTSP and WebRTC servers bind to (`LISTEN_IP`).
    pub listen_ip: IpAddr,
    /// IP announced to WebRTC peers and used in URLs, e.g. the host's LAN address
    /// when running in Docker (`ANNOUNCED_IP`).
    pub announced_ip: Option<IpAddr>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            listen_ip: IpAddr::from([0, 0, 0, 0]),
            announced_ip: None,
        }
    }
}

/// `[http]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Port of the console and REST API (`HTTP_PORT`, default 3000; 0 picks one).
    pub port: u16,
    /// User name for HTTP Basic access to the console and API (`HTTP_USERNAME`,
    /// default `admin`). Only used when `password` is set.
    pub username: String,
    /// Password for the console and API (`HTTP_PASSWORD`), HTTP Basic. When set
    /// (or `api_token`), every request except `/healthz` must authenticate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret<String>>,
    /// Bearer token for API clients (`HTTP_API_TOKEN`): `Authorization: Bearer …`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_token: Option<Secret<String>>,
    /// Serve the console and API without authentication on a non-loopback
    /// address (`ALLOW_UNAUTHENTICATED`). Without it, and without a password or
    /// token, ring-bridge refuses to start on anything but loopback.
    pub allow_unauthenticated: bool,
    /// Peer address of a trusted authenticating proxy, e.g. Home Assistant's
    /// ingress (`172.30.32.2`, set by the add-on; `INGRESS_PROXY_IP`). Requests
    /// from it that carry `X-Ingress-Path` pass without credentials.
    pub ingress_proxy: Option<IpAddr>,
    /// Host names (besides IP addresses, `localhost` and `*.localhost`) the console
    /// and API answer to (`HTTP_ALLOWED_HOSTS`, comma separated), e.g. `nas.local`.
    /// Other `Host` headers get 421, which defeats DNS rebinding. `*` allows any.
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            port: 3000,
            username: "admin".into(),
            password: None,
            api_token: None,
            allow_unauthenticated: false,
            ingress_proxy: None,
            allowed_hosts: Vec::new(),
        }
    }
}

impl HttpConfig {
    /// Whether a password or API token is configured.
    pub fn has_credentials(&self) -> bool {
        self.password.is_some() || self.api_token.is_some()
    }
}

/// `[rtsp]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtspConfig {
    /// Serve RTSP at all.
    pub enabled: bool,
    /// Port (`RTSP_PORT`, default 8554; 0 picks one).
    pub port: u16,
    /// Optional RTSP user name (requires `password`).
    pub username: Option<String>,
    /// Optional RTSP password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret<String>>,
    /// How long a client's DESCRIBE is held while Ring starts the stream.
    #[serde(with = "humantime_serde")]
    pub describe_timeout: Duration,
    /// One GStreamer pipeline shared by all clients of a camera (default: a
    /// client costs one TCP write per packet instead of a pipeline and its
    /// threads). A client joining a running pipeline waits in its PLAY for the
    /// next key frame (requested at once) and starts on it. false: one pipeline
    /// per client, each starting at once on the hub's cached key frame; still
    /// one Ring session.
    pub shared_media: bool,
    /// Recorded-event streams (`/<slug>/event`) replay their clip continuously
    /// instead of ending with it (a client's `?loop=0` / `?loop=1` overrides).
    pub event_loop: bool,
}

impl Default for RtspConfig {
    fn default() -> Self {
        RtspConfig {
            enabled: true,
            port: 8554,
            username: None,
            password: None,
            describe_timeout: Duration::from_secs(20),
            shared_media: true,
            event_loop: false,
        }
    }
}

/// `[webrtc]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebrtcConfig {
    /// First UDP port for ICE (`RTC_MIN_PORT`).
    pub min_port: u16,
    /// Last UDP port for ICE (`RTC_MAX_PORT`).
    pub max_port: u16,
    /// One UDP port shared by every browser viewer instead of the range
    /// (`RTC_UDP_PORT`; 0 picks one): one port mapping is enough (Home Assistant
    /// add-on).
    pub udp_port: Option<u16>,
    /// RTP payload type for talkback audio sent to Ring (`RING_TALK_PT`);
    /// default: the negotiated one.
    pub talk_payload_type: Option<u8>,
    /// RTP SSRC for talkback audio (`RING_TALK_SSRC`); default: random.
    pub talk_ssrc: Option<u32>,
    /// Most browser (WHEP) sessions at once, over all cameras; more get 429.
    /// Default 32. Each session needs a UDP port from `min_port..=max_port`.
    pub max_sessions: usize,
    /// How a viewer gets a camera's talk floor. Default `voice`.
    pub talk_floor: TalkFloorMode,
}

/// `webrtc.talk_floor`: how a WHEP viewer with a microphone gets to talk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TalkFloorMode {
    /// Speech on the viewer's audio takes the floor, silence (1 s) gives it back;
    /// `POST …/talk` works too and wins. Any WHEP player can talk.
    #[default]
    Voice,
    /// Only `POST …/talk` takes the floor (the console's hold-to-talk).
    Explicit,
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        WebrtcConfig {
            min_port: 40000,
            max_port: 40100,
            udp_port: None,
            talk_payload_type: None,
            talk_ssrc: None,
            max_sessions: 32,
            talk_floor: TalkFloorMode::Voice,
        }
    }
}

/// `[stream]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// How long a Ring session stays up after the last viewer leaves.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Open the next Ring session this long before the current one hits Ring's cap.
    #[serde(with = "humantime_serde")]
    pub renew_before: Duration,
    /// Ring's live-session cap (ring-api.md §6.4: `max_duration` 600 s).
    #[serde(with = "humantime_serde")]
    pub session_cap: Duration,
    /// Also offer H.265 to Ring (after H.264). Off: H.264 only, as Ring's own web
    /// client and the other bridges ask, so Ring transcodes HEVC cameras to H.264.
    /// On: HEVC cameras send H.265, passed through (`docs/design/0009-h265.md`).
    pub h265: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            linger: Duration::from_secs(10),
            renew_before: Duration::from_secs(30),
            session_cap: Duration::from_secs(600),
            h265: false,
        }
    }
}

/// `[mqtt]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Publish to MQTT at all (`MQTT_ENABLED`).
    pub enabled: bool,
    /// Broker URL, `mqtt://[user:pass@]host[:port]` or `mqtts://...` (`MQTT_URL`).
    /// None: use a local broker on 127.0.0.1:`local_port` or start an
    /// embedded one there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret<String>>,
    /// Port of the local broker used (or embedded) when no `url` is set
    /// (`MQTT_LOCAL_PORT`, default 1883).
    pub local_port: u16,
    /// Topic prefix.
    pub topic_prefix: String,
    /// Home Assistant discovery prefix.
    pub discovery_prefix: String,
    /// Home Assistant birth topic.
    pub ha_status_topic: String,
    /// MQTT client id (unique per broker).
    pub client_id: String,
    /// PEM CA bundle for `mqtts://` (default: the system roots).
    pub ca_file: Option<PathBuf>,
    /// Instance name inserted in topics and unique_ids, so several ring-bridge
    /// instances can split one account behind one broker (`[A-Za-z0-9_-]+`).
    pub instance: Option<String>,
    /// How long motion stays ON after an event.
    #[serde(with = "humantime_serde")]
    pub motion_duration: Duration,
    /// How long a ding stays ON.
    #[serde(with = "humantime_serde")]
    pub ding_duration: Duration,
    /// Snapshot interval of wired cameras (0s disables).
    #[serde(with = "humantime_serde")]
    pub snapshot_interval_wired: Duration,
    /// Snapshot interval of battery cameras (0s disables).
    #[serde(with = "humantime_serde")]
    pub snapshot_interval_battery: Duration,
    /// Longest run of the `stream` switch.
    #[serde(with = "humantime_serde")]
    pub stream_max_duration: Duration,
    /// How often live stream statistics refresh the `stream` switch's
    /// attributes while streaming (at least 1 s).
    #[serde(with = "humantime_serde")]
    pub stream_stats_interval: Duration,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: true,
            client_id: "ring-bridge".into(),
            ca_file: None,
            instance: None,
            motion_duration: Duration::from_secs(180),
            ding_duration: Duration::from_secs(180),
            snapshot_interval_wired: Duration::from_secs(30),
            snapshot_interval_battery: Duration::from_secs(600),
            stream_max_duration: Duration::from_secs(600),
            stream_stats_interval: Duration::from_secs(10),
            url: None,
            local_port: 1883,
            topic_prefix: "ring".into(),
            discovery_prefix: "homeassistant".into(),
            ha_status_topic: "homeassistant/status".into(),
        }
    }
}

/// Loads the file at `path` (if given) and applies the process environment.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    load_with_env(path, &env::process_env())
}

/// Like [`load`] with an explicit environment (for tests).
pub fn load_with_env(path: Option<&Path>, vars: &env::Vars) -> Result<Config, ConfigError> {
    let mut cfg = match path {
        Some(p) => parse_file(p)?,
        None => Config::default(),
    };
    env::apply(&mut cfg, vars)?;
    cfg.validate()?;
    Ok(cfg)
}

fn parse_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

impl Config {
    /// The effective configuration as TOML, secrets shown as `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[cfg(test)]
mod tests;
