//! Daemon wiring: builds the components from the configuration and runs them
//! until shutdown. Protocol logic lives in the components, not here.

pub mod auth;
mod carry;
mod daemon;
pub mod doctor;
pub mod healthcheck;
mod lifecycle;
mod mqtt_events;
pub mod restart;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

pub use lifecycle::run_daemon;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Binding a listening socket failed.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which server.
        what: &'static str,
        /// Address tried.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Ring client failed at start-up.
    #[error("Ring client: {0}")]
    Ring(#[from] crate::ring::Error),
    /// The built-in simulator failed to start (demo mode).
    #[error("built-in simulator: {0:#}")]
    Simulator(anyhow::Error),
    /// MQTT could not start (bad options, no broker to embed).
    #[error("MQTT: {0}")]
    Mqtt(#[from] crate::mqtt::Error),
    /// The console and API would be open to the network without credentials.
    #[error("{0}")]
    Access(crate::config::ConfigError),
    /// The RTSP server failed to start.
    #[error("RTSP server: {0}")]
    Rtsp(crate::rtsp::RtspError),
    /// GStreamer elements a required part needs are not installed (one line
    /// per element: what it breaks, the package that provides it).
    #[error("{}", .0.join("\n"))]
    MissingElements(Vec<String>),
    /// A server stopped with an error.
    #[error("{what} stopped: {source}")]
    Serve {
        /// Which server.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the simulator standalone until `cancel` fires.
pub async fn run_simulator(
    listen: SocketAddr,
    opts: crate::sim::SimOptions,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let elements = crate::codec::elements::check();
    let missing = elements.lines_for(crate::codec::elements::Part::Simulator);
    if !missing.is_empty() {
        return Err(AppError::MissingElements(missing).into());
    }
    let handle = crate::sim::Simulator::start(opts, listen, cancel).await?;
    tracing::info!(
        sim_url = %handle.url(),
        email = crate::sim::DEMO_EMAIL,
        "Ring simulator ready; demo account password {:?}, 2FA code {:?}",
        crate::sim::DEMO_PASSWORD,
        crate::sim::DEMO_2FA_CODE
    );
    handle.join().await
}
