//! UDP sockets for a sans-I/O WebRTC instance (str0m gathers no candidates
//! itself): which local addresses get a host candidate, binding a socket in a
//! port range, and the socket set a pump reads from and sends on. Used by the
//! Ring call (`ring::live`) and by the WHEP viewers (`webrtc`).

use std::net::{IpAddr, SocketAddr};
use std::task::Poll;

use tokio::net::UdpSocket;
use tracing::{debug, trace};

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
pub fn bind(ip: IpAddr, ports: Option<(u16, u16)>) -> std::io::Result<UdpSocket> {
    let Some((min, max)) = ports else {
        return bind_one(SocketAddr::new(ip, 0));
    };
    let (min, max) = (min.min(max), min.max(max));
    let span = u32::from(max - min) + 1;
    let start = rand::random::<u32>() % span;
    let mut last = None;
    for i in 0..span {
        let port = min + u16::try_from((start + i) % span).unwrap_or(0);
        match bind_one(SocketAddr::new(ip, port)) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("empty port range")))
}

fn bind_one(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

/// One bound socket: one host candidate. `announced` is the address the
/// candidate carries (the bound one, or a 1:1 NAT address with the same port);
/// the WebRTC instance only ever sees that one.
#[derive(Debug)]
pub struct Sock {
    /// The candidate's address.
    pub announced: SocketAddr,
    /// The bound socket.
    pub socket: UdpSocket,
}

/// The sockets of one WebRTC instance.
#[derive(Debug, Default)]
pub struct Sockets {
    /// By index; the index is what [`Sockets::readable`] returns.
    pub list: Vec<Sock>,
}

impl Sockets {
    /// Which socket has a datagram waiting (the first ready one).
    pub async fn readable(&self) -> usize {
        std::future::poll_fn(|cx| {
            for (i, s) in self.list.iter().enumerate() {
                if s.socket.poll_recv_ready(cx).is_ready() {
                    return Poll::Ready(i);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Sends `data` to `destination` from the socket of candidate `source`
    /// (or, for a candidate derived from a socket, the one with its port).
    pub fn send(&self, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
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
        if let Err(e) = sock.socket.try_send_to(data, destination) {
            trace!(%destination, err = %e, "UDP send failed");
        }
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
