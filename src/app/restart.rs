//! The in-process restart: after the console links or unlinks a Ring account,
//! the daemon stops every component of the current run (the same ordered
//! shutdown as for SIGTERM, every task joined) and starts a new run that reads
//! the new token, without the process exiting.
//!
//! [`run_daemon`] loops over runs. What must outlive a run lives in [`Carry`]:
//! the HTTP listening socket (kept open, so the console's new connections
//! during the restart wait in the accept queue instead of failing, and a port
//! picked with `HTTP_PORT=0` stays the same; a connection the old run accepted
//! just as it stopped is closed unanswered, as at any graceful shutdown), the shared WebRTC UDP port (`webrtc.udp_port`,
//! kept open for the same reasons; closed when the daemon stops), the RTSP port
//! actually bound (rebound by the next run), the login rate limiter, and whether
//! the simulator's demo account may be logged into automatically (not after an
//! unlink).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::AppError;
use crate::base::login_limit::{LoginLimiter, LoginLimits};
use crate::cameras::AccountChange;
use crate::config::Config;

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

    fn reason(&self) -> Option<RestartReason> {
        *self.requested.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What outlives one run of the daemon.
pub struct Carry {
    http: Option<std::net::TcpListener>,
    /// The RTSP port the previous run bound (reused so URLs stay valid).
    pub rtsp_port: Option<u16>,
    /// The shared WebRTC UDP port (`webrtc.udp_port`), once bound.
    pub webrtc_udp: Option<crate::webrtc::SharedUdpPort>,
    /// Console login attempts (not reset by a restart).
    pub limiter: Arc<LoginLimiter>,
    /// Whether a run against `RING_SIMULATOR_URL` without a token may log into
    /// the simulator's demo account by itself. Off after an unlink, until the
    /// process restarts.
    pub sim_auto_login: bool,
}

impl Carry {
    pub(super) fn new() -> Self {
        Carry {
            http: None,
            rtsp_port: None,
            webrtc_udp: None,
            limiter: Arc::new(LoginLimiter::new(LoginLimits::default())),
            sim_auto_login: true,
        }
    }

    /// The HTTP listener of this run: bound on the first run, a handle on the
    /// same socket afterwards. Returns it with the address actually bound.
    pub fn http_listener(
        &mut self,
        addr: SocketAddr,
    ) -> Result<(tokio::net::TcpListener, SocketAddr), AppError> {
        let bind = |source| AppError::Bind {
            what: "HTTP",
            addr,
            source,
        };
        if self.http.is_none() {
            let l = std::net::TcpListener::bind(addr).map_err(bind)?;
            l.set_nonblocking(true).map_err(bind)?;
            self.http = Some(l);
        }
        let std = self
            .http
            .as_ref()
            .expect("bound above")
            .try_clone()
            .map_err(bind)?;
        let listener = tokio::net::TcpListener::from_std(std).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        Ok((listener, local))
    }
}

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
