//! UDP sockets for a sans-I/O WebRTC instance (str0m gathers no candidates
//! itself): which local addresses get a host candidate, binding a socket in a
//! port range, the socket set a pump reads from and sends on, and [`Outbox`],
//! which sends the datagrams of one burst (a video frame's packets) with UDP
//! generic segmentation offload (GSO): one `sendmsg` and one pass through the
//! kernel's IP output path per run of equal-sized datagrams instead of one per
//! datagram. Used by the Ring call (`ring::live`) and by the WHEP viewers
//! (`webrtc`).

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmsg,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::{debug, trace};

/// Most datagrams in one GSO send (the kernel allows 64).
const GSO_MAX_SEGMENTS: usize = 48;
/// Most bytes in one GSO send (an IP datagram's limit, with headers).
const GSO_MAX_BYTES: usize = 60_000;
/// An [`Outbox`] gives back a buffer larger than this after sending (a key
/// frame's run), so a thousand idle viewers do not each keep 60 KB.
const OUTBOX_KEEP: usize = 16 * 1024;

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

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a dual-stack
/// socket sees IPv4 peers) written as the IPv4 address it is.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// A UDP socket's sending side: plain datagrams, or runs of them in one GSO
/// send while the kernel takes those (a device without it answers `EIO`; the
/// socket then sends datagram by datagram from there on).
#[derive(Debug)]
pub struct Sender {
    socket: UdpSocket,
    gso: AtomicBool,
    /// The socket is IPv6 (perhaps dual-stack): IPv4 destinations are sent to
    /// as IPv4-mapped addresses.
    v6: bool,
}

impl Sender {
    /// Sends from `socket`.
    pub fn new(socket: UdpSocket) -> Self {
        let v6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
        Sender {
            socket,
            gso: AtomicBool::new(true),
            v6,
        }
    }

    /// The socket.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Sends `contents` to `to`: one datagram, or with `segment`, consecutive
    /// datagrams of `segment` bytes (the last may be shorter). Send errors are
    /// logged (UDP: the peer's retransmissions and our NACK handling cover loss).
    pub fn send(&self, to: SocketAddr, contents: &[u8], segment: Option<usize>) {
        let to = match to {
            SocketAddr::V4(v4) if self.v6 => {
                SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
            }
            other => other,
        };
        let segment = segment.filter(|&s| s > 0 && s < contents.len());
        if let Some(seg) = segment
            && self.gso.load(Ordering::Relaxed)
        {
            match self.send_gso(to, contents, seg) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    trace!(%to, "UDP send buffer full; burst dropped");
                    return;
                }
                Err(e) => {
                    debug!(err = %e, "UDP segmentation offload refused; sending datagram by datagram");
                    self.gso.store(false, Ordering::Relaxed);
                }
            }
        }
        for chunk in contents.chunks(segment.unwrap_or(contents.len()).max(1)) {
            if let Err(e) = self.socket.try_send_to(chunk, to) {
                trace!(%to, err = %e, "UDP send failed");
            }
        }
    }

    fn send_gso(&self, to: SocketAddr, contents: &[u8], segment: usize) -> std::io::Result<()> {
        let seg = u16::try_from(segment).map_err(std::io::Error::other)?;
        let iov = [std::io::IoSlice::new(contents)];
        let cmsg = [ControlMessage::UdpGsoSegments(&seg)];
        let addr = SockaddrStorage::from(to);
        let fd = self.socket.as_raw_fd();
        self.socket.try_io(Interest::WRITABLE, || {
            sendmsg(fd, &iov, &cmsg, MsgFlags::empty(), Some(&addr))
                .map(|_| ())
                .map_err(std::io::Error::from)
        })
    }
}

/// The datagrams of one burst, batched for [`Sender::send`]: each run of
/// equal-sized datagrams from one source to one destination (its last may be
/// shorter) goes out as one send. Push every datagram the instance hands out,
/// then [`Outbox::flush`] before waiting again.
#[derive(Debug, Default)]
pub struct Outbox {
    /// (source, destination) of the open run.
    route: Option<(SocketAddr, SocketAddr)>,
    buf: Vec<u8>,
    /// The run's datagram size (its first one's).
    segment: usize,
    count: usize,
    /// The open run ended with a shorter datagram: nothing more joins it.
    closed: bool,
}

