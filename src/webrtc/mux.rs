//! One UDP port for every viewer's ICE (`webrtc.udp_port`), so a single port
//! mapping (a Home Assistant add-on, a firewall, Docker without a port range) is
//! enough for browser WebRTC.
//!
//! One task reads the port and routes each datagram to its session: by the
//! sender's address once known, else by the ICE user fragment of a STUN binding
//! request (`USERNAME` is `<our ufrag>:<viewer's ufrag>`, RFC 8445 §7.2.2), which
//! also teaches the route that address. Datagrams from unknown senders that are
//! not such a request are dropped. Sessions send on the socket directly.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use str0m::ice::StunMessage;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, trace};

use crate::base::udp::{self, Sender};

/// Datagrams queued per session before the port drops that session's traffic.
const QUEUE: usize = 256;
/// Most sender addresses one session may be reached from (ICE candidates of one
/// viewer; bounds what a flood of spoofed requests can make us remember).
const MAX_ADDRS: usize = 16;
/// The largest datagram read.
const RECV_BUF: usize = 2048;

/// One datagram for a session.
#[derive(Debug)]
pub(crate) struct Datagram {
    /// The sender.
    pub from: SocketAddr,
    /// Its bytes.
    pub data: Vec<u8>,
}

#[derive(Default)]
struct Routes {
    /// Session queues by our ICE user fragment.
    by_ufrag: HashMap<String, (mpsc::Sender<Datagram>, usize)>,
    /// Our ICE user fragment by sender address.
    by_addr: HashMap<SocketAddr, String>,
}

