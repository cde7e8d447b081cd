//! Building a webrtc-rs peer connection, the same way for every peer we make:
//! the Ring live call, browser (WHEP) viewers, the simulated camera and the
//! benchmark's viewers. Each brings its own codecs and ICE settings.
//! [`NackCounter`] reports the NACKs a peer sends (for live stream statistics).

use std::sync::Arc;

use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::{
    configure_rtcp_reports, configure_twcc_receiver_only, register_default_interceptors,
};
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::nack::generator::Generator;
use webrtc::interceptor::nack::responder::Responder;
use webrtc::interceptor::registry::Registry;
use webrtc::interceptor::stream_info::StreamInfo;
use webrtc::interceptor::{
    Attributes, Interceptor, InterceptorBuilder, RTCPReader, RTCPWriter, RTPReader, RTPWriter,
};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
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
    peer_connection_counting(media, settings, ice_servers, nack_history_log2, None).await
}

/// [`peer_connection`] that also reports every NACK message it sends (the NACK
/// generator's, whose RTCP bypasses `RTCPeerConnection::write_rtcp`) to `nacks`.
pub async fn peer_connection_counting(
    mut media: MediaEngine,
    settings: SettingEngine,
    ice_servers: &[String],
    nack_history_log2: Option<u8>,
    nacks: Option<NackCounter>,
) -> webrtc::error::Result<Arc<RTCPeerConnection>> {
    // DTLS builds its certificate verifier from rustls' default provider.
    super::tls::install_default_provider();
    let mut registry = Registry::new();
    // First in the chain, so the NACK generator added next writes through it.
    if let Some(n) = nacks {
        registry.add(Box::new(n));
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

/// An interceptor that calls its callback with the number of NACK messages in
/// each outgoing RTCP batch; everything else passes through untouched.
#[derive(Clone)]
pub struct NackCounter {
    on_nacks: Arc<dyn Fn(u64) + Send + Sync>,
}

impl NackCounter {
    /// Reports NACKs sent to `on_nacks` (called on webrtc-rs tasks: must not block).
    pub fn new(on_nacks: impl Fn(u64) + Send + Sync + 'static) -> Self {
        NackCounter {
            on_nacks: Arc::new(on_nacks),
        }
    }
}

impl InterceptorBuilder for NackCounter {
    fn build(
        &self,
        _id: &str,
    ) -> Result<Arc<dyn Interceptor + Send + Sync>, webrtc::interceptor::Error> {
        Ok(Arc::new(self.clone()))
    }
}

/// The writer [`NackCounter`] puts in front of the next one.
struct CountingWriter {
    next: Arc<dyn RTCPWriter + Send + Sync>,
    on_nacks: Arc<dyn Fn(u64) + Send + Sync>,
}

#[async_trait::async_trait]
impl RTCPWriter for CountingWriter {
    async fn write(
        &self,
        pkts: &[Box<dyn webrtc::rtcp::packet::Packet + Send + Sync>],
        attributes: &Attributes,
    ) -> Result<usize, webrtc::interceptor::Error> {
        let n = pkts
            .iter()
            .filter(|p| p.as_any().is::<TransportLayerNack>())
            .count() as u64;
        if n > 0 {
            (self.on_nacks)(n);
        }
        self.next.write(pkts, attributes).await
    }
}

#[async_trait::async_trait]
impl Interceptor for NackCounter {
    async fn bind_rtcp_reader(
        &self,
        reader: Arc<dyn RTCPReader + Send + Sync>,
    ) -> Arc<dyn RTCPReader + Send + Sync> {
        reader
    }

    async fn bind_rtcp_writer(
        &self,
        writer: Arc<dyn RTCPWriter + Send + Sync>,
    ) -> Arc<dyn RTCPWriter + Send + Sync> {
        Arc::new(CountingWriter {
            next: writer,
            on_nacks: Arc::clone(&self.on_nacks),
        })
    }

    async fn bind_local_stream(
        &self,
        _info: &StreamInfo,
        writer: Arc<dyn RTPWriter + Send + Sync>,
    ) -> Arc<dyn RTPWriter + Send + Sync> {
        writer
    }

    async fn unbind_local_stream(&self, _info: &StreamInfo) {}

    async fn bind_remote_stream(
        &self,
        _info: &StreamInfo,
        reader: Arc<dyn RTPReader + Send + Sync>,
    ) -> Arc<dyn RTPReader + Send + Sync> {
        reader
    }

    async fn unbind_remote_stream(&self, _info: &StreamInfo) {}

    async fn close(&self) -> Result<(), webrtc::interceptor::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    use webrtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;

    use super::*;

    /// The end of the chain: counts the packets that reach it.
    #[derive(Default)]
    struct Sink(AtomicUsize);

    #[async_trait::async_trait]
    impl RTCPWriter for Sink {
        async fn write(
            &self,
            pkts: &[Box<dyn webrtc::rtcp::packet::Packet + Send + Sync>],
            _attributes: &Attributes,
        ) -> Result<usize, webrtc::interceptor::Error> {
            self.0.fetch_add(pkts.len(), Ordering::Relaxed);
            Ok(0)
        }
    }

    #[tokio::test]
    async fn nack_counter_counts_nacks_and_passes_everything_on() {
        let nacks = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&nacks);
        let counter = NackCounter::new(move |n| {
            seen.fetch_add(n, Ordering::Relaxed);
        });
        let sink = Arc::new(Sink::default());
        let writer = counter.bind_rtcp_writer(sink.clone()).await;
        let nack = || -> Box<dyn webrtc::rtcp::packet::Packet + Send + Sync> {
            Box::new(TransportLayerNack {
                sender_ssrc: 1,
                media_ssrc: 2,
                nacks: vec![NackPair {
                    packet_id: 10,
                    lost_packets: 0,
                }],
            })
        };
        let pli: Box<dyn webrtc::rtcp::packet::Packet + Send + Sync> =
            Box::new(PictureLossIndication::default());
        writer
            .write(&[nack(), pli, nack()], &Attributes::new())
            .await
            .unwrap();
        assert_eq!(nacks.load(Ordering::Relaxed), 2, "PLIs are not NACKs");
        assert_eq!(sink.0.load(Ordering::Relaxed), 3, "every packet passes");
    }
}
