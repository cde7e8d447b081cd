//! Tracing set-up for the binary: `RINGBRIDGE_LOG` (an `EnvFilter`, default `info`;
//! `RING_DEBUG=1` turns on `debug` for ring-bridge itself) and
//! `RINGBRIDGE_FORMAT=pretty|json`. Every line that reaches stderr is also kept
//! in [`LogBuffer::global`] for the console's Logs tab (`/api/logs`).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use super::logbuf::LogBuffer;

/// Installs the global subscriber, writing to stderr and to
/// [`LogBuffer::global`]. Safe to call once; later
/// calls are ignored (tests may race to install one).
pub fn install() {
    let default = if std::env::var("RING_DEBUG")
        .map(|v| !v.is_empty() && v != "0" && v != "false")
        .unwrap_or(false)
    {
        "info,ring_bridge=debug,rumqttd=warn,webrtc=warn,webrtc_ice=warn"
    } else {
        "info,rumqttd=warn,webrtc=error,webrtc_ice=error,webrtc_srtp=error,webrtc_dtls=error,webrtc_sctp=error"
    };
    let filter =
        EnvFilter::try_from_env("RINGBRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let json = std::env::var("RINGBRIDGE_FORMAT").is_ok_and(|f| f == "json");
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(LogBuffer::global().layer());
    let _ = if json {
        registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .try_init()
    };
}