struct Shared {
    sender: Sender,
    addr: SocketAddr,
    routes: Mutex<Routes>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Shared {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bound UDP port shared by all WHEP sessions; cheap to clone.
#[derive(Clone)]
pub struct SharedUdpPort {
    shared: Arc<Shared>,
}

impl SharedUdpPort {
    /// Binds `addr` (port 0 picks one) and starts routing its datagrams.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<SharedUdpPort> {
        let socket = udp::Socket::bind(addr)?;
        let addr = socket.local_addr()?;
        let shared = Arc::new(Shared {
            sender: Sender::new(socket),
            addr,
            routes: Mutex::new(Routes::default()),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        shared.tasks.spawn(route(Arc::clone(&shared)));
        Ok(SharedUdpPort { shared })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Routes datagrams for our ICE user fragment `ufrag` to the returned queue
    /// until the [`Route`] is dropped.
    pub(crate) fn register(&self, ufrag: &str) -> (Route, mpsc::Receiver<Datagram>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.shared
            .routes()
            .by_ufrag
            .insert(ufrag.to_owned(), (tx, 0));
        let route = Route {
            shared: Arc::clone(&self.shared),
            ufrag: ufrag.to_owned(),
        };
        (route, rx)
    }

    /// Stops routing and waits for the routing task.
    pub async fn close(&self) {
        self.shared.stop.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

impl fmt::Debug for SharedUdpPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedUdpPort")
            .field("addr", &self.shared.addr)
            .finish()
    }
}

/// A session's registration on the shared port; sends from it. Dropping it
/// forgets the session's user fragment and addresses.
pub(crate) struct Route {
    shared: Arc<Shared>,
    ufrag: String,
}

impl Route {
    /// Sends `data` (one datagram, or a run of `segment`-byte ones) to `to`
    /// from the shared port.
    pub fn send(&self, data: &[u8], to: SocketAddr, segment: Option<usize>) {
        self.shared.sender.send(to, data, segment);
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        let mut routes = self.shared.routes();
        routes.by_ufrag.remove(&self.ufrag);
        let ufrag = &self.ufrag;
        routes.by_addr.retain(|_, u| u != ufrag);
    }
}

/// The routing task: reads the port until closed.
async fn route(shared: Arc<Shared>) {
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let (n, from) = tokio::select! {
            _ = shared.stop.cancelled() => break,
            r = shared.sender.socket().recv_from(&mut buf) => match r {
                Ok(r) => r,
                // ICMP errors (port unreachable) surface here; not fatal for UDP.
                Err(e) => {
                    trace!(err = %e, "UDP receive error on the shared port");
                    continue;
                }
            },
        };
        // A dual-stack port sees IPv4 viewers as `::ffff:a.b.c.d`; the
        // sessions (and their candidates) know them as IPv4.
        let from = udp::canonical(from);
        let data = &buf[..n];
        let mut guard = shared.routes();
        let routes = &mut *guard;
        // A binding request names its session; anything else comes from an
        // address a request taught us.
        let Some(ufrag) = binding_ufrag(data).or_else(|| routes.by_addr.get(&from).cloned()) else {
            trace!(%from, "datagram from an unknown sender; dropped");
            continue;
        };
        let Some((tx, addrs)) = routes.by_ufrag.get_mut(&ufrag) else {
            trace!(%from, "no session for this ICE user fragment; dropped");
            continue;
        };
        let tx = tx.clone();
        if routes.by_addr.get(&from) != Some(&ufrag) {
            if *addrs >= MAX_ADDRS {
                continue;
            }
            *addrs += 1;
            routes.by_addr.insert(from, ufrag);
        }
        drop(guard);
        let d = Datagram {
            from,
            data: data.to_vec(),
        };
        if tx.try_send(d).is_err() {
            debug!(%from, "session queue full or closed; datagram dropped");
        }
    }
}

/// Our user fragment from a STUN binding request's `USERNAME`. Only STUN's
/// first-byte range (0..=3, RFC 7983) is parsed: media costs one comparison.
fn binding_ufrag(data: &[u8]) -> Option<String> {
    if *data.first()? > 3 {
        return None;
    }
    let msg = StunMessage::parse(data).ok()?;
    if !msg.is_binding_request() {
        return None;
    }
    msg.split_username().map(|(ours, _)| ours.to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use str0m::ice::TransId;
    use tokio::net::UdpSocket;

    use super::*;

    /// A STUN binding request as a viewer's ICE agent sends it. The router
    /// reads only the user name (the session's stack checks the integrity, so
    /// any value does here).
    fn binding(username: &str) -> Vec<u8> {
        let msg = StunMessage::binding_request(username, TransId::new(), true, 1, 1, false);
        let mut buf = vec![0u8; 512];
        let n = msg
            .to_bytes(Some(b"password"), &mut buf, |_, _| [7; 20])
            .unwrap();
        buf.truncate(n);
        buf
    }

    async fn next(rx: &mut mpsc::Receiver<Datagram>) -> Datagram {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a datagram in time")
            .expect("route open")
    }

    #[tokio::test]
    async fn routes_by_user_fragment_then_by_the_address_it_taught() {
        let port = SharedUdpPort::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (route_a, mut a) = port.register("ufraga");
        let (_route_b, mut b) = port.register("ufragb");
        let viewer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = port.local_addr();

        // Nothing from an address no binding request named reaches anyone.
        stranger.send_to(b"\x80\x00garbage", to).await.unwrap();
        viewer.send_to(&binding("ufraga:remote"), to).await.unwrap();
        let d = next(&mut a).await;
        assert_eq!(d.from, viewer.local_addr().unwrap());
        assert!(StunMessage::parse(&d.data).is_ok());
        // Media from the taught address follows the request.
        viewer.send_to(b"\x80\x60rtp", to).await.unwrap();
        assert_eq!(next(&mut a).await.data, b"\x80\x60rtp");
        // A request for another session goes there, whoever sends it.
        stranger.send_to(&binding("ufragb:x"), to).await.unwrap();
        assert_eq!(next(&mut b).await.from, stranger.local_addr().unwrap());

        // A dropped route forgets its addresses.
        drop(route_a);
        viewer.send_to(b"\x80\x60late", to).await.unwrap();
        stranger.send_to(b"\x80\x60for-b", to).await.unwrap();
        assert_eq!(next(&mut b).await.data, b"\x80\x60for-b");
        assert!(a.try_recv().is_err());
        port.close().await;
    }

    #[tokio::test]
    async fn a_dual_stack_port_knows_ipv4_viewers_as_ipv4() {
        let Ok(port) = SharedUdpPort::bind("[::]:0".parse().unwrap()).await else {
            return; // no IPv6 on this machine: nothing to check
        };
        let (route, mut rx) = port.register("dual");
        let viewer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = SocketAddr::new("127.0.0.1".parse().unwrap(), port.local_addr().port());
        viewer.send_to(&binding("dual:x"), to).await.unwrap();
        let d = next(&mut rx).await;
        assert_eq!(d.from, viewer.local_addr().unwrap(), "IPv4, not ::ffff:…");
        // And answers to an IPv4 address leave the IPv6 socket.
        route.send(b"pong", d.from, None);
        let mut buf = [0u8; 16];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), viewer.recv_from(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert_eq!(&buf[..n], b"pong");
        port.close().await;
    }
}
