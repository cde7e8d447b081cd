//! A WHEP client for the integration tests, built on webrtc-rs 0.17.2 like a
//! browser: it offers several H.264 formats (as Chromium does) and, if asked, H.265
//! (as Chrome and Safari with a hardware decoder do), recvonly video and sendrecv
//! Opus audio, POSTs the offer, and reassembles the video it receives into access
//! units (H.265 with ring-bridge's own RFC 7798 depacketizer). It can also hide its
//! host candidates behind mDNS `.local` names and send a real Opus sine as talkback.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::media::Sample;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp::codecs::h264::H264Packet;
use webrtc::rtp::packetizer::Depacketizer;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_remote::TrackRemote;

use ring_bridge::media::{VideoCodec, VideoDepacketizer, h264, h265};

mod relay;
use relay::through_relay;
pub use relay::{Relay, Tap, answer_video_pts};

/// The H.264 formats Chromium offers (payload type, fmtp), in its order.
pub const CHROME_H264: &[(u8, &str)] = &[
    (
        102,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    ),
    (
        104,
        "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
    ),
    (
        106,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    ),
    (
        108,
        "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
    ),
    (
        112,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f",
    ),
];

/// The H.265 formats Chrome offers where it can decode H.265 (payload type, fmtp):
/// Main and Main 10.
pub const CHROME_H265: &[(u8, &str)] = &[
    (49, "level-id=180;profile-id=1;tier-flag=0;tx-mode=SRST"),
    (51, "level-id=180;profile-id=2;tier-flag=0;tx-mode=SRST"),
];

/// One reassembled access unit.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    /// NAL unit types, in order (H.264 or H.265 types, see `h265`).
    pub nal_types: Vec<u8>,
    /// RTP timestamp.
    pub ts: u32,
    /// Payload type it arrived with.
    pub pt: u8,
    /// H.265 (else H.264).
    pub h265: bool,
    /// The access unit, Annex-B (H.265 only; empty for H.264).
    pub data: Bytes,
}

impl VideoFrame {
    pub fn is_keyframe(&self) -> bool {
        if self.h265 {
            self.nal_types.iter().any(|t| (16..=23).contains(t))
        } else {
            self.nal_types.contains(&5)
        }
    }
    pub fn has_parameter_sets(&self) -> bool {
        if self.h265 {
            [32, 33, 34].iter().all(|t| self.nal_types.contains(t))
        } else {
            self.nal_types.contains(&7) && self.nal_types.contains(&8)
        }
    }
}

/// How the client behaves.
#[derive(Clone, Debug, Default)]
pub struct ClientOpts {
    /// Rewrite every offered candidate's address to a `<uuid>.local` name.
    pub mdns_candidates: bool,
    /// Also offer H.265 ([`CHROME_H265`], after the H.264 formats).
    pub offer_h265: bool,
    /// Reach the daemon through a UDP relay the test can pull ([`WhepClient::vanish`])
    /// and make lose packets ([`Tap::drop_video`]).
    pub relay: bool,
    /// Offer RFC 4588 retransmission (`rtx` with `apt=`) for every H.264 format,
    /// as Chromium does.
    pub rtx: bool,
}

/// A connected (or connecting) WHEP viewer.
pub struct WhepClient {
    pub pc: Arc<RTCPeerConnection>,
    /// `Location` as returned (relative).
    pub location: String,
    /// Absolute session URL.
    pub session_url: String,
    pub etag: String,
    pub answer: String,
    pub offer: String,
    pub frames: mpsc::UnboundedReceiver<VideoFrame>,
    pub audio_packets: Arc<AtomicU64>,
    pub talk: Arc<TrackLocalStaticSample>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    /// The relay the viewer goes through ([`ClientOpts::relay`]).
    pub relay: Option<Relay>,
}

fn cap(mime: &str, rate: u32, channels: u16, fmtp: &str) -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: mime.into(),
        clock_rate: rate,
        channels,
        sdp_fmtp_line: fmtp.into(),
        rtcp_feedback: vec![],
    }
}

/// Builds the client peer with a Chromium-like codec list (H.264 only).
pub async fn new_peer() -> (Arc<RTCPeerConnection>, Arc<TrackLocalStaticSample>) {
    new_peer_with(&ClientOpts::default()).await
}

