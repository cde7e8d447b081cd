//! The call's pump: one task owns the WebRTC instance (str0m, sans-I/O) and the
//! call's UDP sockets. Each wake-up reads every datagram that is waiting, hands
//! it to the instance, and sends what the instance wants sent; RTP comes out
//! as events and is depacketized right here (`media.rs`) into the hub's frame
//! queue. STUN, DTLS, SRTP, NACKs, receiver reports and TWCC all run inline,
//! with no task hand-off per packet (`docs/design/0012-ring-call-str0m.md`).
//!
//! The driver (`driver.rs`) talks to the pump through [`PumpHandle`]: Ring's
//! answer and remote candidates go in, local candidates and the connection
//! state come out. Talkback RTP arrives from [`super::talk::TalkSender`], key
//! frame requests through `MediaShared::pli`. The pump ends when the driver
//! drops its handle (after hanging up), closing the instance (RTCP BYE, DTLS
//! close_notify) on the way out.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{Instrument as _, debug, info, trace, warn};

use super::LiveOptions;
use super::media::{AudioIn, MediaShared, Next, VideoIn};
use super::peer::{Carried, Offered, carried};
use super::reorder::Reorder;
use super::stun::{self, Gatherer};
use super::talk::TalkRtp;
use crate::base::stack_poll::{self, Polled};
use crate::base::timer::Timer;
use crate::base::udp::{self, Sockets};
use crate::media::VideoCodec;

/// How long ICE may stay disconnected before the call counts as failed.
const DISCONNECTED_FAIL: Duration = Duration::from_secs(20);
/// Upper bound on the wait when nothing is scheduled.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// How long video packets wait for a missing one (its NACKed retransmission).
const REORDER_WAIT: Duration = Duration::from_millis(150);
/// The most video packets held behind a missing one (~0.5 s at 4 Mbit/s).
const REORDER_MAX: usize = 200;

/// One video RTP packet on its way to the depacketizer.
struct VideoPacket {
    codec: VideoCodec,
    seq: u16,
    timestamp: u32,
    marker: bool,
    payload: Bytes,
}

/// What the driver sends the pump.
#[derive(Debug)]
pub(crate) enum Command {
    /// Ring's answer (already fixed up); the reply says whether it applied.
    Answer {
        sdp: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A remote candidate Ring trickled (`candidate:…`).
    Candidate(String),
}

/// What the pump tells the driver.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    /// A local candidate to trickle to Ring (`candidate:…`, m-line 0).
    Candidate(String),
    /// ICE and DTLS are up.
    Connected,
    /// The transport failed or closed under us.
    Failed(&'static str),
}

/// The driver's side of a running pump; dropping it stops the pump.
pub(crate) struct PumpHandle {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) events: mpsc::UnboundedReceiver<PeerEvent>,
    _stop: DropGuard,
}

