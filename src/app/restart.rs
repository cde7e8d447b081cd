//! The in-process restart request: after the console links or unlinks a Ring
//! account, [`Restart::request`] cancels the current run (the same ordered
//! shutdown as for SIGTERM, every task joined) and records why, so that
//! `super::lifecycle::run_daemon` starts a new run that reads the new token,
//! without the process exiting. Knows nothing about what a run starts.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::cameras::AccountChange;

/// Why a run ends with a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartReason {
    /// A Ring account was linked (console login).
    Linked,
    /// The Ring account was unlinked (console).
    Unlinked,
}

impl From<AccountChange> for RestartReason {
    fn from(c: AccountChange) -> Self {
        match c {
            AccountChange::Linked => RestartReason::Linked,
            AccountChange::Unlinked => RestartReason::Unlinked,
        }
    }
}

/// Ends the current run and asks for a new one. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Restart {
    run: CancellationToken,
    requested: Arc<Mutex<Option<RestartReason>>>,
}

impl Restart {
    pub(super) fn new(run: CancellationToken) -> Self {
        Restart {
            run,
            requested: Arc::default(),
        }
    }

    /// The run's cancellation token: every component of the run hangs off it.
    pub fn token(&self) -> &CancellationToken {
        &self.run
    }

    /// Requests a restart: cancels the run (graceful shutdown; requests in
    /// flight, such as the one asking, still get their answers).
    pub fn request(&self, why: RestartReason) {
        *self.requested.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        self.run.cancel();
    }

    /// Requests a restart at the first account change on `changes`; returns
    /// when it did, when the run ends first, or when the account service is
    /// gone. Runs beside the HTTP server for the whole run.
    pub async fn on_account_change(
        &self,
        mut changes: tokio::sync::watch::Receiver<Option<AccountChange>>,
    ) {
        tokio::select! {
            _ = self.run.cancelled() => {}
            r = changes.wait_for(Option::is_some) => {
                if let Ok(change) = r
                    && let Some(change) = *change
                {
                    self.request(change.into());
                }
            }
        }
    }

    /// Whether a restart was requested in this run.
    pub fn is_requested(&self) -> bool {
        self.reason().is_some()
    }

    /// Why a restart was requested in this run, if one was.
    pub(super) fn reason(&self) -> Option<RestartReason> {
        *self.requested.lock().unwrap_or_else(|e| e.into_inner())
    }
}
