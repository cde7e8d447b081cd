//! A UDP socket registered with the reactor for readability only, and batch
//! reads from it.
//!
//! A UDP socket is almost always writable, and one registered for writability
//! too (as `tokio::net::UdpSocket` is) brings an `EPOLLOUT` event back after
//! every send: an `epoll_wait` return and a driver dispatch for nothing. Sends
//! here never wait (a full send buffer drops the datagram, as a full network
//! would). A batch read that does not fill its slots also marks the socket
//! drained, so a burst costs no extra empty read (`docs/PERFORMANCE.md`,
//! eleventh step).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll, ready};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A non-blocking UDP socket the reactor watches for readability only (see
/// the module's documentation). Sends go straight to the kernel and never
/// wait; reads go through [`Socket::recv_from`] or [`Socket::poll_recv_batch`],
/// which keep the reactor's view of readiness right.
#[derive(Debug)]
pub struct Socket {
    fd: AsyncFd<std::net::UdpSocket>,
}

impl Socket {
    /// Takes `socket` (made non-blocking) into the reactor of the current
    /// Tokio runtime.
    pub fn from_std(socket: std::net::UdpSocket) -> std::io::Result<Socket> {
        socket.set_nonblocking(true)?;
        // SAFETY: the `std::net::UdpSocket` owns its descriptor and the
        // `AsyncFd` owns the socket: nothing here closes, replaces or hands out
        // the socket mutably, so the descriptor stays open and the same until
        // the `AsyncFd` is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(Socket { fd })
    }

    /// Binds `addr` (port 0 picks one).
    pub fn bind(addr: SocketAddr) -> std::io::Result<Socket> {
        Socket::from_std(std::net::UdpSocket::bind(addr)?)
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }

    /// Sends one datagram without waiting (`WouldBlock` when the send buffer
    /// is full).
    pub fn try_send_to(&self, data: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.fd.get_ref().send_to(data, to)
    }

