//! The daemon's life: [`run_daemon`] runs `super::daemon::run_once` again and
//! again while the console asks for an in-process restart (a Ring account
//! linked or unlinked, `super::restart`), handing each run what outlives it
//! (`super::carry`), and stops when the process is told to.

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::AppError;
use super::carry::Carry;
use super::restart::{Restart, RestartReason};
use crate::config::Config;

/// Runs the daemon until `cancel` fires, restarting it in process when the
/// console links or unlinks a Ring account.
pub async fn run_daemon(cfg: Config, cancel: CancellationToken) -> Result<(), AppError> {
    cfg.check_access().map_err(AppError::Access)?;
    let mut carry = Carry::new();
    let result = loop {
        let restart = Restart::new(cancel.child_token());
        if let Err(e) = super::daemon::run_once(&cfg, &mut carry, restart.clone()).await {
            break Err(e);
        }
        match restart.reason() {
            Some(why) if !cancel.is_cancelled() => {
                info!(reason = ?why, "restarting with the new Ring account settings");
                carry.sim_auto_login = why != RestartReason::Unlinked;
            }
            _ => break Ok(()),
        }
    };
    if let Some(port) = carry.webrtc_udp.take() {
        port.close().await;
    }
    result
}
