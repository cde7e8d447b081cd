//! Talkback: our outgoing audio track on the live call's peer, and the
//! [`TalkSender`] handle the rest of ring-bridge uses to feed it.
//!
//! The track is a small custom `TrackLocal` rather than webrtc-rs's static
//! tracks so that one track serves whichever codec Ring's answer picked (Opus
//! or PCMU, learned at bind time) and so that the payload type and SSRC can be
//! overridden (some Ring firmwares are reported to be picky). Each call to
//! [`TalkSender::send_talk`] becomes exactly one RTP packet.
//!
//! [`forward`] feeds the track from the hub's talkback channel
//! ([`TalkbackSender`](crate::media::TalkbackSender)); it runs on the call's
//! task tracker and ends with the call.

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::debug;
use webrtc::rtp;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecParameters, RTPCodecType};
use webrtc::track::track_local::{TrackLocal, TrackLocalContext, TrackLocalWriter};

use super::AudioCodec;
use super::error::{Error, ErrorInner};
use crate::base::CameraId;
use crate::media::{TalkbackCodec, TalkbackPacket};

struct Binding {
    writer: Arc<dyn TrackLocalWriter + Send + Sync>,
    payload_type: u8,
    ssrc: u32,
    codec: AudioCodec,
}

struct State {
    binding: Option<Binding>,
    seq: u16,
    timestamp: u32,
    first: bool,
    hung_up: bool,
}

/// The outgoing audio track (one per call).
pub(crate) struct TalkTrack {
    state: Mutex<State>,
    codec_tx: watch::Sender<Option<AudioCodec>>,
    pt_override: Option<u8>,
    ssrc_override: Option<u32>,
}

impl TalkTrack {
    pub(crate) fn new(pt_override: Option<u8>, ssrc_override: Option<u32>) -> Arc<Self> {
        Arc::new(TalkTrack {
            state: Mutex::new(State {
                binding: None,
                seq: rand::random(),
                timestamp: rand::random(),
                first: true,
                hung_up: false,
            }),
            codec_tx: watch::Sender::new(None),
            pt_override,
            ssrc_override,
        })
    }
}

impl TalkTrack {
    /// Marks the call as ended: later sends fail with [`ErrorInner::HungUp`].
    pub(crate) fn hang_up(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.hung_up = true;
            s.binding = None;
        }
    }
}

/// Picks the talkback codec from the negotiated list (answer order = preference).
fn pick(codecs: &[RTCRtpCodecParameters]) -> Option<(&RTCRtpCodecParameters, AudioCodec)> {
    codecs.iter().find_map(|c| {
        let mime = c.capability.mime_type.to_ascii_lowercase();
        match mime.as_str() {
            "audio/opus" => Some((c, AudioCodec::Opus)),
            "audio/pcmu" => Some((c, AudioCodec::Pcmu)),
            _ => None,
        }
    })
}

#[async_trait::async_trait]
impl TrackLocal for TalkTrack {
    async fn bind(&self, t: &TrackLocalContext) -> webrtc::error::Result<RTCRtpCodecParameters> {
        let (params, codec) =
            pick(t.codec_parameters()).ok_or(webrtc::Error::ErrUnsupportedCodec)?;
        let binding = Binding {
            writer: t.write_stream(),
            payload_type: self.pt_override.unwrap_or(params.payload_type),
            ssrc: self.ssrc_override.unwrap_or(t.ssrc()),
            codec,
        };
        if let Ok(mut s) = self.state.lock()
            && !s.hung_up
        {
            s.binding = Some(binding);
            self.codec_tx.send_replace(Some(codec));
        }
        Ok(params.clone())
    }

    async fn unbind(&self, _t: &TrackLocalContext) -> webrtc::error::Result<()> {
        if let Ok(mut s) = self.state.lock() {
            s.binding = None;
        }
        Ok(())
    }

    fn id(&self) -> &str {
        "ring-bridge-talkback"
    }

    fn rid(&self) -> Option<&str> {
        None
    }

    fn stream_id(&self) -> &str {
        "ring-bridge"
    }

    fn kind(&self) -> RTPCodecType {
        RTPCodecType::Audio
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Sends talkback audio into a live call. Cheap to clone; usable from any task.
#[derive(Clone)]
pub struct TalkSender {
    track: Arc<TalkTrack>,
    camera: CameraId,
}

impl std::fmt::Debug for TalkSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TalkSender")
            .field("camera", &self.camera)
            .field("codec", &self.codec())
            .finish()
    }
}

impl TalkSender {
    pub(crate) fn new(track: Arc<TalkTrack>, camera: CameraId) -> Self {
        TalkSender { track, camera }
    }

