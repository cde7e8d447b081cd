//! UDP sockets for a sans-I/O WebRTC instance (str0m gathers no candidates
//! itself): which local addresses get a host candidate, binding a socket in a
//! port range, and the socket set a pump reads from and sends on. Used by the
//! Ring call (`ring::live`) and by the WHEP viewers (`webrtc`).
//!
//! - [`Socket`] (`socket.rs`): a socket the reactor watches for readability
//!   only, read a [`Batch`] of datagrams per system call.
//! - [`Sender`] and [`Outbox`] (`send.rs`): sends that never wait, a video
//!   frame's packets in one generic segmentation offload (GSO) send.

use std::net::{IpAddr, SocketAddr};
use std::task::Poll;

use tracing::{debug, trace};

mod send;
mod socket;

pub use send::{Outbox, Sender};
pub use socket::{BATCH, Batch, Socket};

/// The local addresses to gather host candidates on: every interface address,
/// without loopback unless `include_loopback`, without IPv6 link-local ones (they
/// need a scope), and only those in `only` when it is not empty.
pub fn local_ips(include_loopback: bool, only: &[IpAddr]) -> Vec<IpAddr> {
    let all = match webrtc::util::ifaces::ifaces() {
        Ok(list) => list
            .into_iter()
            .filter_map(|i| i.addr.map(|a| a.ip()))
            .collect(),
        Err(e) => {
            debug!(err = %e, "listing interfaces failed");
            Vec::new()
        }
    };
    select_ips(all, include_loopback, only)
}

fn select_ips(all: Vec<IpAddr>, include_loopback: bool, only: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in all {
        let link_local_v6 = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
        let wanted = (!ip.is_loopback() || include_loopback)
            && !ip.is_unspecified()
            && !link_local_v6
            && (only.is_empty() || only.contains(&ip));
        if wanted && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// Binds one UDP socket on `ip`, in the inclusive range `ports` when set (the
/// first free port from a random start), else on any port.
pub fn bind(ip: IpAddr, ports: Option<(u16, u16)>) -> std::io::Result<Socket> {
    let Some((min, max)) = ports else {
        return Socket::bind(SocketAddr::new(ip, 0));
    };
    let (min, max) = (min.min(max), min.max(max));
    let span = u32::from(max - min) + 1;
    let start = rand::random::<u32>() % span;
    let mut last = None;
    for i in 0..span {
        let port = min + u16::try_from((start + i) % span).unwrap_or(0);
        match Socket::bind(SocketAddr::new(ip, port)) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("empty port range")))
}

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a dual-stack
/// socket sees IPv4 peers) written as the IPv4 address it is.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// One bound socket: one host candidate. `announced` is the address the
/// candidate carries (the bound one, or a 1:1 NAT address with the same port);
/// the WebRTC instance only ever sees that one.
#[derive(Debug)]
pub struct Sock {
    /// The candidate's address.
    pub announced: SocketAddr,
    /// The bound socket's sending side (and the socket).
    pub sender: Sender,
}

impl Sock {
    /// The socket bound for candidate `announced`.
    pub fn new(announced: SocketAddr, socket: Socket) -> Self {
        Sock {
            announced,
            sender: Sender::new(socket),
        }
    }

    /// The bound socket.
    pub fn socket(&self) -> &Socket {
        self.sender.socket()
    }
}

/// The sockets of one WebRTC instance.
#[derive(Debug, Default)]
pub struct Sockets {
    /// By index; the index is what [`Sockets::recv`] returns.
    pub list: Vec<Sock>,
}

impl Sockets {
    /// One socket per address of `ips`, in the port range `ports` when set;
    /// `announce` gives each socket's candidate address from its bound one.
    /// Addresses that cannot be bound are skipped; fails only when none could.
    pub fn bind_all(
        ips: &[IpAddr],
        ports: Option<(u16, u16)>,
        announce: impl Fn(SocketAddr) -> SocketAddr,
    ) -> std::io::Result<Sockets> {
        let mut list = Vec::new();
        let mut last_err = None;
        for &ip in ips {
            match bind(ip, ports).and_then(|s| Ok((s.local_addr()?, s))) {
                Ok((addr, socket)) => list.push(Sock::new(announce(addr), socket)),
                Err(e) => {
                    debug!(%ip, err = %e, "no ICE socket on this address");
                    last_err = Some(e);
                }
            }
        }
        if list.is_empty() {
            return Err(last_err.unwrap_or_else(|| {
                std::io::Error::other("no local address to gather candidates on")
            }));
        }
        Ok(Sockets { list })
    }

    /// Waits for datagrams on any of the sockets and reads a batch of them
    /// into `batch` ([`Batch::iter`]) from the first ready socket; returns
    /// that socket's index. A receive error (ICMP errors such as port
    /// unreachable surface here; not fatal for UDP) is logged and leaves the
    /// batch empty.
    pub async fn recv(&self, batch: &mut Batch) -> usize {
        std::future::poll_fn(|cx| {
            for (i, s) in self.list.iter().enumerate() {
                if let Poll::Ready(r) = s.socket().poll_recv_batch(cx, batch) {
                    if let Err(e) = r {
                        trace!(err = %e, "UDP receive error");
                    }
                    return Poll::Ready(i);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Sends `data` (one datagram, or a run of `segment`-byte ones, see
    /// [`Sender::send`]) to `destination` from the socket of candidate `source`
    /// (or, for a candidate derived from a socket, the one with its port).
    pub fn send(
        &self,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
        segment: Option<usize>,
    ) {
        let sock = self
            .list
            .iter()
            .find(|s| s.announced == source)
            .or_else(|| {
                self.list
                    .iter()
                    .find(|s| s.announced.port() == source.port())
            });
        let Some(sock) = sock else {
            debug!(%source, "no socket for a transmit");
            return;
        };
        sock.sender.send(destination, data, segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_selection_follows_the_options() {
        let all: Vec<IpAddr> = [
            "127.0.0.1",
            "192.168.1.5",
            "fe80::1",
            "2001:db8::5",
            "0.0.0.0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            select_ips(all.clone(), false, &[]),
            vec![ip("192.168.1.5"), ip("2001:db8::5")]
        );
        assert_eq!(
            select_ips(all, true, &[ip("127.0.0.1")]),
            vec![ip("127.0.0.1")]
        );
    }

    #[tokio::test]
    async fn binds_inside_the_range() {
        let s = bind("127.0.0.1".parse().unwrap(), Some((0, 0))).unwrap();
        assert_eq!(s.local_addr().unwrap().ip().to_string(), "127.0.0.1");
    }
}