/// Builds the client peer with a Chromium-like codec list, H.265 too if `opts` say so.
pub async fn new_peer_with(
    opts: &ClientOpts,
) -> (Arc<RTCPeerConnection>, Arc<TrackLocalStaticSample>) {
    let mut m = MediaEngine::default();
    m.register_codec(
        RTCRtpCodecParameters {
            capability: cap(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1"),
            payload_type: 111,
            ..Default::default()
        },
        RTPCodecType::Audio,
    )
    .unwrap();
    for (pt, fmtp) in CHROME_H264 {
        m.register_codec(
            RTCRtpCodecParameters {
                capability: cap(MIME_TYPE_H264, 90_000, 0, fmtp),
                payload_type: *pt,
                ..Default::default()
            },
            RTPCodecType::Video,
        )
        .unwrap();
        if opts.rtx {
            // Chromium's numbering: the retransmission format follows its format.
            m.register_codec(
                RTCRtpCodecParameters {
                    capability: cap("video/rtx", 90_000, 0, &format!("apt={pt}")),
                    payload_type: pt + 1,
                    ..Default::default()
                },
                RTPCodecType::Video,
            )
            .unwrap();
        }
    }
    for (pt, fmtp) in CHROME_H265.iter().filter(|_| opts.offer_h265) {
        m.register_codec(
            RTCRtpCodecParameters {
                capability: cap(MIME_TYPE_HEVC, 90_000, 0, fmtp),
                payload_type: *pt,
                ..Default::default()
            },
            RTPCodecType::Video,
        )
        .unwrap();
    }
    let mut s = SettingEngine::default();
    s.set_include_loopback_candidate(true);
    s.set_network_types(vec![NetworkType::Udp4]);
    s.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    let pc = ring_bridge::base::rtc::peer_connection(m, s, None)
        .await
        .unwrap();
    pc.add_transceiver_from_kind(
        RTPCodecType::Video,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            send_encodings: vec![],
        }),
    )
    .await
    .unwrap();
    let talk = Arc::new(TrackLocalStaticSample::new(
        cap(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1"),
        "mic".into(),
        "viewer".into(),
    ));
    let t = pc
        .add_transceiver_from_track(
            Arc::clone(&talk) as Arc<dyn TrackLocal + Send + Sync>,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendrecv,
                send_encodings: vec![],
            }),
        )
        .await
        .unwrap();
    let sender = t.sender().await;
    tokio::spawn(async move { while sender.read_rtcp().await.is_ok() {} });
    (pc, talk)
}

/// Creates the offer with all candidates gathered.
pub async fn make_offer(pc: &RTCPeerConnection) -> String {
    let offer = pc.create_offer(None).await.unwrap();
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), gathered.recv()).await;
    pc.local_description().await.unwrap().sdp
}