/// Binds the call's sockets, adds them as host candidates, and spawns the
/// pump on the call's tracker. Fails when no socket could be bound.
pub(crate) fn start(
    opts: &LiveOptions,
    offered: Offered,
    media: Arc<MediaShared>,
    talk: mpsc::Receiver<TalkRtp>,
) -> std::io::Result<PumpHandle> {
    let Offered {
        mut rtc,
        pending,
        audio_mid,
        video_mid,
        ..
    } = offered;
    let (events_tx, events) = mpsc::unbounded_channel();
    let ips = udp::local_ips(opts.include_loopback, &opts.ice_ips);
    let sockets = Sockets::bind_all(&ips, opts.udp_ports, |addr| addr)?;
    for sock in &sockets.list {
        let added = Candidate::host(sock.announced, "udp")
            .ok()
            .and_then(|c| rtc.add_local_candidate(c).map(|c| c.to_sdp_string()));
        if let Some(line) = added {
            let _ = events_tx.send(PeerEvent::Candidate(line));
        }
    }
    debug!(sockets = sockets.list.len(), "ICE sockets bound");
    let (commands, commands_rx) = mpsc::unbounded_channel();
    // The driver's handle owns the pump's life: dropping it stops the pump,
    // after the driver has hung up (not when the call's token fires, which
    // would race the driver's own view of the end).
    let stop = CancellationToken::new();
    let pump = Pump {
        rtc,
        pending: Some(pending),
        sockets,
        audio_mid,
        video_mid,
        talk_ssrc: opts.talk_ssrc.map(Ssrc::from),
        events: events_tx,
        media: Arc::clone(&media),
        video: None,
        video_ssrc: None,
        reorder: Reorder::new(REORDER_WAIT, REORDER_MAX),
        audio: AudioIn::new(),
        nacks_seen: 0,
        connected: false,
        disconnected_since: None,
        stun: Gatherer::default(),
        ended: None,
    };
    let stun_hosts: Vec<String> = opts
        .ice_servers
        .iter()
        .filter_map(|u| stun::stun_host(u))
        .collect();
    let span = media.span.clone();
    media.tasks.spawn(
        pump.run(stop.clone(), commands_rx, talk, stun_hosts)
            .instrument(span),
    );
    Ok(PumpHandle {
        commands,
        events,
        _stop: stop.drop_guard(),
    })
}

struct Pump {
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    sockets: Sockets,
    audio_mid: Mid,
    video_mid: Mid,
    /// [`LiveOptions::talk_ssrc`], announced in the offer (`peer.rs`).
    talk_ssrc: Option<Ssrc>,
    events: mpsc::UnboundedSender<PeerEvent>,
    media: Arc<MediaShared>,
    video: Option<VideoIn>,
    video_ssrc: Option<Ssrc>,
    /// Video packets wait here for a missing one, then go to `video` in order.
    reorder: Reorder<VideoPacket>,
    audio: AudioIn,
    /// NACKs the instance had reported sending, for the stats' deltas.
    nacks_seen: u64,
    connected: bool,
    disconnected_since: Option<Instant>,
    /// Server-reflexive gathering.
    stun: Gatherer,
    /// Set when the pump must stop (consumer gone, transport dead).
    ended: Option<&'static str>,
}

