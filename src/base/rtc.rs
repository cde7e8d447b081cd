//! Building a webrtc-rs peer connection, the same way for every peer we make:
//! browser (WHEP) viewers, the simulated camera and the benchmark's viewers
//! (the Ring call itself runs on str0m,
//! `docs/design/0012-ring-call-str0m.md`). Each brings its own codecs and ICE
//! settings.

use std::sync::Arc;

use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::{
    configure_rtcp_reports, configure_twcc_receiver_only, register_default_interceptors,
};
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::InterceptorBuilder;
use webrtc::interceptor::nack::generator::Generator;
use webrtc::interceptor::nack::responder::Responder;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;

/// A peer connection with the codecs of `media`, the default interceptors
/// (NACK, RTCP reports, TWCC), the ICE settings of `settings` and `ice_servers`
/// (STUN/TURN URLs; none: host and peer-reflexive candidates only).
/// `nack_history_log2` sizes the NACK responder's per-stream packet history
/// (2^n packets; `None`: webrtc-rs's 2^13).
pub async fn peer_connection(
    media: MediaEngine,
    settings: SettingEngine,
    ice_servers: &[String],
    nack_history_log2: Option<u8>,
) -> webrtc::error::Result<Arc<RTCPeerConnection>> {
    peer_connection_with(media, settings, ice_servers, nack_history_log2, None).await
}

/// [`peer_connection`] with `first` placed first in the interceptor chain: its
/// writers sit next to the network, below the NACK responder (so it sees
/// retransmissions too) and the RTCP reports.
pub async fn peer_connection_with(
    mut media: MediaEngine,
    settings: SettingEngine,
    ice_servers: &[String],
    nack_history_log2: Option<u8>,
    first: Option<Box<dyn InterceptorBuilder + Send + Sync>>,
) -> webrtc::error::Result<Arc<RTCPeerConnection>> {
    // DTLS builds its certificate verifier from rustls' default provider.
    super::tls::install_default_provider();
    let mut registry = Registry::new();
    if let Some(f) = first {
        registry.add(f);
    }
    let registry = match nack_history_log2 {
        None => register_default_interceptors(registry, &mut media)?,
        Some(log2) => interceptors_with_nack_history(registry, &mut media, log2)?,
    };
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build();
    let ice_servers = if ice_servers.is_empty() {
        Vec::new()
    } else {
        vec![RTCIceServer {
            urls: ice_servers.to_vec(),
            ..Default::default()
        }]
    };
    let config = RTCConfiguration {
        ice_servers,
        ..Default::default()
    };
    Ok(Arc::new(api.new_peer_connection(config).await?))
}

/// `register_default_interceptors` (NACK generator + responder, RTCP reports,
/// TWCC receiver) with a NACK responder history of 2^`log2` packets.
fn interceptors_with_nack_history(
    mut registry: Registry,
    media: &mut MediaEngine,
    log2: u8,
) -> webrtc::error::Result<Registry> {
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RTPCodecType::Video,
        );
    }
    registry.add(Box::new(Responder::builder().with_log2_size(log2)));
    registry.add(Box::new(Generator::builder()));
    let registry = configure_rtcp_reports(registry);
    configure_twcc_receiver_only(registry, media)
}
