//! Daemon wiring: builds the components from the configuration and runs them
//! until shutdown.

pub mod directory;
pub mod auth;

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
    _listen: SocketAddr,
    _session_cap: Duration,
    _media: Option<PathBuf>,
    _cancel: CancellationToken,
) -> anyhow::Result<()> {
    anyhow::bail!("simulator wiring lands with the foundation merge")
}
