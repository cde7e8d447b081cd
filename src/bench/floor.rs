//! The host's floor under the main scenario: what the bare minimum of the
//! daemon's job costs on this machine at the same packet rate. A relay thread
//! with blocking sockets receives every packet the simulator would send (video
//! bursts at the simulator's frame rate, 50 audio packets/s) on loopback and
//! forwards it to one UDP socket per WebRTC viewer (audio and video) and one
//! TCP connection per RTSP viewer (video, RTSP-interleaved): one wake-up per
//! burst, one system call per packet and output, no crypto, no RTP parsing, no
//! tasks. Its CPU time (from `/proc/thread-self/schedstat`) per video packet in
//! is comparable with the daemon's µs/packet, and the ratio daemon / floor says
//! how far the daemon is from what any process on this host would pay for the
//! same traffic (loopback delivery to the viewers included, as for the daemon).

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::stats::r3;

/// Opus packets per second (20 ms frames), as the simulator sends.
pub const AUDIO_PPS: f64 = 50.0;
/// Bytes per audio packet (an SRTP'd Opus frame of the simulator's tone).
const AUDIO_BYTES: usize = 120;
/// First byte of the relay's control datagrams (media datagrams never start with it:
/// RTP's first byte is 0x80..).
const MARK: u8 = 0x01;
const STOP: u8 = 0x02;
const VIDEO: u8 = 0x80;
const AUDIO: u8 = 0x81;

/// The traffic to relay.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Video frames per second (one burst each).
    pub video_fps: f64,
    /// Video packets per second.
    pub video_pps: f64,
    /// Bytes per video packet.
    pub video_bytes: usize,
    /// RTSP readers (TCP connections getting video).
    pub rtsp: usize,
    /// WebRTC viewers (UDP sockets getting video and audio).
    pub webrtc: usize,
    /// Relayed before the window opens.
    pub warmup: Duration,
    /// Measured window.
    pub window: Duration,
}

/// What the bare relay cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Floor {
    /// Relay thread CPU seconds per wall second (1.0 = one core).
    pub cpu_cores: f64,
    /// Video packets relayed in the window.
    pub video_packets: u64,
    /// Relay CPU time per video packet in, µs (the daemon's µs/packet).
    pub us_per_packet: f64,
    /// Measured window, seconds.
    pub duration_s: f64,
}

/// Relays `spec`'s traffic and measures the relay (blocking; seconds long).
/// Fails unless every viewer got every packet meant for it.
pub fn measure(spec: &Spec) -> anyhow::Result<Floor> {
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let relay_in = UdpSocket::bind(lo).context("binding the relay")?;
    let relay_addr = relay_in.local_addr()?;
    let (mut udp_sinks, mut tcp_sinks) = (Vec::new(), Vec::new());
    let mut udp_out = Vec::new();
    for _ in 0..spec.webrtc {
        let s = UdpSocket::bind(lo).context("binding a viewer socket")?;
        udp_out.push(s.local_addr()?);
        udp_sinks.push(std::thread::spawn(move || drain_udp(&s)));
    }
    let mut tcp_out = Vec::new();
    for _ in 0..spec.rtsp {
        let l = TcpListener::bind(lo).context("listening for a reader")?;
        let c = TcpStream::connect(l.local_addr()?).context("connecting a reader")?;
        c.set_nodelay(true)?;
        let (s, _) = l.accept()?;
        tcp_out.push(c);
        tcp_sinks.push(std::thread::spawn(move || drain_tcp(s)));
    }
    let relay = std::thread::spawn(move || relay(&relay_in, &udp_out, tcp_out));
    let sent = send(spec, relay_addr)?;
    let (cpu_ns, video_packets) = relay
        .join()
        .map_err(|_| anyhow::anyhow!("the relay thread panicked"))?
        .context("relaying")?;
    let join = |v: Vec<std::thread::JoinHandle<u64>>| -> u64 {
        v.into_iter().map(|s| s.join().unwrap_or(0)).sum()
    };
    let delivered = (join(udp_sinks), join(tcp_sinks));
    let (v, a) = sent;
    let expected = (
        spec.webrtc as u64 * (v + a),
        spec.rtsp as u64 * v * (spec.video_bytes.max(16) as u64 + 4),
    );
    if delivered != expected {
        // Loopback dropped datagrams (a full receive buffer): the CPU figure
        // would be for less work than the daemon did.
        bail!("the viewers got {delivered:?} of {expected:?} (datagrams, bytes)");
    }
    let secs = spec.window.as_secs_f64();
    Ok(Floor {
        cpu_cores: r3(cpu_ns as f64 / 1e9 / secs),
        video_packets,
        us_per_packet: if video_packets > 0 {
            r3(cpu_ns as f64 / 1e3 / video_packets as f64)
        } else {
            0.0
        },
        duration_s: secs,
    })
}

