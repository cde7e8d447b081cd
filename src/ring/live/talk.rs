//! Talkback: the RTP the call sends on its audio m-line, and the
//! [`TalkSender`] handle the rest of ring-bridge uses to feed it.
//!
//! One track serves whichever codec Ring's answer picked (Opus or PCMU, bound
//! when the answer is applied), and the payload type can be overridden (some
//! Ring firmwares are reported to be picky; the SSRC override is applied by the
//! pump, which owns the stream). Each call to [`TalkSender::send_talk`]
//! becomes exactly one RTP packet, handed to the call's pump (`pump.rs`).
//!
//! [`forward`] feeds the track from the hub's talkback channel
//! ([`TalkbackSender`](crate::media::TalkbackSender)); it runs on the call's
//! task tracker and ends with the call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::AudioCodec;
use super::error::{Error, ErrorInner};
use super::peer::audio_pt;
use crate::base::CameraId;
use crate::media::{TalkbackCodec, TalkbackPacket};

/// Talkback RTP packets queued for the pump (~1 s of 20 ms packets).
const PUMP_QUEUE: usize = 64;

/// One talkback RTP packet, header fields decided, for the pump to send.
#[derive(Debug)]
pub(crate) struct TalkRtp {
    pub(crate) pt: u8,
    /// Extended sequence number (the 16-bit one on the wire is its low part).
    pub(crate) seq: u64,
    pub(crate) timestamp: u32,
    pub(crate) marker: bool,
    pub(crate) payload: Bytes,
}

struct Binding {
    payload_type: u8,
    codec: AudioCodec,
}

struct State {
    binding: Option<Binding>,
    seq: u64,
    timestamp: u32,
    first: bool,
    hung_up: bool,
}

/// The outgoing audio track (one per call).
pub(crate) struct TalkTrack {
    state: Mutex<State>,
    codec_tx: watch::Sender<Option<AudioCodec>>,
    pt_override: Option<u8>,
    to_pump: mpsc::Sender<TalkRtp>,
}

impl TalkTrack {
    /// A track and the receiver its packets arrive on (the pump's).
    pub(crate) fn new(pt_override: Option<u8>) -> (Arc<Self>, mpsc::Receiver<TalkRtp>) {
        let (to_pump, rx) = mpsc::channel(PUMP_QUEUE);
        let track = Arc::new(TalkTrack {
            state: Mutex::new(State {
                binding: None,
                seq: u64::from(rand::random::<u16>()),
                timestamp: rand::random(),
                first: true,
                hung_up: false,
            }),
            codec_tx: watch::Sender::new(None),
            pt_override,
            to_pump,
        });
        (track, rx)
    }

    /// Binds the track to the codec Ring's answer picked.
    pub(crate) fn bind(&self, codec: AudioCodec) {
        if let Ok(mut s) = self.state.lock()
            && !s.hung_up
        {
            s.binding = Some(Binding {
                payload_type: self.pt_override.unwrap_or(audio_pt(codec)),
                codec,
            });
            self.codec_tx.send_replace(Some(codec));
        }
    }

    /// Marks the call as ended: later sends fail with [`ErrorInner::HungUp`].
    pub(crate) fn hang_up(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.hung_up = true;
            s.binding = None;
        }
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
        let pkt = {
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
            let pkt = TalkRtp {
                pt: b.payload_type,
                seq: s.seq,
                timestamp: s.timestamp,
                marker: s.first,
                payload: frame,
            };
            s.seq += 1;
            s.timestamp = s
                .timestamp
                .wrapping_add(u32::try_from(ticks).unwrap_or(u32::MAX));
            s.first = false;
            pkt
        };
        self.track
            .to_pump
            .send(pkt)
            .await
            .map_err(|_| Error::new(self.camera, None, ErrorInner::HungUp))
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

    #[tokio::test]
    async fn not_ready_before_bind_then_one_packet_per_send() {
        let (track, mut rx) = TalkTrack::new(None);
        let s = TalkSender::new(Arc::clone(&track), CameraId::new(1));
        assert_eq!(s.codec(), None);
        let e = s
            .send_talk(Bytes::from_static(&[1]), Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(e.inner(), ErrorInner::TalkNotReady));

        track.bind(AudioCodec::Pcmu);
        assert_eq!(s.codec(), Some(AudioCodec::Pcmu));
        let frame = Bytes::from(vec![0x7f; 160]);
        s.send_talk(frame.clone(), Duration::from_millis(20))
            .await
            .unwrap();
        s.send_talk(frame, Duration::from_millis(20)).await.unwrap();
        let (a, b) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
        assert_eq!((a.pt, a.marker, b.marker), (0, true, false));
        assert_eq!(b.seq, a.seq + 1);
        assert_eq!(b.timestamp.wrapping_sub(a.timestamp), 160, "20 ms at 8 kHz");

        track.hang_up();
        let e = s
            .send_talk(Bytes::from_static(&[1]), Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(e.inner(), ErrorInner::HungUp));
    }

    #[tokio::test]
    async fn payload_type_override() {
        let (track, mut rx) = TalkTrack::new(Some(120));
        track.bind(AudioCodec::Opus);
        let s = TalkSender::new(track, CameraId::new(1));
        s.send_talk(Bytes::from_static(&[1, 2]), Duration::from_millis(20))
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap().pt, 120);
    }
}
