//! The UDP relay a test viewer can reach the daemon through: pulling it makes the
//! viewer vanish without a goodbye, and its [`Tap`] reads the daemon's RTP headers
//! (not encrypted by SRTP) and loses video packets on request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a [`Relay`] sees of the daemon's RTP towards the viewer (the RTP header
/// is not encrypted by SRTP), and the video packets it is told to lose.
#[derive(Debug, Default)]
pub struct Tap {
    video_pt: u8,
    rtx_pt: Option<u8>,
    drop_every: AtomicU64,
    drop_left: AtomicU64,
    video: AtomicU64,
    dropped: AtomicU64,
    rtx: AtomicU64,
}

impl Tap {
    /// A tap on the answer's video format and its retransmission format.
    pub fn new(video_pt: u8, rtx_pt: Option<u8>) -> Tap {
        Tap {
            video_pt,
            rtx_pt,
            ..Tap::default()
        }
    }

    /// From now on, loses every `every`-th video packet, `count` of them.
    pub fn drop_video(&self, every: u64, count: u64) {
        self.drop_every.store(every.max(1), Ordering::SeqCst);
        self.drop_left.store(count, Ordering::SeqCst);
    }

    /// Video packets lost so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Packets on the answer's retransmission format so far.
    pub fn retransmissions(&self) -> u64 {
        self.rtx.load(Ordering::SeqCst)
    }

    /// Whether to forward `datagram` (daemon → viewer); counts what it sees.
    fn forward(&self, datagram: &[u8]) -> bool {
        // RTP (RFC 5761 demultiplexing): version 2, not an RTCP packet type.
        let rtp =
            datagram.len() >= 12 && datagram[0] >> 6 == 2 && !(192..=223).contains(&datagram[1]);
        if !rtp {
            return true;
        }
        let pt = datagram[1] & 0x7F;
        if Some(pt) == self.rtx_pt {
            self.rtx.fetch_add(1, Ordering::SeqCst);
        }
        if pt != self.video_pt {
            return true;
        }
        let n = self.video.fetch_add(1, Ordering::SeqCst) + 1;
        let every = self.drop_every.load(Ordering::SeqCst);
        if every == 0 || !n.is_multiple_of(every) {
            return true;
        }
        let left = self
            .drop_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1));
        if left.is_ok() {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// The video payload type of `answer` (the first format of its `m=video` line)
/// and its retransmission format (`a=fmtp:<rtx> apt=<video>`), if any.
pub fn answer_video_pts(answer: &str) -> (u8, Option<u8>) {
    let video: u8 = answer
        .lines()
        .find_map(|l| l.strip_prefix("m=video "))
        .and_then(|m| m.split_whitespace().nth(2))
        .and_then(|pt| pt.parse().ok())
        .expect("a video format in the answer");
    let apt = format!("apt={video}");
    let rtx = answer.lines().find_map(|l| {
        let (pt, params) = l.strip_prefix("a=fmtp:")?.split_once(' ')?;
        params
            .split(';')
            .any(|p| p.trim() == apt)
            .then(|| pt.parse().ok())?
    });
    (video, rtx)
}

/// A UDP relay between a test viewer and the daemon: the viewer's answer names
/// the relay instead of the daemon's candidates, so stopping it makes the viewer
/// vanish without a goodbye (a closed laptop lid, a dropped network).
pub struct Relay {
    task: tokio::task::JoinHandle<()>,
    tap: Arc<Tap>,
}

impl Relay {
    /// Starts relaying towards `daemon`, watching `tap`'s payload types; returns
    /// the relay and the address the viewer must send to.
    pub(super) async fn start(
        daemon: std::net::SocketAddr,
        tap: Tap,
    ) -> (Relay, std::net::SocketAddr) {
        let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let back = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = front.local_addr().unwrap();
        let tap = Arc::new(tap);
        let seen = Arc::clone(&tap);
        let task = tokio::spawn(async move {
            let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
            let mut viewer = None;
            loop {
                tokio::select! {
                    Ok((n, from)) = front.recv_from(&mut a) => {
                        viewer = Some(from);
                        let _ = back.send_to(&a[..n], daemon).await;
                    }
                    Ok((n, _)) = back.recv_from(&mut b) => {
                        if !seen.forward(&b[..n]) {
                            continue;
                        }
                        if let Some(v) = viewer {
                            let _ = front.send_to(&b[..n], v).await;
                        }
                    }
                }
            }
        });
        (Relay { task, tap }, addr)
    }

    /// What the relay sees and loses.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `answer` with its candidates replaced by one host candidate at `relay`, and
/// the daemon's loopback candidate it stood for.
pub(super) fn through_relay(
    answer: &str,
    relay: std::net::SocketAddr,
) -> (String, std::net::SocketAddr) {
    let mut daemon = None;
    let mut out = String::new();
    for line in answer.split_inclusive('\n') {
        if let Some(c) = line.trim_end().strip_prefix("a=candidate:") {
            let f: Vec<&str> = c.split(' ').collect();
            if daemon.is_none() && f[4] == "127.0.0.1" {
                daemon = Some(format!("{}:{}", f[4], f[5]).parse().unwrap());
                out.push_str(&format!(
                    "a=candidate:{} 1 udp 2130706431 {} {} typ host\r\n",
                    f[0],
                    relay.ip(),
                    relay.port()
                ));
            }
            continue;
        }
        out.push_str(line);
    }
    (out, daemon.expect("a loopback candidate in the answer"))
}