    /// The negotiated talkback codec; `None` until the answer has been applied.
    pub fn codec(&self) -> Option<AudioCodec> {
        *self.track.codec_tx.borrow()
    }

    /// Watches the negotiated codec (changes once, from `None`).
    pub fn codec_watch(&self) -> watch::Receiver<Option<AudioCodec>> {
        self.track.codec_tx.subscribe()
    }

    /// Sends one talkback frame as one RTP packet: an Opus packet (any frame
    /// size) or PCMU bytes (160 bytes = 20 ms), per [`Self::codec`]. `duration`
    /// advances the RTP timestamp (48 kHz Opus, 8 kHz PCMU). Pace calls in real
    /// time; this does not buffer.
    ///
    /// Fails with [`ErrorInner::TalkNotReady`] before negotiation and
    /// [`ErrorInner::HungUp`] after the call ended.
    pub async fn send_talk(&self, frame: Bytes, duration: Duration) -> Result<(), Error> {
        let (writer, pkt) = {
            let mut s = self
                .track
                .state
                .lock()
                .map_err(|_| Error::new(self.camera, None, ErrorInner::HungUp))?;
            let Some(b) = &s.binding else {
                let e = if s.hung_up {
                    ErrorInner::HungUp
                } else {
                    ErrorInner::TalkNotReady
                };
                return Err(Error::new(self.camera, None, e));
            };
            let ticks = duration.as_nanos() * u128::from(b.codec.clock_rate()) / 1_000_000_000;
            let header = rtp::header::Header {
                version: 2,
                marker: s.first,
                payload_type: b.payload_type,
                sequence_number: s.seq,
                timestamp: s.timestamp,
                ssrc: b.ssrc,
                ..Default::default()
            };
            let writer = Arc::clone(&b.writer);
            s.seq = s.seq.wrapping_add(1);
            s.timestamp = s
                .timestamp
                .wrapping_add(u32::try_from(ticks).unwrap_or(u32::MAX));
            s.first = false;
            (
                writer,
                rtp::packet::Packet {
                    header,
                    payload: frame,
                },
            )
        };
        writer.write_rtp(&pkt).await.map(|_| ()).map_err(|source| {
            Error::new(
                self.camera,
                None,
                ErrorInner::WebRtc {
                    context: "sending talkback",
                    source,
                },
            )
        })
    }
}

/// Forwards the hub's talkback packets to the call's audio track, each as one
/// RTP packet, until the channel closes, `cancel` fires (the call hangs up) or
/// a send fails. Packets in another codec than the one Ring picked (`codec`)
/// are dropped: the outputs convert (Opus → PCMU) before they reach the hub.
pub(super) async fn forward(
    mut rx: mpsc::Receiver<TalkbackPacket>,
    sender: TalkSender,
    codec: AudioCodec,
    cancel: CancellationToken,
) {
    loop {
        let pkt = tokio::select! {
            _ = cancel.cancelled() => break,
            p = rx.recv() => match p {
                Some(p) => p,
                None => break,
            },
        };
        let matches = matches!(
            (pkt.codec, codec),
            (TalkbackCodec::Opus, AudioCodec::Opus) | (TalkbackCodec::Pcmu, AudioCodec::Pcmu)
        );
        if !matches {
            debug!(?codec, "dropping talkback packet in the wrong codec");
            continue;
        }
        let rate = f64::from(codec.clock_rate());
        let dur = Duration::from_secs_f64(f64::from(pkt.samples) / rate);
        if let Err(e) = sender.send_talk(pkt.data, dur).await {
            debug!(err = %e, "talkback ended");
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;

    fn codec(mime: &str, pt: u8) -> RTCRtpCodecParameters {
        RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: mime.into(),
                ..Default::default()
            },
            payload_type: pt,
            ..Default::default()
        }
    }

    #[test]
    fn picks_first_supported_codec() {
        let list = [
            codec("audio/telephone-event", 126),
            codec("audio/PCMU", 0),
            codec("audio/opus", 111),
        ];
        let (p, c) = pick(&list).unwrap();
        assert_eq!((p.payload_type, c), (0, AudioCodec::Pcmu));
        assert!(pick(&[codec("audio/G722", 9)]).is_none());
    }

    #[tokio::test]
    async fn not_ready_before_bind() {
        let s = TalkSender::new(TalkTrack::new(None, None), CameraId::new(1));
        assert_eq!(s.codec(), None);
        let e = s
            .send_talk(Bytes::from_static(&[1]), Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(e.inner(), ErrorInner::TalkNotReady));
    }
}
