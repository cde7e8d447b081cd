//! Builds one viewer's `RTCPeerConnection`: a per-session `MediaEngine` with exactly
//! the formats picked from the offer (its payload types), webrtc-rs's default
//! interceptors (NACK, RTCP reports, TWCC) but with a NACK history of
//! [`NACK_HISTORY_LOG2`] instead of 8192 packets, and a `SettingEngine` that honours
//! the ICE options: UDP port range or one shared port, `listen_ip` filter, 1:1 NAT
//! for `announced_ip`,
//! loopback candidates, and mDNS.
//!
//! mDNS: Chromium hides host candidates behind `<uuid>.local` names. We never
//! resolve them (`MulticastDnsMode::Disabled`: no multicast socket per viewer, the
//! agent drops such candidates with a warning). ICE still connects: the viewer is
//! the controlling agent and knows our real candidates from the answer, so its
//! connectivity checks reach us and webrtc-rs learns its address as a
//! peer-reflexive candidate.
//!
//! Only construction lives here; `session.rs` drives the peer.

use std::net::IpAddr;
use std::sync::Arc;

use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice::udp_network::{EphemeralUDP, UDPNetwork};
use webrtc::ice_transport::ice_candidate_type::RTCIceCandidateType;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};

use super::WhepOptions;
use super::error::WhepError;
use super::sdp::{Codec, Offer, VideoFormat};
use crate::media::VideoCodec;

/// The capability we register and send for an offered format. `mime` overrides
/// the offer's spelling of the encoding name.
pub(crate) fn capability(
    c: &Codec,
    mime: &str,
    feedback: &[(&str, &str)],
) -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: mime.to_owned(),
        clock_rate: c.clock_rate,
        channels: c.channels,
        sdp_fmtp_line: c.fmtp.clone(),
        rtcp_feedback: feedback
            .iter()
            .map(|(typ, parameter)| RTCPFeedback {
                typ: (*typ).to_owned(),
                parameter: (*parameter).to_owned(),
            })
            .collect(),
    }
}

/// Video capability: the picked offered format (`video/H264` or `video/H265`, 90 kHz)
/// with FIR; NACK, PLI and transport-cc are added by the default interceptors, for
/// either codec.
pub(crate) fn video_capability(video: &VideoFormat) -> RTCRtpCodecCapability {
    let mime = match video.codec {
        VideoCodec::H264 => MIME_TYPE_H264,
        VideoCodec::H265 => MIME_TYPE_HEVC,
    };
    capability(&video.format, mime, &[("ccm", "fir")])
}

/// Audio capability: the offer's Opus format.
pub(crate) fn audio_capability(c: &Codec) -> RTCRtpCodecCapability {
    let mut cap = capability(c, MIME_TYPE_OPUS, &[]);
    if cap.channels == 0 {
        cap.channels = 2;
    }
    cap
}

fn media_engine(offer: &Offer, video: &VideoFormat) -> Result<MediaEngine, WhepError> {
    let mut m = MediaEngine::default();
    m.register_codec(
        RTCRtpCodecParameters {
            capability: video_capability(video),
            payload_type: video.format.payload_type,
            ..Default::default()
        },
        RTPCodecType::Video,
    )
    .map_err(WhepError::webrtc("registering the video format"))?;
    if let Some((a, _)) = &offer.audio {
        m.register_codec(
            RTCRtpCodecParameters {
                capability: audio_capability(a),
                payload_type: a.payload_type,
                ..Default::default()
            },
            RTPCodecType::Audio,
        )
        .map_err(WhepError::webrtc("registering the Opus format"))?;
    }
    Ok(m)
}

/// Network types to gather on, from the listen address.
fn network_types(listen: IpAddr) -> Vec<NetworkType> {
    match listen {
        IpAddr::V4(_) => vec![NetworkType::Udp4],
        IpAddr::V6(v6) if v6.is_unspecified() => vec![NetworkType::Udp4, NetworkType::Udp6],
        IpAddr::V6(_) => vec![NetworkType::Udp6],
    }
}

fn setting_engine(opts: &WhepOptions) -> Result<SettingEngine, WhepError> {
    let mut s = SettingEngine::default();
    s.set_include_loopback_candidate(opts.include_loopback);
    s.set_network_types(network_types(opts.listen_ip));
    if !opts.listen_ip.is_unspecified() {
        let ip = opts.listen_ip;
        s.set_ip_filter(Box::new(move |candidate| candidate == ip));
    }
    if let Some(port) = &opts.shared_port {
        s.set_udp_network(UDPNetwork::Muxed(port.mux()));
    } else {
        let (min, max) = opts.udp_ports;
        let ephemeral = EphemeralUDP::new(min, max)
            .map_err(|e| WhepError::webrtc("configuring the ICE UDP port range")(e.into()))?;
        s.set_udp_network(UDPNetwork::Ephemeral(ephemeral));
    }
    if let Some(ip) = opts.announced_ip.filter(|ip| !ip.is_unspecified()) {
        s.set_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
    }
    s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    Ok(s)
}

/// Packets each outgoing stream keeps for NACK retransmission: 2^9 = 512, about
/// 3.5 s of a 1.4 Mbit/s camera stream (1.2 s at 4 Mbit/s), still far more than a
/// retransmission can usefully arrive in. webrtc-rs's default (2^13 = 8192, ~56 s
/// here) cost ~6 MiB of packet copies per viewer once full; with the payloads
/// shared among viewers (`super::payloads`) an entry is mostly its header, and
/// 512 of them per stream keep 16 cameras × 16 viewers under 200 MB
/// (`docs/PERFORMANCE.md`).
pub(crate) const NACK_HISTORY_LOG2: u8 = 9;

/// A new peer for `offer`, sending `video` (no tracks yet).
pub(crate) async fn new_peer(
    opts: &WhepOptions,
    offer: &Offer,
    video: &VideoFormat,
) -> Result<Arc<RTCPeerConnection>, WhepError> {
    let m = media_engine(offer, video)?;
    crate::base::rtc::peer_connection(
        m,
        setting_engine(opts)?,
        &opts.ice_servers,
        Some(NACK_HISTORY_LOG2),
    )
    .await
    .map_err(WhepError::webrtc("creating the peer connection"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_ipv4_for_ipv4_listen() {
        assert_eq!(
            network_types("127.0.0.1".parse().unwrap()),
            vec![NetworkType::Udp4]
        );
        assert_eq!(network_types("::".parse().unwrap()).len(), 2);
    }

    #[test]
    fn rejects_an_inverted_port_range() {
        let opts = WhepOptions {
            udp_ports: (5000, 4000),
            ..WhepOptions::default()
        };
        assert!(setting_engine(&opts).is_err());
    }
}
