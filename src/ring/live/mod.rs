//! Ring live call: the signalling websocket plus a WebRTC peer, turned into
//! depacketized media frames, with a talkback sender on the same peer.
//!
//! Protocol: ring-api.md §6 (ticket → `wss://…/ws?…&token=` → `live_view`
//! offer → `session_created` → `sdp` answer → trickle `ice` → `activate_session`,
//! `stream_options` → `ping` every 5 s → `close`). This module owns the
//! WebRTC peer on the Ring side (str0m, driven by one pump task per call) and nothing else: it does not retry (the
//! media hub's supervisor does) and never fans out (the hub does). For the hub
//! it is a `media::LiveSource` ([`LiveCall`]) opened by [`RingOpener`], which
//! fetches the ticket (`RingApi::live_ticket`).
//!
//! Output: the hub's `media::Frame`s from [`LiveCall::next_frame`]: H.264 access
//! units (Annex-B, SPS/PPS before each IDR, 90 kHz PTS), or H.265 ones
//! (VPS/SPS/PPS before each IRAP) when Ring answered H.265
//! ([`LiveCall::video_codec`]), and Opus packets (48 kHz PTS). PCMU audio is
//! dropped at the track. Talkback comes in through the hub's
//! `media::TalkbackSender` ([`LiveCall::talkback_sender`]).
//!
//! ```ignore
//! let ticket = ring.live_ticket().await?;
//! let url = Url::parse(RING_SIGNALLING_URL)?;
//! let mut call = LiveCall::connect(&ticket, &url, camera.id, &LiveOptions::default(), &cancel).await?;
//! let talk = call.talk_sender(); // talk.send_talk(opus_packet, Duration::from_millis(20))
//! while let Some(frame) = call.next_frame().await? {
//!     // hand the frame to the hub; call.request_keyframe() on demand
//! }
//! // Ok(None): ended normally (see call.close_reason()); Err: abnormal end.
//! call.close().await?;
//! ```

mod call;
mod driver;
mod error;
#[cfg(test)]
mod fuzz;
mod media;
mod peer;
mod pump;
mod reorder;
mod signalling;
mod source;
mod stun;
mod talk;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Duration;

pub use call::LiveCall;
pub use error::{CloseReason, Error, ErrorInner, close_code};
pub use source::RingOpener;
pub use talk::TalkSender;

/// Production signalling endpoint (ring-api.md §6.2).
pub const RING_SIGNALLING_URL: &str = "wss://api.prod.signalling.ring.devices.a2z.com:443/ws";

/// STUN servers Ring's own clients use (ring-api.md §6.5).
pub const RING_STUN_SERVERS: &[&str] = &[
    "stun:stun.kinesisvideo.us-east-1.amazonaws.com:443",
    "stun:stun.kinesisvideo.us-east-2.amazonaws.com:443",
    "stun:stun.kinesisvideo.us-west-2.amazonaws.com:443",
    "stun:stun.l.google.com:19302",
    "stun:stun1.l.google.com:19302",
];

/// The audio codec Ring picked in its answer (used both ways).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    /// Opus, 48 kHz, 2 channels in SDP; talkback frames are Opus packets.
    Opus,
    /// G.711 µ-law, 8 kHz mono; talkback frames are 160-byte (20 ms) payloads.
    Pcmu,
}

impl AudioCodec {
    /// The RTP clock rate in Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Opus => 48_000,
            AudioCodec::Pcmu => 8_000,
        }
    }
}

/// Options of a live call. Each subsystem takes its own options; the daemon
/// wiring (`app::daemon`) maps the configuration file onto them.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// STUN/TURN URLs for ICE. Default: [`RING_STUN_SERVERS`]; empty for the simulator.
    pub ice_servers: Vec<String>,
    /// Only gather ICE candidates on these local addresses (a `LISTEN_IP`-style
    /// filter). Empty: all addresses.
    pub ice_ips: Vec<IpAddr>,
    /// Also gather loopback candidates (needed when Ring is the local simulator).
    pub include_loopback: bool,
    /// Inclusive local UDP port range for ICE, e.g. `(40000, 40100)`. `None`: any.
    pub udp_ports: Option<(u16, u16)>,
    /// How often to send `ping` (Ring closes with code 6 after about 30 s without).
    pub ping_interval: Duration,
    /// Send `camera_options {stealth_mode:false}` on `camera_connected` so the
    /// camera speaker is on for talkback (ring-api.md §6.6).
    pub talkback: bool,
    /// Override the payload type of talkback RTP (default: the negotiated one).
    pub talk_payload_type: Option<u8>,
    /// Override the SSRC of talkback RTP (default: a random one). It is the SSRC
    /// our offer announces for the audio section either way.
    pub talk_ssrc: Option<u32>,
    /// `User-Agent` of the websocket request (Ring requires one, any value).
    pub user_agent: String,
    /// Bound on websocket connect + answer + ICE/DTLS in [`LiveCall::connect`].
    pub connect_timeout: Duration,
    /// Frames buffered between the network tasks and [`LiveCall::next_frame`].
    /// When full, frames are dropped and video resumes at the next key frame.
    pub frame_queue: usize,
    /// Ring's live-session cap, told to the hub (`LiveSource::session_cap`) so it
    /// renews the call seamlessly before Ring ends it. Default `None`: unknown.
    pub session_cap: Option<Duration>,
    /// Also offer H.265 (after H.264). Off by default: Ring's web client offers
    /// H.264 only and Ring then transcodes HEVC cameras (`docs/design/0009-h265.md`).
    pub h265: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            ice_servers: RING_STUN_SERVERS.iter().map(|s| s.to_string()).collect(),
            ice_ips: Vec::new(),
            include_loopback: false,
            udp_ports: None,
            ping_interval: Duration::from_secs(5),
            talkback: true,
            talk_payload_type: None,
            talk_ssrc: None,
            user_agent: "android:com.ringapp".to_owned(),
            connect_timeout: Duration::from_secs(20),
            frame_queue: 512,
            session_cap: None,
            h265: false,
        }
    }
}