/// Rewrites each `a=candidate` address to an mDNS name, as Chromium does.
pub fn hide_candidates(sdp: &str) -> String {
    let mut out = String::new();
    for line in sdp.split("\r\n") {
        if line.starts_with("a=candidate:") {
            let mut f: Vec<String> = line.split(' ').map(str::to_owned).collect();
            f[4] = format!("{}.local", uuid::Uuid::new_v4());
            out.push_str(&f.join(" "));
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out.truncate(out.trim_end_matches("\r\n").len());
    out.push_str("\r\n");
    out
}

/// POSTs an SDP offer (any body) to the WHEP endpoint.
pub async fn post_offer(base: &str, camera: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/webrtc/{camera}/whep"))
        .header("content-type", "application/sdp")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// Offers what a browser without H.265 offers (H.264 only) for `camera`, whose
/// stream is H.265, and checks the clear 409 that names H.265 and RTSP.
pub async fn assert_h265_refused(base: &str, camera: &str) {
    let (pc, _talk) = new_peer().await;
    let offer = make_offer(&pc).await;
    let r = post_offer(base, camera, &offer).await;
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 409, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("H.265") && message.contains("RTSP"),
        "{body}"
    );
    let _ = pc.close().await;
}

fn nal_types(annexb: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < annexb.len() {
        if annexb[i] == 0 && annexb[i + 1] == 0 && annexb[i + 2] == 1 {
            types.push(annexb[i + 3] & 0x1F);
            i += 3;
        } else {
            i += 1;
        }
    }
    types
}

async fn read_video(track: Arc<TrackRemote>, tx: mpsc::UnboundedSender<VideoFrame>) {
    let mut depack = H264Packet::default();
    let mut au: Vec<u8> = Vec::new();
    let mut au_ts = None;
    while let Ok((pkt, _)) = track.read_rtp().await {
        if au_ts.is_some_and(|t| t != pkt.header.timestamp) {
            au.clear(); // incomplete access unit (lost marker): drop it
        }
        au_ts = Some(pkt.header.timestamp);
        if let Ok(b) = depack.depacketize(&pkt.payload) {
            au.extend_from_slice(&b);
        }
        if pkt.header.marker {
            let frame = VideoFrame {
                nal_types: nal_types(&au),
                ts: pkt.header.timestamp,
                pt: pkt.header.payload_type,
                h265: false,
                data: Bytes::new(),
            };
            au.clear();
            au_ts = None;
            if tx.send(frame).is_err() {
                return;
            }
        }
    }
}

/// H.265 with ring-bridge's RFC 7798 depacketizer: complete access units (from the
/// first key frame on, parameter sets in front of each key frame).
async fn read_h265(track: Arc<TrackRemote>, tx: mpsc::UnboundedSender<VideoFrame>) {
    let mut depack = VideoDepacketizer::new(VideoCodec::H265);
    while let Ok((pkt, _)) = track.read_rtp().await {
        let h = &pkt.header;
        depack.push(h.sequence_number, h.timestamp, h.marker, &pkt.payload);
        while let Some(au) = depack.pull() {
            let frame = VideoFrame {
                nal_types: h264::nal_units(&au.data)
                    .map(|n| h265::nal_type(&n))
                    .collect(),
                ts: au.rtp_timestamp,
                pt: h.payload_type,
                h265: true,
                data: au.data,
            };
            if tx.send(frame).is_err() {
                return;
            }
        }
    }
}

/// Full WHEP handshake against `base` (`http://host:port`) for `camera`.
pub async fn connect(base: &str, camera: &str, opts: ClientOpts) -> WhepClient {
    let (pc, talk) = new_peer_with(&opts).await;
    let (tx, frames) = mpsc::unbounded_channel();
    let audio_packets = Arc::new(AtomicU64::new(0));
    let audio = Arc::clone(&audio_packets);
    pc.on_track(Box::new(move |track, _, _| {
        let tx = tx.clone();
        let audio = Arc::clone(&audio);
        tokio::spawn(async move {
            let mime = track.codec().capability.mime_type;
            if VideoCodec::from_mime_type(&mime) == Some(VideoCodec::H265) {
                read_h265(track, tx).await;
            } else if track.kind() == RTPCodecType::Video {
                read_video(track, tx).await;
            } else {
                while let Ok((p, _)) = track.read_rtp().await {
                    if !p.payload.is_empty() {
                        audio.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Box::pin(async {})
    }));
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    pc.on_peer_connection_state_change(Box::new(move |s| {
        state_tx.send_replace(s);
        Box::pin(async {})
    }));
    let mut offer = make_offer(&pc).await;
    // Through a relay the daemon must not reach the viewer directly either.
    if opts.mdns_candidates || opts.relay {
        offer = hide_candidates(&offer);
        assert!(offer.contains(".local "), "{offer}");
        assert!(!offer.contains(" 127.0.0.1 "), "{offer}");
    }
    let r = post_offer(base, camera, &offer).await;
    assert_eq!(r.status().as_u16(), 201, "POST offer");
    assert_eq!(r.headers()["content-type"], "application/sdp");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let answer = r.text().await.unwrap();
    let mut relay = None;
    let applied = if opts.relay {
        let probe = through_relay(&answer, "127.0.0.1:9".parse().unwrap()).1;
        let (video_pt, rtx_pt) = answer_video_pts(&answer);
        let (r, addr) = Relay::start(probe, Tap::new(video_pt, rtx_pt)).await;
        relay = Some(r);
        through_relay(&answer, addr).0
    } else {
        answer.clone()
    };
    pc.set_remote_description(RTCSessionDescription::answer(applied).unwrap())
        .await
        .unwrap();
    WhepClient {
        relay,
        pc,
        session_url: format!("{base}{location}"),
        location,
        etag,
        answer,
        offer,
        frames,
        audio_packets,
        talk,
        state,
    }
}

impl WhepClient {
    /// Waits until ICE/DTLS are connected.
    pub async fn wait_connected(&mut self, timeout: Duration) {
        tokio::time::timeout(
            timeout,
            self.state
                .wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .expect("connected in time")
        .expect("state channel open");
    }

    /// The next video frame, bounded.
    pub async fn next_frame(&mut self, timeout: Duration) -> VideoFrame {
        tokio::time::timeout(timeout, self.frames.recv())
            .await
            .expect("a video frame in time")
            .expect("video track open")
    }

    pub fn audio_packets(&self) -> u64 {
        self.audio_packets.load(Ordering::Relaxed)
    }

    /// `POST …/talk {"talking": on}`: (status, body).
    pub async fn talk(&self, on: bool) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/talk", self.session_url))
            .json(&serde_json::json!({ "talking": on }))
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Sends Opus packets on the mic track, paced at 20 ms.
    pub async fn send_opus(&self, packets: &[Bytes]) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for p in packets {
            tick.tick().await;
            let s = Sample {
                data: p.clone(),
                duration: Duration::from_millis(20),
                ..Default::default()
            };
            self.talk.write_sample(&s).await.unwrap();
        }
    }

    /// `DELETE` the session: the status.
    pub async fn delete(&self) -> u16 {
        reqwest::Client::new()
            .delete(&self.session_url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Stops the relay ([`ClientOpts::relay`]): the daemon hears nothing more
    /// from this viewer, not even a goodbye.
    pub fn vanish(&mut self) {
        self.relay.take().expect("connected through a relay");
    }

    pub async fn close(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.pc.close()).await;
    }
}

/// `len` of a 440 Hz sine as 20 ms Opus packets (48 kHz stereo), via GStreamer.
pub fn opus_sine(len: Duration) -> Vec<Bytes> {
    ring_bridge::codec::encode::opus_sine(len, 440).expect("encoding an Opus sine")
}
