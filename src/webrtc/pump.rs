//! A viewer session's pump: one task owns the session's WebRTC instance (str0m,
//! sans-I/O) and its UDP transport, and does everything per packet inline: ICE
//! and DTLS, the camera's frames from the hub turned into RTP (`outbound.rs`)
//! and written with SRTP, NACKs answered from the instance's retransmission
//! cache, key frame requests passed to the hub, and the viewer's audio handed
//! to the talkback intake (`talk.rs`). No task hand-off per packet
//! (`docs/design/0014-whep-str0m.md`).
//!
//! The transport is the session's own sockets (one per local address, from the
//! port range) or the shared UDP port (`mux.rs`). The session (`session.rs`)
//! follows the pump through [`PeerState`]; trickled candidates come in over a
//! channel. The pump ends when the session's token fires or the transport dies,
//! closing the instance (DTLS close_notify) on the way out.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::media::{MediaKind as RtcKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, trace};

use super::activity::Activity;
use super::mux::{Datagram, Route};
use super::outbound::{Outbound, RtpOut, Step};
use super::peer::{RTX_CACHE_AGE, RTX_CACHE_PACKETS};
use super::talk::Uplink;
use crate::base::stack_poll::{self, Polled};
use crate::base::timer::Timer;
use crate::base::udp::{Batch, Outbox, Sockets};
use crate::media::{CameraStream, Frame, MediaKind, RecvError, Subscriber, ViewerKind};

/// Datagrams one read of the viewer's socket takes at most: a viewer sends
/// reports and consent checks, a few at a time.
const RECV_BATCH: usize = 4;
/// Upper bound on the wait when nothing is scheduled.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// A connected viewer that sends nothing at all (no RTCP, no ICE consent
/// checks) for this long is [`PeerState::Disconnected`]: browsers send receiver
/// reports about every second and consent checks every few seconds, so a
/// silent viewer has vanished (a closed lid, a dropped network). The session
/// ends after `WhepOptions::disconnected_timeout` more.
const SILENT_AFTER: Duration = Duration::from_secs(5);

/// A session's connection state, as `GET /api/webrtc/sessions` shows it (the
/// names of the W3C `RTCPeerConnectionState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PeerState {
    /// Answered; the viewer has not reached us yet.
    New,
    /// ICE checks or the DTLS handshake under way.
    Connecting,
    /// Media flows.
    Connected,
    /// ICE lost the viewer (no answers to consent checks).
    Disconnected,
    /// The transport failed.
    Failed,
    /// Closed by either side.
    Closed,
}

impl std::fmt::Display for PeerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PeerState::New => "new",
            PeerState::Connecting => "connecting",
            PeerState::Connected => "connected",
            PeerState::Disconnected => "disconnected",
            PeerState::Failed => "failed",
            PeerState::Closed => "closed",
        })
    }
}

/// The session's UDP transport.
pub(crate) enum Transport {
    /// Sockets of its own, one per host candidate.
    Own(Sockets),
    /// The shared port: datagrams come routed by our ICE user fragment.
    Shared {
        route: Route,
        rx: mpsc::Receiver<Datagram>,
        /// Our candidates on the shared port (one per local address).
        candidates: Vec<SocketAddr>,
    },
}

/// What woke the pump's transport.
enum Ready {
    /// A read from socket `.0` into the pump's batch.
    Socket(usize),
    Datagram(Datagram),
    Closed,
}

impl Transport {
    async fn ready(&mut self, batch: &mut Batch) -> Ready {
        match self {
            Transport::Own(s) => Ready::Socket(s.recv(batch).await),
            Transport::Shared { rx, .. } => match rx.recv().await {
                Some(d) => Ready::Datagram(d),
                None => Ready::Closed,
            },
        }
    }

    fn send(
        &self,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
        segment: Option<usize>,
    ) {
        match self {
            Transport::Own(s) => s.send(source, destination, data, segment),
            Transport::Shared { route, .. } => route.send(data, destination, segment),
        }
    }