    /// Waits for one datagram.
    pub async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.fd
            .async_io(Interest::READABLE, |s| s.recv_from(buf))
            .await
    }

    /// Reads up to `batch`'s slots of waiting datagrams (at most [`BATCH`])
    /// once some are waiting. A read that did not fill the slots emptied the
    /// queue, so it marks the socket not ready without another (empty) read; a
    /// datagram that arrives meanwhile brings its own readiness event, which
    /// this does not clear.
    pub fn poll_recv_batch(
        &self,
        cx: &mut Context<'_>,
        batch: &mut Batch,
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            match batch.read(self.as_raw_fd()) {
                Ok(read) => {
                    if read < batch.slots {
                        guard.clear_ready();
                    } else {
                        guard.retain_ready();
                    }
                    return Poll::Ready(Ok(batch.got.len()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) => {
                    guard.retain_ready();
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}

/// Datagrams one read takes at most.
pub const BATCH: usize = 16;
/// Room per datagram in a [`Batch`]; longer ones are cut (nothing WebRTC sends
/// here comes near it).
const DATAGRAM_ROOM: usize = 2048;

/// Room for the datagrams [`Socket::poll_recv_batch`] reads [`BATCH`] at a
/// time with one `recvmmsg` call: a video frame's burst costs one system call
/// instead of one per packet plus one.
#[derive(Debug)]
pub struct Batch {
    buf: Vec<u8>,
    /// How many datagrams one read takes at most.
    slots: usize,
    /// Slot, length and sender of each datagram read.
    got: Vec<(usize, usize, SocketAddr)>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new(BATCH)
    }
}

impl Batch {
    /// Room for `slots` datagrams per read (1 to [`BATCH`]): a socket that
    /// only ever gets a few at a time (a viewer's reports) needs less.
    pub fn new(slots: usize) -> Batch {
        let slots = slots.clamp(1, BATCH);
        Batch {
            buf: vec![0; slots * DATAGRAM_ROOM],
            slots,
            got: Vec::with_capacity(slots),
        }
    }

    /// Reads up to its slots' worth of datagrams from `fd` without blocking;
    /// how many `recvmmsg` returned (those from an unknown address family are
    /// skipped in [`Batch::iter`]), or `WouldBlock` when none was waiting.
    fn read(&mut self, fd: std::os::fd::RawFd) -> std::io::Result<usize> {
        let Batch { buf, slots, got } = self;
        got.clear();
        // On the stack; only the headers are allocated per call (nix's
        // `MultiHeaders` holds raw pointers, so a pump's future could not
        // keep one across awaits).
        let mut rooms = buf.chunks_mut(DATAGRAM_ROOM);
        let mut slices: [[std::io::IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [std::io::IoSliceMut::new(rooms.next().unwrap_or_default())]);
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(*slots, None);
        let results = recvmmsg(
            fd,
            &mut headers,
            slices.iter_mut().take(*slots).map(|s| &*s),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(std::io::Error::from)?;
        let mut read = 0;
        for (slot, r) in results.enumerate() {
            read += 1;
            if let Some(from) = r.address.as_ref().and_then(socket_addr) {
                got.push((slot, r.bytes.min(DATAGRAM_ROOM), from));
            }
        }
        Ok(read)
    }

    /// The datagrams of the last read and their senders, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.got.iter().map(|&(slot, len, from)| {
            let start = slot * DATAGRAM_ROOM;
            (&self.buf[start..start + len], from)
        })
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::*;

    const IN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

    /// Waits for a batch from `socket`, within [`IN_TIME`]; the datagrams read.
    async fn recv_batch(socket: &Socket, batch: &mut Batch) -> Vec<(Vec<u8>, SocketAddr)> {
        let n = tokio::time::timeout(
            IN_TIME,
            std::future::poll_fn(|cx| socket.poll_recv_batch(cx, batch)),
        )
        .await
        .expect("datagrams in time")
        .unwrap();
        let got: Vec<_> = batch.iter().map(|(d, from)| (d.to_vec(), from)).collect();
        assert_eq!(got.len(), n);
        got
    }

    /// Polls `socket` once for a batch, without a task to wake.
    fn poll_once(socket: &Socket, batch: &mut Batch) -> Poll<std::io::Result<usize>> {
        socket.poll_recv_batch(&mut Context::from_waker(std::task::Waker::noop()), batch)
    }

    #[tokio::test]
    async fn a_batch_reads_a_burst_in_order_with_its_senders() {
        let rx = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
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
            let got = recv_batch(&rx, &mut batch).await;
            assert!(got.len() <= BATCH);
            seen.extend(got);
        }
        for (k, (data, from)) in (1..=count).zip(&seen) {
            assert_eq!(data, &vec![k as u8; k]);
            let sender = if k % 2 == 0 { &a } else { &b };
            assert_eq!(*from, sender.local_addr().unwrap());
        }
        assert!(poll_once(&rx, &mut batch).is_pending(), "nothing left");
    }

    #[tokio::test]
    async fn a_drained_socket_wakes_for_the_next_datagram() {
        let rx = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = rx.local_addr().unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut batch = Batch::default();
        for round in 1..=3u8 {
            // A short read marks the socket drained without an empty read ...
            for _ in 0..round {
                tx.send_to(&[round], to).await.unwrap();
            }
            let got = recv_batch(&rx, &mut batch).await;
            assert_eq!(got.len(), usize::from(round));
            assert!(poll_once(&rx, &mut batch).is_pending());
            // ... and the next datagram still wakes a waiting reader.
            let send = async {
                tokio::task::yield_now().await;
                tx.send_to(&[0xAA], to).await.unwrap();
            };
            let (got, ()) = tokio::join!(recv_batch(&rx, &mut batch), send);
            assert_eq!(got, vec![(vec![0xAA], tx.local_addr().unwrap())]);
        }
    }

    #[tokio::test]
    async fn a_batch_knows_ipv6_senders() {
        let Ok(rx) = Socket::bind("[::1]:0".parse().unwrap()) else {
            return; // no IPv6 loopback on this machine
        };
        let tx = UdpSocket::bind("[::1]:0").await.unwrap();
        tx.send_to(b"six", rx.local_addr().unwrap()).await.unwrap();
        let got = recv_batch(&rx, &mut Batch::default()).await;
        assert_eq!(got, vec![(b"six".to_vec(), tx.local_addr().unwrap())]);
    }

    #[tokio::test]
    async fn a_socket_receives_single_datagrams_too() {
        let rx = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let tx = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        tx.try_send_to(b"one", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = tokio::time::timeout(IN_TIME, rx.recv_from(&mut buf))
            .await
            .expect("a datagram in time")
            .unwrap();
        assert_eq!((&buf[..n], from), (&b"one"[..], tx.local_addr().unwrap()));
    }
}