impl Pump {
    async fn run(
        mut self,
        stop: CancellationToken,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut talk: mpsc::Receiver<TalkRtp>,
        stun_hosts: Vec<String>,
    ) {
        let media = Arc::clone(&self.media);
        let mut stopped = pin!(stop.cancelled());
        let mut pli = pin!(media.pli.notified());
        let mut resolve = pin!(stun::resolve(stun_hosts));
        let mut resolving = true;
        let mut commands_open = true;
        let mut talk_open = true;
        let mut batch = udp::Batch::default();
        let mut timer = Timer::default();
        while let Some(next) = self.drain() {
            timer.set(self.next_wake(next));
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                i = self.sockets.recv(&mut batch) => self.read_batch(i, &batch),
                c = commands.recv(), if commands_open => match c {
                    Some(c) => self.command(c),
                    None => commands_open = false,
                },
                t = talk.recv(), if talk_open => match t {
                    Some(t) => self.talk(t),
                    None => talk_open = false,
                },
                _ = &mut pli => {
                    pli.set(media.pli.notified());
                    self.request_keyframe();
                }
                servers = &mut resolve, if resolving => {
                    resolving = false;
                    self.start_stun(servers);
                }
                _ = timer.wait() => self.on_timer(),
            }
        }
        if let Some(why) = self.ended {
            let _ = self.events.send(PeerEvent::Failed(why));
        }
        self.close();
    }

    /// Polls the instance until it waits for a time (str0m's contract after
    /// every mutation; due timeouts are handled on the way, see
    /// [`stack_poll`]); `None` once the pump must stop.
    fn drain(&mut self) -> Option<Instant> {
        loop {
            if self.ended.is_some() {
                return None;
            }
            match stack_poll::poll(&mut self.rtc, self.connected) {
                Ok(Polled::Wait(t)) => return Some(t),
                Ok(Polled::Transmit(t)) => self.transmit(t.source, t.destination, &t.contents),
                Ok(Polled::Event(e)) => self.event(e),
                Err(e) => {
                    warn!(err = %e, "WebRTC stack failed");
                    self.ended = Some("failed");
                }
            }
        }
    }

    /// The earliest of the instance's timeout, a STUN retransmission and the
    /// disconnection deadline (bounded, so a quiet call still checks in).
    fn next_wake(&self, rtc: Instant) -> Instant {
        let mut wake = rtc.min(Instant::now() + IDLE_WAKE);
        if let Some(t) = self.stun.next_wake() {
            wake = wake.min(t);
        }
        if let Some(t) = self.disconnected_since {
            wake = wake.min(t + DISCONNECTED_FAIL);
        }
        if let Some(t) = self.reorder.deadline() {
            wake = wake.min(t);
        }
        wake
    }

    fn transmit(&self, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        self.sockets.send(source, destination, data, None);
    }

    /// Hands the stack the datagrams one read took from socket `i` (up to
    /// [`udp::BATCH`] per system call; a longer burst takes further turns of
    /// the loop, with the instance drained in between).
    fn read_batch(&mut self, i: usize, batch: &udp::Batch) {
        for (data, from) in batch.iter() {
            if !self.input(i, from, data) {
                return;
            }
        }
    }

    /// Hands one datagram received on socket `i` to the stack (or the STUN
    /// gatherer); false once the pump must stop.
    fn input(&mut self, i: usize, from: SocketAddr, data: &[u8]) -> bool {
        if self.stun_response(i, from, data) {
            return true;
        }
        let local = self.sockets.list[i].announced;
        match Receive::new(Protocol::Udp, from, local, data) {
            Ok(r) => {
                if let Err(e) = self.rtc.handle_input(Input::Receive(Instant::now(), r)) {
                    debug!(err = %e, "dropping a datagram the stack refused");
                }
            }
            Err(e) => trace!(%from, err = %e, "ignoring a datagram that is not WebRTC"),
        }
        // Every mutation is followed by a full drain (str0m's contract).
        self.drain().is_some()
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Connected if !self.connected => {
                self.connected = true;
                let _ = self.events.send(PeerEvent::Connected);
            }
            Event::IceConnectionStateChange(s) => {
                debug!(state = ?s, "ICE state");
                match s {
                    IceConnectionState::Disconnected => {
                        self.disconnected_since.get_or_insert_with(Instant::now);
                    }
                    IceConnectionState::Connected | IceConnectionState::Completed => {
                        self.disconnected_since = None;
                    }
                    _ => {}
                }
            }
            Event::RtpPacket(p) => self.rtp(p),
            Event::MediaIngressStats(s) if s.mid == self.video_mid => {
                let new = s.nacks.saturating_sub(self.nacks_seen);
                self.nacks_seen = self.nacks_seen.max(s.nacks);
                if new > 0 {
                    self.media.transport.add_nacks(new);
                }
            }
            Event::Closed => self.ended = Some("closed"),
            _ => {}
        }
    }

    fn rtp(&mut self, p: RtpPacket) {
        let h = &p.header;
        let next = match carried(h.payload_type) {
            Carried::Video(codec) => {
                if self.video_ssrc != Some(h.ssrc) {
                    self.video_ssrc = Some(h.ssrc);
                    // str0m NACKs only streams with an RTX payload type, and Ring
                    // (like the simulator) may answer without one: then the
                    // retransmission comes on the stream itself, as before RTX.
                    // (By mid: that lookup also resets str0m's cached "any NACK" flag.)
                    let mid = self.video_mid;
                    if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, None) {
                        rx.suppress_nack(false);
                    }
                }
                let packet = VideoPacket {
                    codec,
                    seq: h.sequence_number,
                    timestamp: h.timestamp,
                    marker: h.marker,
                    payload: Bytes::from_owner(p.payload),
                };
                // The datagram's receive time: no clock read per packet here.
                self.reorder.push(*p.seq_no, packet, p.timestamp);
                self.flush_video();
                return;
            }
            Carried::Audio(super::AudioCodec::Opus) => {
                let payload = Bytes::from_owner(p.payload);
                self.audio.push(&self.media, p.header.timestamp, payload)
            }
            // PCMU (no output sends it as Opus) and anything unknown stop here.
            Carried::Audio(_) | Carried::Other => Next::Continue,
        };
        match next {
            Next::Continue => {}
            Next::Pli => self.request_keyframe(),
            Next::Closed => self.ended = Some("closed"),
        }
    }

    /// Depacketizes the video packets that are ready in order.
    fn flush_video(&mut self) {
        while let Some(v) = self.reorder.pop() {
            let video = match &mut self.video {
                Some(d) if d.codec() == v.codec => d,
                slot => slot.insert(VideoIn::new(v.codec)),
            };
            match video.push(&self.media, v.seq, v.timestamp, v.marker, &v.payload) {
                Next::Continue => {}
                Next::Pli => self.request_keyframe(),
                Next::Closed => self.ended = Some("closed"),
            }
        }
    }

    fn request_keyframe(&mut self) {
        let Some(ssrc) = self.video_ssrc else {
            trace!("no video stream yet for a PLI");
            return;
        };
        let mut api = self.rtc.direct_api();
        let Some(rx) = api.stream_rx(&ssrc) else {
            debug!(?ssrc, "no receive stream for a PLI");
            return;
        };
        rx.request_keyframe(KeyframeRequestKind::Pli);
        // The stack turns pending requests into RTCP on its next timeout: now.
        if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
            debug!(err = %e, "timeout input refused");
        }
        self.media.transport.add_pli();
        trace!(?ssrc, "PLI requested");
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Answer { sdp, reply } => {
                let _ = reply.send(self.answer(&sdp));
            }
            Command::Candidate(line) => {
                let line = line.trim().trim_start_matches("a=");
                match Candidate::from_sdp_string(line) {
                    Ok(c) => self.rtc.add_remote_candidate(c),
                    Err(e) => debug!(err = %e, "ignoring a bad remote candidate"),
                }
            }
        }
    }

    fn answer(&mut self, sdp: &str) -> Result<(), String> {
        let pending = self.pending.take().ok_or("an answer came twice")?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| e.to_string())?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())?;
        if let Some(ssrc) = self.talk_ssrc {
            // The stream the answer created has a random SSRC; the offer
            // announced this one.
            let mid = self.audio_mid;
            self.rtc.direct_api().reset_stream_tx(mid, None, ssrc, None);
        }
        Ok(())
    }

    fn talk(&mut self, t: TalkRtp) {
        let mid = self.audio_mid;
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            trace!("talkback before the audio stream exists; dropped");
            return;
        };
        let payload: Arc<[u8]> = Arc::from(&t.payload[..]);
        let write = RtpWrite::new(
            t.pt.into(),
            SeqNo::from(t.seq),
            t.timestamp,
            Instant::now(),
            payload,
        )
        .marker(t.marker);
        tx.write_rtp(write);
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            debug!(err = %e, "timeout input refused");
        }
        if self
            .disconnected_since
            .is_some_and(|t| now >= t + DISCONNECTED_FAIL)
        {
            info!("ICE stayed disconnected; ending the call");
            self.ended = Some("disconnected");
        }
        self.retransmit_stun(now);
        self.reorder.expire(now);
        self.flush_video();
    }

    /// Starts server-reflexive gathering against the resolved STUN servers.
    fn start_stun(&mut self, servers: Vec<SocketAddr>) {
        let locals: Vec<SocketAddr> = self.sockets.list.iter().map(|s| s.announced).collect();
        let now = Instant::now();
        self.stun.start(&locals, &servers, now);
        self.retransmit_stun(now);
    }

    fn retransmit_stun(&mut self, now: Instant) {
        for (sock, server, req) in self.stun.due(now) {
            let _ = self.sockets.list[sock].socket().try_send_to(&req, server);
        }
    }

    /// Handles `data` if it answers one of our STUN probes: adds the
    /// server-reflexive candidate and trickles it.
    fn stun_response(&mut self, sock: usize, from: SocketAddr, data: &[u8]) -> bool {
        let Some(mapped) = self.stun.answer(sock, from, data) else {
            return false;
        };
        let base = self.sockets.list[sock].announced;
        let Some(mapped) = mapped else {
            return true;
        };
        if mapped == base {
            return true;
        }
        let added = Candidate::server_reflexive(mapped, base, "udp")
            .ok()
            .and_then(|c| self.rtc.add_local_candidate(c).map(|c| c.to_sdp_string()));
        if let Some(line) = added {
            debug!(%mapped, "server-reflexive candidate");
            let _ = self.events.send(PeerEvent::Candidate(line));
        }
        let _ = self.drain();
        true
    }

    /// Closes the instance and sends what that produces (BYE, close_notify).
    fn close(&mut self) {
        if self.rtc.close().is_err() {
            return;
        }
        for _ in 0..64 {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => self.transmit(t.source, t.destination, &t.contents),
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
        debug!("WebRTC instance closed");
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use tokio::net::UdpSocket;
    use tokio::sync::Notify;
    use tokio_util::task::TaskTracker;

    use super::*;

    /// A STUN server that answers every binding request with `mapped`
    /// (XOR-MAPPED-ADDRESS, encoded here from RFC 8489, not by our client).
    async fn fake_stun(mapped: SocketAddr) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                if n < 20 || buf[0..2] != [0, 1] {
                    continue;
                }
                let SocketAddr::V4(v4) = mapped else { return };
                let port = (v4.port() ^ 0x2112).to_be_bytes();
                let ip: Vec<u8> = v4
                    .ip()
                    .octets()
                    .iter()
                    .zip([0x21, 0x12, 0xA4, 0x42])
                    .map(|(a, k)| a ^ k)
                    .collect();
                let mut m = vec![0x01, 0x01, 0, 12, 0x21, 0x12, 0xA4, 0x42];
                m.extend_from_slice(&buf[8..20]);
                m.extend_from_slice(&[0x00, 0x20, 0, 8, 0, 1, port[0], port[1]]);
                m.extend_from_slice(&ip);
                let _ = sock.send_to(&m, from).await;
            }
        });
        addr
    }

    async fn next_candidate(h: &mut PumpHandle) -> String {
        match tokio::time::timeout(Duration::from_secs(10), h.events.recv()).await {
            Ok(Some(PeerEvent::Candidate(line))) => line,
            other => panic!("expected a candidate, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn trickles_host_then_server_reflexive_candidates() {
        let public: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        let server = fake_stun(public).await;
        let opts = LiveOptions {
            ice_servers: vec![format!("stun:{server}"), "turn:ignored.example".into()],
            ice_ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            include_loopback: true,
            ..LiveOptions::default()
        };
        let media = Arc::new(MediaShared {
            frames_tx: mpsc::channel(8).0,
            start: Instant::now(),
            pli: Notify::new(),
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
            span: tracing::Span::none(),
            transport: Arc::default(),
        });
        let offered = super::super::peer::offer(&opts, Instant::now()).unwrap();
        let mut handle = start(&opts, offered, Arc::clone(&media), mpsc::channel(1).1).unwrap();
        let host = next_candidate(&mut handle).await;
        assert!(
            host.starts_with("candidate:")
                && host.contains("127.0.0.1")
                && host.contains("typ host"),
            "{host}"
        );
        let srflx = next_candidate(&mut handle).await;
        // str0m hides the base address (raddr 0.0.0.0), as browsers do.
        assert!(srflx.contains("203.0.113.7 40000 typ srflx"), "{srflx}");
        drop(handle);
        media.tasks.close();
        tokio::time::timeout(Duration::from_secs(5), media.tasks.wait())
            .await
            .expect("the pump stops with its handle");
    }
}
