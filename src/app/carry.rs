//! What outlives one run of the daemon ([`Carry`]): the HTTP listening socket
//! (kept open, so the console's new connections during an in-process restart
//! wait in the accept queue instead of failing, and a port picked with
//! `HTTP_PORT=0` stays the same; a connection the old run accepted just as it
//! stopped is closed unanswered, as at any graceful shutdown), the shared
//! WebRTC UDP port (`webrtc.udp_port`, kept open for the same reasons; closed
//! when the daemon stops), the RTSP port actually bound (rebound by the next
//! run), the login rate limiter, and whether the simulator's demo account may
//! be logged into automatically (not after an unlink).

use std::net::SocketAddr;
use std::sync::Arc;

use super::AppError;
use crate::base::login_limit::{LoginLimiter, LoginLimits};

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
