//! Building a webrtc-rs peer connection, the same way for every peer we make:
//! the Ring live call, browser (WHEP) viewers, the simulated camera and the
//! benchmark's viewers. Each brings its own codecs and ICE settings.

use std::sync::Arc;

use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;

/// A peer connection with the codecs of `media`, the default interceptors
/// (NACK, RTCP reports, TWCC), the ICE settings of `settings` and `ice_servers`
/// (STUN/TURN URLs; none: host and peer-reflexive candidates only).
pub async fn peer_connection(
    mut media: MediaEngine,
    settings: SettingEngine,
    ice_servers: &[String],
) -> webrtc::error::Result<Arc<RTCPeerConnection>> {
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
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
