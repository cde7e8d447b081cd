//! Building a webrtc-rs peer connection, the same way for the peers that stand
//! on the other side of ours: the simulated camera (Ring's side of the live
//! call) and the benchmark's viewers. The daemon's own peers, the Ring call and
//! the WHEP viewers, run on str0m (`docs/design/0012-ring-call-str0m.md`,
//! `docs/design/0014-whep-str0m.md`), so each side of every call is an
//! independent implementation. Each caller brings its own codecs and ICE
//! settings.

use std::sync::Arc;

use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::interceptor::InterceptorBuilder;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;

/// A peer connection with the codecs of `media`, webrtc-rs's default
/// interceptors (NACK, RTCP reports, TWCC) and the ICE settings of `settings`
/// (no STUN/TURN servers: host and peer-reflexive candidates only). `first`, if
/// any, is placed first in the interceptor chain: its writers sit next to the
/// network, below the NACK responder (so it sees retransmissions too) and the
/// RTCP reports.
pub async fn peer_connection(
    mut media: MediaEngine,
    settings: SettingEngine,
    first: Option<Box<dyn InterceptorBuilder + Send + Sync>>,
) -> webrtc::error::Result<Arc<RTCPeerConnection>> {
    // DTLS builds its certificate verifier from rustls' default provider.
    super::tls::install_default_provider();
    let mut registry = Registry::new();
    if let Some(f) = first {
        registry.add(f);
    }
    let registry = register_default_interceptors(registry, &mut media)?;
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build();
    Ok(Arc::new(
        api.new_peer_connection(RTCConfiguration::default()).await?,
    ))
}
