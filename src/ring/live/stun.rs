//! Server-reflexive candidates for the live call: a minimal STUN binding client
//! (RFC 8489 §5) that asks each server of [`LiveOptions::ice_servers`] for the
//! public address of each of the call's sockets, with retransmissions. The
//! pump (`pump.rs`) owns the sockets; the [`Gatherer`] only says what to send
//! when, and recognizes the answers among the datagrams the pump reads.
//!
//! The few lines of STUN encoding stay here rather than using str0m's
//! `StunMessage` (which the WHEP router uses to read user names): str0m reads
//! only XOR-MAPPED-ADDRESS, and servers of the older RFC 3489 answer with plain
//! MAPPED-ADDRESS, which this parser also reads.
//!
//! [`LiveOptions::ice_servers`]: super::LiveOptions::ice_servers

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tracing::debug;

/// Binding requests per (socket, server): the first send, then retransmissions.
const TRIES: u32 = 3;
/// Spacing of retransmissions (doubling).
const RTO: Duration = Duration::from_millis(500);
/// How long the STUN server names may take to resolve.
const RESOLVE: Duration = Duration::from_secs(3);

/// STUN's magic cookie (RFC 8489 §5).
const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Binding request and success response message types.
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
/// Attributes carrying the mapped address.
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// One binding transaction.
struct Probe {
    sock: usize,
    server: SocketAddr,
    txn: [u8; 12],
    sent: u32,
    next: Instant,
}

/// The binding transactions of one call.
#[derive(Default)]
pub(crate) struct Gatherer {
    probes: Vec<Probe>,
}

impl Gatherer {
    /// One transaction per (socket, server) pair that can reach each other:
    /// same address family, and loopback only to loopback. `sockets` are the
    /// pump's local addresses, by index.
    pub(crate) fn start(&mut self, sockets: &[SocketAddr], servers: &[SocketAddr], now: Instant) {
        for &server in servers {
            for (sock, local) in sockets.iter().enumerate() {
                let reachable = local.is_ipv4() == server.is_ipv4()
                    && local.ip().is_loopback() == server.ip().is_loopback();
                if reachable {
                    self.probes.push(Probe {
                        sock,
                        server,
                        txn: rand::random(),
                        sent: 0,
                        next: now,
                    });
                }
            }
        }
    }

    /// The requests due at `now`, as (socket index, server, datagram); gives up
    /// on transactions that had all their tries.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(usize, SocketAddr, [u8; 20])> {
        self.probes.retain(|p| p.sent < TRIES || p.next > now);
        let mut out = Vec::new();
        for p in &mut self.probes {
            if p.next <= now && p.sent < TRIES {
                out.push((p.sock, p.server, binding_request(p.txn)));
                p.next = now + RTO * 2u32.pow(p.sent);
                p.sent += 1;
            }
        }
        out
    }

    /// When [`Self::due`] has work next.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        self.probes.iter().map(|p| p.next).min()
    }

    /// Whether `data`, received on socket `sock` from `from`, answers one of
    /// our transactions: `Some(mapped address)` (inner `None` for an answer
    /// without one), `None` for anything else (it goes to the WebRTC stack).
    pub(crate) fn answer(
        &mut self,
        sock: usize,
        from: SocketAddr,
        data: &[u8],
    ) -> Option<Option<SocketAddr>> {
        // Called for every datagram the call receives: nothing to do once
        // gathering is over.
        if self.probes.is_empty() {
            return None;
        }
        let txn = success_txn(data)?;
        let at = self
            .probes
            .iter()
            .position(|p| p.sock == sock && p.server == from && p.txn == txn)?;
        self.probes.remove(at);
        Some(mapped_address(data))
    }
}

/// Resolves the STUN servers (`host:port`, IPv4), bounded by [`RESOLVE`].
pub(crate) async fn resolve(hosts: Vec<String>) -> Vec<SocketAddr> {
    let lookups = hosts.into_iter().map(|h| async move {
        match tokio::net::lookup_host(h.as_str()).await {
            Ok(addrs) => addrs
                .filter(SocketAddr::is_ipv4)
                .take(1)
                .collect::<Vec<_>>(),
            Err(e) => {
                debug!(host = %h, err = %e, "STUN server did not resolve");
                Vec::new()
            }
        }
    });
    let all = tokio::time::timeout(RESOLVE, futures::future::join_all(lookups)).await;
    let mut out: Vec<SocketAddr> = all.unwrap_or_default().into_iter().flatten().collect();
    out.dedup();
    out
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
fn binding_request(txn: [u8; 12]) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Length 0: no attributes.
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(&txn);
    m
}

/// The transaction id of a STUN binding success response, if `buf` is one.
fn success_txn(buf: &[u8]) -> Option<[u8; 12]> {
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
fn mapped_address(buf: &[u8]) -> Option<SocketAddr> {
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

    #[test]
    fn gatherer_pairs_retries_and_matches_answers() {
        let t0 = Instant::now();
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lan: SocketAddr = "192.168.1.2:5001".parse().unwrap();
        let server: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        let mut g = Gatherer::default();
        g.start(&[lo, lan], &[server], t0);
        let sent = g.due(t0);
        assert_eq!(
            sent.len(),
            1,
            "the loopback socket cannot reach a public server"
        );
        let (sock, to, req) = sent[0];
        assert_eq!((sock, to), (1, server));
        assert!(g.due(t0).is_empty());
        assert_eq!(g.next_wake(), Some(t0 + RTO));
        let again = g.due(t0 + RTO);
        assert_eq!(again[0].2, req, "a retransmission repeats the transaction");

        let txn: [u8; 12] = req[8..20].try_into().unwrap();
        let port = (40000u16 ^ 0x2112).to_be_bytes();
        let v4 = vec![
            0,
            1,
            port[0],
            port[1],
            203 ^ 0x21,
            0x12,
            113 ^ 0xA4,
            7 ^ 0x42,
        ];
        let answer = response(txn, &[(0x0020, v4)]);
        // From another address, or on another socket: not ours.
        assert_eq!(
            g.answer(1, "198.51.100.2:3478".parse().unwrap(), &answer),
            None
        );
        assert_eq!(g.answer(0, server, &answer), None);
        assert_eq!(
            g.answer(1, server, &answer),
            Some(Some("203.0.113.7:40000".parse().unwrap()))
        );
        assert_eq!(g.answer(1, server, &answer), None, "answered once");
        assert_eq!(g.next_wake(), None);
    }

    #[test]
    fn gatherer_gives_up_after_its_tries() {
        let t0 = Instant::now();
        let mut g = Gatherer::default();
        let lan: SocketAddr = "192.168.1.2:5001".parse().unwrap();
        g.start(&[lan], &["198.51.100.1:3478".parse().unwrap()], t0);
        let mut t = t0;
        let mut sends = 0;
        for _ in 0..10 {
            sends += g.due(t).len();
            t += Duration::from_secs(3);
        }
        assert_eq!(sends, TRIES as usize);
        assert_eq!(g.next_wake(), None);
    }
}
