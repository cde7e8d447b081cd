//! One UDP port for every viewer's ICE (`webrtc.udp_port`): webrtc-rs's UDP mux
//! demultiplexes by ICE user fragment, so a single port mapping (a Home
//! Assistant add-on, a firewall, Docker without a port range) is enough for
//! browser WebRTC.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use webrtc::ice::udp_mux::{UDPMux, UDPMuxDefault, UDPMuxParams};

/// A bound UDP port shared by all WHEP sessions; cheap to clone.
#[derive(Clone)]
pub struct SharedUdpPort {
    mux: Arc<UDPMuxDefault>,
    addr: SocketAddr,
}

impl SharedUdpPort {
    /// Binds `addr` (port 0 picks one).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<SharedUdpPort> {
        let socket = tokio::net::UdpSocket::bind(addr).await?;
        let addr = socket.local_addr()?;
        let mux = UDPMuxDefault::new(UDPMuxParams::new(socket));
        Ok(SharedUdpPort { mux, addr })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The mux for a `SettingEngine`.
    pub(crate) fn mux(&self) -> Arc<dyn UDPMux + Send + Sync> {
        self.mux.clone()
    }

    /// Stops the mux and closes the socket.
    pub async fn close(&self) {
        if let Err(e) = self.mux.close().await {
            tracing::debug!(err = %e, "closing the shared WebRTC UDP port");
        }
    }
}

impl fmt::Debug for SharedUdpPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedUdpPort")
            .field("addr", &self.addr)
            .finish()
    }
}
