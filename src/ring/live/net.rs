//! The live call's UDP sockets: which local addresses get one (the host
//! candidates), bound in [`LiveOptions::udp_ports`]. Server-reflexive
//! candidates come from `stun.rs`.
//!
//! The WebRTC stack (str0m) is sans-I/O: it gathers no candidates itself, so the
//! call binds its sockets here and hands every address to it.

use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;
use tracing::debug;

use super::LiveOptions;

/// The local addresses to gather host candidates on: every interface address,
/// without loopback unless [`LiveOptions::include_loopback`], without IPv6
/// link-local ones (they need a scope), and only those in
/// [`LiveOptions::ice_ips`] when it is set.
pub(crate) fn local_ips(opts: &LiveOptions) -> Vec<IpAddr> {
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
    select_ips(all, opts)
}

fn select_ips(all: Vec<IpAddr>, opts: &LiveOptions) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in all {
        let link_local_v6 = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
        let wanted = (!ip.is_loopback() || opts.include_loopback)
            && !ip.is_unspecified()
            && !link_local_v6
            && (opts.ice_ips.is_empty() || opts.ice_ips.contains(&ip));
        if wanted && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// Binds one UDP socket on `ip`, in [`LiveOptions::udp_ports`] when set (the
/// first free port from a random start), else on any port.
pub(crate) fn bind(ip: IpAddr, opts: &LiveOptions) -> std::io::Result<UdpSocket> {
    let Some((min, max)) = opts.udp_ports else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LiveOptions {
        LiveOptions::default()
    }

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
        let pick = |o: &LiveOptions| select_ips(all.clone(), o);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(pick(&opts()), vec![ip("192.168.1.5"), ip("2001:db8::5")]);
        let mut o = opts();
        o.include_loopback = true;
        o.ice_ips = vec![ip("127.0.0.1")];
        assert_eq!(pick(&o), vec![ip("127.0.0.1")]);
    }
}