    /// The candidate a datagram from `from` on the shared port arrived at: the
    /// port gives no destination address, so the candidate on the sender's own
    /// address (the same host), else the first of its address family.
    fn shared_destination(candidates: &[SocketAddr], from: SocketAddr) -> Option<SocketAddr> {
        candidates
            .iter()
            .find(|c| c.ip() == from.ip())
            .or_else(|| candidates.iter().find(|c| c.is_ipv4() == from.is_ipv4()))
            .copied()
    }
}

/// What the session hands the pump (besides its transport and the trickled
/// candidates).
pub(crate) struct PumpParts {
    pub rtc: Rtc,
    pub stream: CameraStream,
    pub outbound: Outbound,
    /// The video payload type (the offer's, for the picked format).
    pub video_pt: u8,
    /// The Opus payload type, when audio was offered.
    pub audio_pt: Option<u8>,
    pub state: watch::Sender<PeerState>,
    pub activity: Arc<Activity>,
    /// The talkback intake's queue, when the viewer sends audio.
    pub uplink: Option<mpsc::Sender<Uplink>>,
}

struct Pump {
    p: PumpParts,
    video_mid: Option<Mid>,
    audio_mid: Option<Mid>,
    /// DTLS is up: frames flow.
    connected: bool,
    /// When the last datagram came from the viewer.
    last_heard: Instant,
    /// Frames sent (delivered to the stack).
    frames: u64,
    lagged: u64,
    /// Datagrams of the current drain, sent in runs (GSO).
    outbox: Outbox,
    /// Set when the pump must stop.
    ended: Option<&'static str>,
}

/// Runs the session's pump until `cancel` fires or the transport ends; the
/// reason is logged by the session from [`PeerState`].
pub(crate) async fn run(
    parts: PumpParts,
    mut transport: Transport,
    mut candidates: mpsc::UnboundedReceiver<Candidate>,
    cancel: CancellationToken,
) {
    let mut pump = Pump {
        p: parts,
        video_mid: None,
        audio_mid: None,
        connected: false,
        last_heard: Instant::now(),
        frames: 0,
        lagged: 0,
        outbox: Outbox::default(),
        ended: None,
    };
    let mut sub: Option<Subscriber> = None;
    let mut stopped = pin!(cancel.cancelled());
    let mut batch = Batch::new(RECV_BATCH);
    let mut timer = Timer::default();
    let mut candidates_open = true;
    while let Some(next) = pump.drain(&transport) {
        if pump.connected && sub.is_none() {
            let mut s = pump.p.stream.subscribe_as(ViewerKind::Whep);
            // A viewer that took no audio is not woken for it.
            s.set_audio(pump.audio_mid.is_some() && pump.p.audio_pt.is_some());
            sub = Some(s);
        }
        pump.check_silence();
        timer.set(next.min(Instant::now() + IDLE_WAKE));
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            r = transport.ready(&mut batch) => match r {
                Ready::Socket(i) => pump.read_socket(&transport, i, &batch),
                Ready::Datagram(d) => pump.read_shared(&mut transport, d),
                Ready::Closed => pump.ended = Some("the shared UDP port closed"),
            },
            r = next_frame(&mut sub) => match r {
                Ok(f) => pump.frame(&transport, &f),
                Err(RecvError::Lagged { dropped }) => {
                    pump.lagged += dropped;
                    debug!(dropped, "viewer fell behind; resuming at a key frame");
                }
                Err(RecvError::Closed) => pump.ended = Some("media hub closed"),
            },
            c = candidates.recv(), if candidates_open => match c {
                Some(c) => pump.p.rtc.add_remote_candidate(c),
                None => candidates_open = false,
            },
            _ = timer.wait() => pump.timeout(),
        }
    }
    if let Some(why) = pump.ended {
        debug!(why, "WebRTC pump ending");
    }
    pump.close(&transport);
    debug!(
        frames = pump.frames,
        lagged = pump.lagged,
        backlog = pump.p.outbound.backlog,
        "media sender stopped"
    );
}

