//! Builds the client-side WebRTC peer the way Ring's own web client offers it
//! (ring-api.md §6.5): audio sendrecv (Opus 48000/2, PCMU/8000 pt 0), video
//! recvonly (H.264 packetization-mode=1, profile-level-id=640029, rtx, nack,
//! pli, fir, transport-cc, goog-remb). With `LiveOptions::h265`, H.265 is offered
//! after H.264 (`docs/design/0009-h265.md`).
//!
//! Only construction lives here; `call.rs` drives the peer.

use std::sync::Arc;

use webrtc::api::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MIME_TYPE_PCMU, MediaEngine,
};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::udp_network::{EphemeralUDP, UDPNetwork};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::{RTCPFeedback, RTCRtpTransceiverInit};
use webrtc::track::track_local::TrackLocal;

use super::LiveOptions;
use super::talk::TalkTrack;
use crate::base::rtc::NackCounter;
use crate::media::TransportStats;

/// Payload type we offer for H.264.
const PT_H264: u8 = 102;
/// Payload type we offer for H.264 retransmissions (RFC 4588).
const PT_RTX: u8 = 103;
/// Payload type of H.265, offered after H.264 only with [`LiveOptions::h265`].
const PT_H265: u8 = 104;
/// Payload type of H.265 retransmissions.
const PT_H265_RTX: u8 = 105;
/// The H.264 fmtp Ring's web client offers.
pub(crate) const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640029";

fn codec(
    mime: &str,
    clock_rate: u32,
    channels: u16,
    fmtp: &str,
    pt: u8,
    fb: Vec<RTCPFeedback>,
) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        capability: RTCRtpCodecCapability {
            mime_type: mime.to_owned(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: fb,
        },
        payload_type: pt,
        ..Default::default()
    }
}

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

fn media_engine(h265: bool) -> webrtc::error::Result<MediaEngine> {
    let mut m = MediaEngine::default();
    m.register_codec(
        codec(
            MIME_TYPE_OPUS,
            48_000,
            2,
            "minptime=10;useinbandfec=1",
            111,
            vec![],
        ),
        RTPCodecType::Audio,
    )?;
    m.register_codec(
        codec(MIME_TYPE_PCMU, 8_000, 0, "", 0, vec![]),
        RTPCodecType::Audio,
    )?;
    // nack, nack pli and transport-cc are added by the default interceptors
    // (`base::rtc::peer_connection`).
    let fb = vec![feedback("ccm", "fir"), feedback("goog-remb", "")];
    m.register_codec(
        codec(MIME_TYPE_H264, 90_000, 0, H264_FMTP, PT_H264, fb),
        RTPCodecType::Video,
    )?;
    let rtx = |apt: u8, pt: u8| codec("video/rtx", 90_000, 0, &format!("apt={apt}"), pt, vec![]);
    m.register_codec(rtx(PT_H264, PT_RTX), RTPCodecType::Video)?;
    if h265 {
        // After H.264: our preference order. Ring picks H.265 anyway for cameras in
        // HEVC mode (docs/design/0009-h265.md).
        let fb = vec![feedback("ccm", "fir"), feedback("goog-remb", "")];
        m.register_codec(
            codec(MIME_TYPE_HEVC, 90_000, 0, "", PT_H265, fb),
            RTPCodecType::Video,
        )?;
        m.register_codec(rtx(PT_H265, PT_H265_RTX), RTPCodecType::Video)?;
    }
    Ok(m)
}

fn setting_engine(opts: &LiveOptions) -> webrtc::error::Result<SettingEngine> {
    let mut s = SettingEngine::default();
    s.set_include_loopback_candidate(opts.include_loopback);
    if !opts.ice_ips.is_empty() {
        let ips = opts.ice_ips.clone();
        s.set_ip_filter(Box::new(move |ip| ips.contains(&ip)));
    }
    if let Some((min, max)) = opts.udp_ports {
        s.set_udp_network(UDPNetwork::Ephemeral(EphemeralUDP::new(min, max)?));
    }
    Ok(s)
}

/// A new peer with the talkback track (audio, sendrecv, m-line 0) and a
/// recvonly video transceiver (m-line 1) already added. Also returns the
/// talkback sender, whose RTCP the caller must drain. The NACKs the peer sends
/// are counted in `transport`.
pub(crate) async fn new_peer(
    opts: &LiveOptions,
    talk: Arc<TalkTrack>,
    transport: &Arc<TransportStats>,
) -> webrtc::error::Result<(Arc<RTCPeerConnection>, Arc<RTCRtpSender>)> {
    let counted = Arc::clone(transport);
    let pc = crate::base::rtc::peer_connection_counting(
        media_engine(opts.h265)?,
        setting_engine(opts)?,
        &opts.ice_servers,
        None,
        Some(NackCounter::new(move |n| counted.add_nacks(n))),
    )
    .await?;
    let talk: Arc<dyn TrackLocal + Send + Sync> = talk;
    let audio = pc
        .add_transceiver_from_track(
            talk,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendrecv,
                send_encodings: vec![],
            }),
        )
        .await?;
    let talk_sender = audio.sender().await;
    pc.add_transceiver_from_kind(
        RTPCodecType::Video,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            send_encodings: vec![],
        }),
    )
    .await?;
    Ok((pc, talk_sender))
}
