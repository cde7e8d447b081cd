//! The sending side of a [`Socket`]: plain datagrams, or the datagrams of one
//! burst (a video frame's packets) with UDP generic segmentation offload (GSO):
//! one `sendmsg` and one pass through the kernel's IP output path per run of
//! equal-sized datagrams instead of one per datagram.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
use tracing::{debug, trace};

use super::Socket;

/// Most datagrams in one GSO send (the kernel allows 64).
const GSO_MAX_SEGMENTS: usize = 48;
/// Most bytes in one GSO send (an IP datagram's limit, with headers).
const GSO_MAX_BYTES: usize = 60_000;
/// An [`Outbox`] gives back a buffer larger than this after sending (a key
/// frame's run), so a thousand idle viewers do not each keep 60 KB.
const OUTBOX_KEEP: usize = 16 * 1024;

/// A UDP socket's sending side: plain datagrams, or runs of them in one GSO
/// send while the kernel takes those (a device without it answers `EIO`; the
/// socket then sends datagram by datagram from there on).
#[derive(Debug)]
pub struct Sender {
    socket: Socket,
    gso: AtomicBool,
    /// The socket is IPv6 (perhaps dual-stack): IPv4 destinations are sent to
    /// as IPv4-mapped addresses.
    v6: bool,
}

impl Sender {
    /// Sends from `socket`.
    pub fn new(socket: Socket) -> Self {
        let v6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
        Sender {
            socket,
            gso: AtomicBool::new(true),
            v6,
        }
    }

    /// The socket.
    pub fn socket(&self) -> &Socket {
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
        sendmsg(fd, &iov, &cmsg, MsgFlags::MSG_DONTWAIT, Some(&addr))
            .map(|_| ())
            .map_err(std::io::Error::from)
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

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::*;
    use crate::base::udp::bind;

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

    const IN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

    #[tokio::test]
    async fn gso_runs_arrive_as_separate_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let tx = Sender::new(bind("127.0.0.1".parse().unwrap(), None).unwrap());
        let mut burst = vec![1u8; 1000];
        burst.extend(vec![2u8; 1000]);
        burst.extend(vec![3u8; 500]);
        // No wait for writability: the socket is not registered for it.
        tx.send(to, &burst, Some(1000));
        assert!(tx.gso.load(Ordering::Relaxed), "loopback takes GSO");
        let mut buf = [0u8; 4000];
        for (len, fill) in [(1000, 1), (1000, 2), (500, 3)] {
            let (n, _) = tokio::time::timeout(IN_TIME, rx.recv_from(&mut buf))
                .await
                .expect("a datagram in time")
                .unwrap();
            assert_eq!(n, len);
            assert!(buf[..n].iter().all(|&b| b == fill));
        }
    }
}
