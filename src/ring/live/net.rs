//! The live call's UDP side: which local addresses get a socket (the host
//! candidates), and a minimal STUN binding client (RFC 8489 §5) that learns the
//! server-reflexive address of each IPv4 socket from [`LiveOptions::ice_servers`].
//!
//! The WebRTC stack (str0m) is sans-I/O: it gathers no candidates itself, so the
//! call binds its sockets here and hands every address to it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;
use tracing::debug;

use super::LiveOptions;

/// STUN's magic cookie (RFC 8489 §5).
const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Binding request and success response message types.
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
/// Attributes carrying the mapped address.
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

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

/// `host:port` of a `stun:` URL (port 3478 when absent). Other schemes (TURN
/// needs credentials the options do not carry) give `None`.
pub(crate) fn stun_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("stun:")?;
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() {
        return None;
    }
    let has_port = match rest.rsplit_once(':') {
        Some((host, port)) => !host.ends_with(':') && port.parse::<u16>().is_ok(),
        None => false,
    };
    Some(if has_port {
        rest.to_owned()
    } else if rest.contains(':') && !rest.starts_with('[') {
        format!("[{rest}]:3478")
    } else {
        format!("{rest}:3478")
    })
}

/// A STUN binding request with transaction id `txn`.
pub(crate) fn binding_request(txn: [u8; 12]) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Length 0: no attributes.
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(&txn);
    m
}

/// The transaction id of a STUN binding success response, if `buf` is one.
pub(crate) fn success_txn(buf: &[u8]) -> Option<[u8; 12]> {
    if buf.len() < 20
        || u16::from_be_bytes([buf[0], buf[1]]) != BINDING_SUCCESS
        || u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC_COOKIE
    {
        return None;
    }
    buf[8..20].try_into().ok()
}

/// The mapped address in a binding success response (XOR-MAPPED-ADDRESS, or
/// the older MAPPED-ADDRESS). `None` for anything else or a malformed message.
pub(crate) fn mapped_address(buf: &[u8]) -> Option<SocketAddr> {
    let txn = success_txn(buf)?;
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let body = buf.get(20..20 + len)?;
    let mut plain = None;
    let mut at = 0;
    while at + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + alen)?;
        match typ {
            ATTR_XOR_MAPPED_ADDRESS => return decode_address(value, Some(&txn)),
            ATTR_MAPPED_ADDRESS => plain = decode_address(value, None),
            _ => {}
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    plain
}

/// An address attribute's value; `xor` holds the transaction id for
/// XOR-MAPPED-ADDRESS.
fn decode_address(v: &[u8], xor: Option<&[u8; 12]>) -> Option<SocketAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let family = *v.get(1)?;
    let mut port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    match family {
        0x01 => {
            let mut a: [u8; 4] = v.get(4..8)?.try_into().ok()?;
            if xor.is_some() {
                a.iter_mut().zip(cookie).for_each(|(b, k)| *b ^= k);
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port))
        }
        0x02 => {
            let mut a: [u8; 16] = v.get(4..20)?.try_into().ok()?;
            if let Some(txn) = xor {
                let key = cookie.iter().chain(txn.iter());
                a.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port))
        }
        _ => None,
    }
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

    #[test]
    fn stun_urls() {
        assert_eq!(
            stun_host("stun:stun.l.google.com:19302").as_deref(),
            Some("stun.l.google.com:19302")
        );
        assert_eq!(
            stun_host("stun:example.org").as_deref(),
            Some("example.org:3478")
        );
        assert_eq!(stun_host("stun:[::1]:5000").as_deref(), Some("[::1]:5000"));
        assert_eq!(stun_host("turn:example.org"), None);
        assert_eq!(stun_host("stun:"), None);
    }

    /// A response built by hand from RFC 8489's layout (not by our encoder).
    fn response(txn: [u8; 12], attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (t, v) in attrs {
            body.extend_from_slice(&t.to_be_bytes());
            body.extend_from_slice(&(v.len() as u16).to_be_bytes());
            body.extend_from_slice(v);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut m = vec![0x01, 0x01];
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&txn);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn decodes_xor_mapped_v4_and_v6() {
        let txn = [7u8; 12];
        // 203.0.113.9:40000 XORed with the cookie.
        let port = (40000u16 ^ 0x2112).to_be_bytes();
        let ip = [203 ^ 0x21, 0x12, 113 ^ 0xA4, 9 ^ 0x42]; // 0 ^ 0x12
        let v4 = vec![0, 1, port[0], port[1], ip[0], ip[1], ip[2], ip[3]];
        // A SOFTWARE attribute of odd length first, to check the padding walk.
        let m = response(txn, &[(0x8022, b"srv".to_vec()), (0x0020, v4)]);
        assert_eq!(success_txn(&m), Some(txn));
        assert_eq!(
            mapped_address(&m),
            Some("203.0.113.9:40000".parse().unwrap())
        );

        let want: Ipv6Addr = "2001:db8::42".parse().unwrap();
        let key: Vec<u8> = [0x21, 0x12, 0xA4, 0x42]
            .iter()
            .chain(txn.iter())
            .copied()
            .collect();
        let x: Vec<u8> = want.octets().iter().zip(&key).map(|(a, k)| a ^ k).collect();
        let mut v6 = vec![0, 2, port[0], port[1]];
        v6.extend_from_slice(&x);
        let m = response(txn, &[(0x0020, v6)]);
        assert_eq!(
            mapped_address(&m),
            Some("[2001:db8::42]:40000".parse().unwrap())
        );
    }

    #[test]
    fn plain_mapped_address_and_garbage() {
        let txn = [1u8; 12];
        let m = response(txn, &[(0x0001, vec![0, 1, 0x1F, 0x90, 10, 0, 0, 1])]);
        assert_eq!(mapped_address(&m), Some("10.0.0.1:8080".parse().unwrap()));
        assert_eq!(mapped_address(&m[..19]), None);
        let mut bad = m.clone();
        bad[3] = 200; // length past the end
        assert_eq!(mapped_address(&bad), None);
        assert_eq!(success_txn(&binding_request(txn)), None);
        let req = binding_request(txn);
        assert_eq!(&req[0..2], &[0, 1]);
        assert_eq!(&req[8..20], &txn);
    }
}