impl Outbox {
    /// Adds one datagram; `send(source, destination, contents, segment)` gets
    /// the run it closes, if any.
    pub fn push(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
        send: &mut impl FnMut(SocketAddr, SocketAddr, &[u8], Option<usize>),
    ) {
        let joins = self.route == Some((source, destination))
            && !self.closed
            && data.len() <= self.segment
            && self.count < GSO_MAX_SEGMENTS
            && self.buf.len() + data.len() <= GSO_MAX_BYTES;
        if !joins {
            self.flush(send);
            self.route = Some((source, destination));
            self.segment = data.len();
        }
        self.buf.extend_from_slice(data);
        self.count += 1;
        self.closed = data.len() < self.segment;
    }

    /// Sends the open run, if any.
    pub fn flush(&mut self, send: &mut impl FnMut(SocketAddr, SocketAddr, &[u8], Option<usize>)) {
        if let Some((source, destination)) = self.route.take() {
            let segment = (self.count > 1).then_some(self.segment);
            send(source, destination, &self.buf, segment);
        }
        self.buf.clear();
        if self.buf.capacity() > OUTBOX_KEEP {
            self.buf = Vec::new();
        }
        self.count = 0;
        self.closed = false;
    }
}

/// Datagrams one [`Batch::recv`] reads at most.
pub const BATCH: usize = 16;
/// Room per datagram in a [`Batch`]; longer ones are cut (nothing WebRTC sends
/// here comes near it).
pub const DATAGRAM_ROOM: usize = 2048;