/// The simulator's schedule: a burst of video packets per frame, audio every
/// 20 ms; MARK after the warm-up, STOP after the window. Returns the video and
/// audio datagrams sent.
fn send(spec: &Spec, to: SocketAddr) -> anyhow::Result<(u64, u64)> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the sender")?;
    let mut video = vec![0u8; spec.video_bytes.max(16)];
    video[0] = VIDEO;
    let mut audio = vec![0u8; AUDIO_BYTES];
    audio[0] = AUDIO;
    let frame_every = Duration::from_secs_f64(1.0 / spec.video_fps.max(1.0));
    let audio_every = Duration::from_secs_f64(1.0 / AUDIO_PPS);
    let per_frame = spec.video_pps / spec.video_fps.max(1.0);
    let start = Instant::now();
    let (mut frames, mut audios, mut owed, mut sent) = (0u32, 0u32, 0.0f64, 0u64);
    let mut marked = false;
    let end = spec.warmup + spec.window;
    loop {
        let now = start.elapsed();
        if !marked && now >= spec.warmup {
            sock.send_to(&[MARK], to)?;
            marked = true;
        }
        if now >= end {
            break;
        }
        while frame_every * frames <= now {
            owed += per_frame;
            while owed >= 1.0 {
                sock.send_to(&video, to)?;
                owed -= 1.0;
                sent += 1;
            }
            frames += 1;
        }
        while audio_every * audios <= now {
            sock.send_to(&audio, to)?;
            audios += 1;
        }
        let next = (frame_every * frames).min(audio_every * audios);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
    }
    sock.send_to(&[STOP], to)?;
    Ok((sent, u64::from(audios)))
}

/// The measured thread: returns its CPU nanoseconds between MARK and STOP and
/// the video packets it relayed in between.
fn relay(
    sock: &UdpSocket,
    udp_out: &[SocketAddr],
    mut tcp_out: Vec<TcpStream>,
) -> anyhow::Result<(u64, u64)> {
    let out = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let mut buf = [0u8; 2048];
    let mut frame = Vec::with_capacity(2048 + 4);
    let (mut from_ns, mut video) = (None, 0u64);
    loop {
        let (n, _) = sock.recv_from(&mut buf)?;
        let data = &buf[..n];
        match data[0] {
            MARK => {
                from_ns = Some(thread_cpu_ns()?);
                video = 0;
            }
            STOP => break,
            kind => {
                for to in udp_out {
                    out.send_to(data, to)?;
                }
                if kind == VIDEO {
                    video += 1;
                    frame.clear();
                    frame.extend_from_slice(&[b'$', 0]);
                    frame.extend_from_slice(&(n as u16).to_be_bytes());
                    frame.extend_from_slice(data);
                    for c in &mut tcp_out {
                        c.write_all(&frame)?;
                    }
                }
            }
        }
    }
    let cpu = thread_cpu_ns()? - from_ns.context("no MARK before STOP")?;
    for to in udp_out {
        out.send_to(&[STOP], to)?;
    }
    Ok((cpu, video))
}

/// CPU time of the calling thread, ns (`/proc/thread-self/schedstat`'s first field).
fn thread_cpu_ns() -> anyhow::Result<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("reading /proc/thread-self/schedstat")?;
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .context("unexpected /proc/thread-self/schedstat")
}

fn drain_udp(s: &UdpSocket) -> u64 {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while let Ok(len) = s.recv(&mut buf) {
        if len == 1 && buf[0] == STOP {
            break;
        }
        n += 1;
    }
    n
}

fn drain_tcp(mut s: TcpStream) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    while let Ok(len) = s.read(&mut buf) {
        if len == 0 {
            break;
        }
        bytes += len as u64;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_delivers_every_packet_to_every_viewer_and_measures_itself() {
        let spec = Spec {
            video_fps: 15.0,
            video_pps: 60.0,
            video_bytes: 1000,
            rtsp: 1,
            webrtc: 2,
            warmup: Duration::from_millis(200),
            window: Duration::from_millis(800),
        };
        // `measure` checks delivery itself: each WebRTC viewer got every
        // datagram, the reader every video packet interleaved.
        let f = measure(&spec).unwrap();
        // 0.8 s of 4-packet bursts at 15 frames/s.
        assert!((44..=56).contains(&f.video_packets), "{}", f.video_packets);
        assert!(f.cpu_cores > 0.0 && f.us_per_packet > 0.0);
        assert_eq!(f.duration_s, 0.8);
    }
}