/// The next frame; pending forever before the viewer is connected.
async fn next_frame(sub: &mut Option<Subscriber>) -> Result<Arc<Frame>, RecvError> {
    match sub {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

impl Pump {
    /// Polls the instance until it waits for a time (str0m's contract after
    /// every mutation; due timeouts are handled on the way, see
    /// [`stack_poll`]); `None` once the pump must stop.
    fn drain(&mut self, transport: &Transport) -> Option<Instant> {
        let mut send = |s, d, data: &[u8], segment| transport.send(s, d, data, segment);
        loop {
            if self.ended.is_some() {
                self.outbox.flush(&mut send);
                return None;
            }
            match stack_poll::poll(&mut self.p.rtc, self.connected) {
                Ok(Polled::Wait(t)) => {
                    self.outbox.flush(&mut send);
                    return Some(t);
                }
                Ok(Polled::Transmit(t)) => {
                    self.outbox
                        .push(t.source, t.destination, &t.contents, &mut send)
                }
                Ok(Polled::Event(e)) => self.event(e),
                Err(e) => {
                    debug!(err = %e, "WebRTC stack failed");
                    self.set_state(PeerState::Failed);
                    self.ended = Some("failed");
                }
            }
        }
    }

    fn set_state(&self, s: PeerState) {
        self.p.state.send_if_modified(|cur| {
            let changed = *cur != s;
            if changed {
                debug!(state = %s, "peer connection state");
            }
            *cur = s;
            changed
        });
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                if !self.connected {
                    self.connected = true;
                    info!("viewer connected");
                }
                self.set_state(PeerState::Connected);
            }
            Event::IceConnectionStateChange(s) => {
                trace!(state = ?s, "ICE state");
                match s {
                    IceConnectionState::Checking if !self.connected => {
                        self.set_state(PeerState::Connecting)
                    }
                    IceConnectionState::Disconnected => self.set_state(PeerState::Disconnected),
                    IceConnectionState::Connected | IceConnectionState::Completed
                        if self.connected =>
                    {
                        self.set_state(PeerState::Connected)
                    }
                    _ => {}
                }
            }
            Event::MediaAdded(m) => match m.kind {
                RtcKind::Video => {
                    self.video_mid = Some(m.mid);
                    let mut api = self.p.rtc.direct_api();
                    if let Some(tx) = api.stream_tx_by_mid(m.mid, None) {
                        tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, None);
                    }
                }
                RtcKind::Audio => self.audio_mid = Some(m.mid),
            },
            Event::KeyframeRequest(_) => {
                debug!("viewer asked for a key frame (PLI/FIR)");
                self.p.stream.request_keyframe();
            }
            Event::RtpPacket(p) => {
                if self.p.audio_pt.map(Pt::from) == Some(p.header.payload_type)
                    && let Some(tx) = &self.p.uplink
                {
                    let up = Uplink {
                        timestamp: p.header.timestamp,
                        payload: Bytes::from_owner(p.payload),
                    };
                    if tx.try_send(up).is_err() {
                        trace!("talkback intake busy; viewer audio dropped");
                    }
                }
            }
            Event::Closed => {
                self.set_state(PeerState::Closed);
                self.ended = Some("peer connection closed");
            }
            _ => {}
        }
    }

    /// A connected viewer silent for [`SILENT_AFTER`] is disconnected; one
    /// heard again is connected again.
    fn check_silence(&mut self) {
        if !self.connected {
            return;
        }
        let silent = self.last_heard.elapsed() > SILENT_AFTER;
        let state = *self.p.state.borrow();
        if silent && state == PeerState::Connected {
            debug!("viewer silent; disconnected");
            self.set_state(PeerState::Disconnected);
        } else if !silent && state == PeerState::Disconnected {
            self.set_state(PeerState::Connected);
        }
    }

    /// Hands one datagram to the instance and drains it.
    fn input(&mut self, transport: &Transport, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let now = Instant::now();
        self.last_heard = now;
        // RTP and RTCP (RFC 7983): the viewer is alive, whatever ICE says.
        if data.first().is_some_and(|b| (128..=191).contains(b)) {
            self.p.activity.touch();
        }
        match Receive::new(Protocol::Udp, from, to, data) {
            Ok(r) => {
                if let Err(e) = self.p.rtc.handle_input(Input::Receive(now, r)) {
                    debug!(err = %e, "dropping a datagram the stack refused");
                }
            }
            Err(e) => trace!(%from, err = %e, "ignoring a datagram that is not WebRTC"),
        }
        // Every mutation is followed by a full drain (str0m's contract).
        let _ = self.drain(transport);
    }

    /// Hands the stack the datagrams one read took from socket `i`.
    fn read_socket(&mut self, transport: &Transport, i: usize, batch: &Batch) {
        let Transport::Own(sockets) = transport else {
            return;
        };
        let to = sockets.list[i].announced;
        for (data, from) in batch.iter() {
            self.input(transport, from, to, data);
            if self.ended.is_some() {
                return;
            }
        }
    }

    /// Handles `first` and every other datagram already queued by the shared port.
    fn read_shared(&mut self, transport: &mut Transport, first: Datagram) {
        let mut next = Some(first);
        while let Some(d) = next.take() {
            let Transport::Shared { candidates, .. } = &*transport else {
                return;
            };
            if let Some(to) = Transport::shared_destination(candidates, d.from) {
                self.input(transport, d.from, to, &d.data);
            }
            if self.ended.is_some() {
                return;
            }
            if let Transport::Shared { rx, .. } = transport {
                next = rx.try_recv().ok();
            }
        }
    }

    /// Writes one frame's packets; the drain that follows sends them.
    fn frame(&mut self, transport: &Transport, frame: &Frame) {
        let PumpParts {
            stream, outbound, ..
        } = &mut self.p;
        let step = outbound.frame(frame, || stream.video_params().map(|p| p.codec));
        let (kind, packets) = match step {
            Step::Send(kind, packets) => (kind, packets),
            Step::Skip => return,
            Step::CodecChanged(now) => {
                info!(stream = %now, "the camera's stream changed codec; ending the session");
                self.ended = Some("the camera's stream changed codec");
                return;
            }
        };
        let (Some(mid), Some(pt)) = (match kind {
            MediaKind::Video => (self.video_mid, Some(self.p.video_pt)),
            MediaKind::Audio => (self.audio_mid, self.p.audio_pt),
        }) else {
            return;
        };
        let now = Instant::now();
        let mut api = self.p.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            trace!("no send stream yet; frame dropped");
            return;
        };
        for RtpOut {
            seq,
            timestamp,
            marker,
            payload,
        } in packets
        {
            let write = RtpWrite::new(
                pt.into(),
                SeqNo::from(u64::from(seq)),
                timestamp,
                now,
                payload,
            )
            .marker(marker)
            .nackable(kind == MediaKind::Video);
            tx.write_rtp(write);
        }
        self.frames += 1;
        let _ = self.drain(transport);
    }

    fn timeout(&mut self) {
        if let Err(e) = self.p.rtc.handle_input(Input::Timeout(Instant::now())) {
            debug!(err = %e, "timeout input refused");
        }
    }

    /// Closes the instance and sends what that produces (DTLS close_notify).
    fn close(&mut self, transport: &Transport) {
        self.set_state(PeerState::Closed);
        if self.p.rtc.close().is_err() {
            return;
        }
        for _ in 0..64 {
            match self.p.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    transport.send(t.source, t.destination, &t.contents, None)
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_port_destination_prefers_the_senders_own_address() {
        let c: Vec<SocketAddr> = ["192.168.1.5:8555", "127.0.0.1:8555", "[2001:db8::5]:8555"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let d = |from: &str| Transport::shared_destination(&c, from.parse().unwrap());
        assert_eq!(d("127.0.0.1:5000"), Some(c[1]));
        assert_eq!(d("192.168.1.77:5000"), Some(c[0]));
        assert_eq!(d("[2001:db8::9]:5000"), Some(c[2]));
        assert_eq!(
            Transport::shared_destination(&c[..1], "[::1]:1".parse().unwrap()),
            None
        );
    }
}