/// Reads the datagrams waiting on a socket [`BATCH`] at a time with one
/// `recvmmsg` call: a video frame's burst costs two system calls instead of one
/// per packet plus one.
#[derive(Debug)]
pub struct Batch {
    buf: Vec<u8>,
    /// Slot, length and sender of each datagram read.
    got: Vec<(usize, usize, SocketAddr)>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            buf: vec![0; BATCH * DATAGRAM_ROOM],
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl Batch {
    /// Reads up to [`BATCH`] waiting datagrams without blocking; `WouldBlock`
    /// when none is waiting (which also clears the socket's readiness).
    pub fn recv(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
        let fd = socket.as_raw_fd();
        let Batch { buf, got } = self;
        got.clear();
        socket.try_io(Interest::READABLE, || {
            // On the stack; only the headers are allocated per call (nix's
            // `MultiHeaders` holds raw pointers, so a pump's future could not
            // keep one across awaits).
            let mut rooms = buf.chunks_mut(DATAGRAM_ROOM);
            let mut slices: [[std::io::IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
                [std::io::IoSliceMut::new(rooms.next().unwrap_or_default())]
            });
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
            let results = recvmmsg(
                fd,
                &mut headers,
                slices.iter_mut().map(|s| &*s),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(std::io::Error::from)?;
            for (slot, r) in results.enumerate() {
                if let Some(from) = r.address.as_ref().and_then(socket_addr) {
                    got.push((slot, r.bytes.min(DATAGRAM_ROOM), from));
                }
            }
            Ok(())
        })?;
        Ok(self.got.len())
    }

    /// Datagram `i` of the last [`Batch::recv`] and its sender.
    pub fn get(&self, i: usize) -> (&[u8], SocketAddr) {
        let (slot, len, from) = self.got[i];
        let start = slot * DATAGRAM_ROOM;
        (&self.buf[start..start + len], from)
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
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
    pub fn new(announced: SocketAddr, socket: UdpSocket) -> Self {
        Sock {
            announced,
            sender: Sender::new(socket),
        }
    }

    /// The bound socket.
    pub fn socket(&self) -> &UdpSocket {
        self.sender.socket()
    }
}

/// The sockets of one WebRTC instance.
#[derive(Debug, Default)]
pub struct Sockets {
    /// By index; the index is what [`Sockets::readable`] returns.
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

    /// Which socket has a datagram waiting (the first ready one).
    pub async fn readable(&self) -> usize {
        std::future::poll_fn(|cx| {
            for (i, s) in self.list.iter().enumerate() {
                if s.socket().poll_recv_ready(cx).is_ready() {
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

    #[test]
    fn outbox_batches_runs_of_equal_datagrams() {
        let (a, b, c): (SocketAddr, SocketAddr, SocketAddr) = (
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:2".parse().unwrap(),
            "10.0.0.3:3".parse().unwrap(),
        );
        let mut sent: Vec<(SocketAddr, usize, Option<usize>)> = Vec::new();
        let mut send = |_s: SocketAddr, d: SocketAddr, data: &[u8], seg: Option<usize>| {
            sent.push((d, data.len(), seg));
        };
        let mut o = Outbox::default();
        // A frame: three full packets and a short last one, then the next
        // frame's first packet (a new run), then RTCP elsewhere.
        for len in [100, 100, 100, 40, 100] {
            o.push(a, b, &vec![0; len], &mut send);
        }
        o.push(a, c, &[0; 60], &mut send);
        o.flush(&mut send);
        o.flush(&mut send);
        assert_eq!(
            sent,
            vec![(b, 340, Some(100)), (b, 100, None), (c, 60, None)]
        );
    }

    #[tokio::test]
    async fn gso_runs_arrive_as_separate_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let tx = Sender::new(bind("127.0.0.1".parse().unwrap(), None).unwrap());
        let mut burst = vec![1u8; 1000];
        burst.extend(vec![2u8; 1000]);
        burst.extend(vec![3u8; 500]);
        // A fresh socket is writable once the reactor has seen it.
        tx.socket().writable().await.unwrap();
        tx.send(to, &burst, Some(1000));
        assert!(tx.gso.load(Ordering::Relaxed), "loopback takes GSO");
        let mut buf = [0u8; 4000];
        for (len, fill) in [(1000, 1), (1000, 2), (500, 3)] {
            let (n, _) =
                tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv_from(&mut buf))
                    .await
                    .expect("a datagram in time")
                    .unwrap();
            assert_eq!(n, len);
            assert!(buf[..n].iter().all(|&b| b == fill));
        }
    }

    #[tokio::test]
    async fn a_batch_reads_a_burst_in_order_with_its_senders() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // More than one batch, sizes 1..=BATCH+4, alternating senders.
        let count = BATCH + 4;
        for k in 1..=count {
            let from = if k % 2 == 0 { &a } else { &b };
            from.send_to(&vec![k as u8; k], to).await.unwrap();
        }
        let mut batch = Batch::default();
        let mut seen = Vec::new();
        while seen.len() < count {
            tokio::time::timeout(std::time::Duration::from_secs(5), rx.readable())
                .await
                .expect("readable in time")
                .unwrap();
            match batch.recv(&rx) {
                Ok(n) => {
                    assert!(n <= BATCH);
                    for i in 0..n {
                        let (data, from) = batch.get(i);
                        seen.push((data.to_vec(), from));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        for (k, (data, from)) in (1..=count).zip(&seen) {
            assert_eq!(data, &vec![k as u8; k]);
            let sender = if k % 2 == 0 { &a } else { &b };
            assert_eq!(*from, sender.local_addr().unwrap());
        }
        let err = batch.recv(&rx).expect_err("nothing left");
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    }

    #[tokio::test]
    async fn a_batch_knows_ipv6_senders() {
        let Ok(rx) = UdpSocket::bind("[::1]:0").await else {
            return; // no IPv6 loopback on this machine
        };
        let tx = UdpSocket::bind("[::1]:0").await.unwrap();
        tx.send_to(b"six", rx.local_addr().unwrap()).await.unwrap();
        rx.readable().await.unwrap();
        let mut batch = Batch::default();
        assert_eq!(batch.recv(&rx).unwrap(), 1);
        assert_eq!(batch.get(0), (&b"six"[..], tx.local_addr().unwrap()));
    }

    #[tokio::test]
    async fn binds_inside_the_range() {
        let s = bind("127.0.0.1".parse().unwrap(), Some((0, 0))).unwrap();
        assert_eq!(s.local_addr().unwrap().ip().to_string(), "127.0.0.1");
    }
}
