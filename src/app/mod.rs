//! Daemon wiring: builds the components from the configuration and runs them
//! until shutdown.

pub mod auth;
pub mod directory;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Runs the daemon until `cancel` fires.
pub async fn run_daemon(_cfg: Config, _cancel: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!("daemon wiring lands with the foundation merge")
}

/// Runs the simulator standalone until `cancel` fires.
pub async fn run_simulator(
    listen: SocketAddr,
    session_cap: Duration,
    media: Option<PathBuf>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let opts = crate::sim::SimOptions {
        session_cap,
        media_dir: media,
        ..Default::default()
    };
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
