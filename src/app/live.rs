//! Connects the media hub to Ring: [`RingLiveOpener`] implements
//! [`LiveOpener`] with a live-view ticket from [`RingApi`] and a
//! [`LiveCall`], and adapts the call to [`LiveSource`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span};

use crate::base::{ErrorKind, ResultExt};
use crate::media::{
    Frame, LiveOpener, LiveSource, MediaKind, SourceError, TalkbackCodec, TalkbackSender,
};
use crate::ring::RingApi;
use crate::ring::live::{AudioCodec, FrameKind, LiveCall, LiveOptions};

/// Opens Ring live calls for the hub. Camera keys are Ring's numeric ids.
pub struct RingLiveOpener {
    /// Where tickets come from.
    pub ring: Arc<dyn RingApi>,
    /// Signalling websocket URL (Ring's or the simulator's).
    pub signalling: url::Url,
    /// Live-call options (ICE, talkback overrides).
    pub opts: LiveOptions,
    /// Ring's live-session cap, for seamless renewal.
    pub session_cap: Duration,
}

#[async_trait]
impl LiveOpener for RingLiveOpener {
    async fn open(
        &self,
        camera: &str,
        cancel: CancellationToken,
    ) -> Result<Box<dyn LiveSource>, SourceError> {
        let id: u64 = camera.parse().map_err(|_| {
            SourceError::new(
                ErrorKind::InvalidArgument,
                format!("camera key {camera:?} is not a Ring id"),
            )
        })?;
        let ticket =
            self.ring.live_ticket().await.map_err(|e| {
                SourceError::with_source(e.kind(), "requesting a live-view ticket", e)
            })?;
        let call = LiveCall::connect(&ticket, &self.signalling, id, &self.opts, &cancel)
            .await
            .map_err(|e| SourceError::with_source(e.kind(), "starting the Ring live call", e))?;
        let talkback = start_talkback(&call, id);
        Ok(Box::new(RingLiveSource {
            call,
            cap: self.session_cap,
            talkback,
        }))
    }
}

/// Forwards the hub's talkback channel to the call's audio sender.
fn start_talkback(call: &LiveCall, camera: u64) -> Option<TalkbackSender> {
    let codec = call.audio_codec()?;
    let sender = call.talk_sender();
    let (tx, mut rx) = TalkbackSender::channel(64);
    tokio::spawn(
        async move {
            while let Some(pkt) = rx.recv().await {
                let matches = matches!(
                    (pkt.codec, codec),
                    (TalkbackCodec::Opus, AudioCodec::Opus)
                        | (TalkbackCodec::Pcmu, AudioCodec::Pcmu)
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
        .instrument(info_span!("talkback", camera)),
    );
    Some(tx)
}

struct RingLiveSource {
    call: LiveCall,
    cap: Duration,
    talkback: Option<TalkbackSender>,
}

#[async_trait]
impl LiveSource for RingLiveSource {
    async fn next(&mut self) -> Option<Result<Frame, SourceError>> {
        loop {
            return match self.call.next_frame().await {
                Ok(Some(f)) => {
                    let kind = match f.kind {
                        FrameKind::Video => MediaKind::Video,
                        // PCMU audio cannot go out as Opus: skip it (no transcoding here).
                        FrameKind::Audio if self.call.audio_codec() == Some(AudioCodec::Opus) => {
                            MediaKind::Audio
                        }
                        FrameKind::Audio => continue,
                    };
                    Some(Ok(Frame::new(kind, f.data, f.keyframe, f.pts, 0)))
                }
                Ok(None) => None,
                Err(e) => Some(Err(SourceError::with_source(
                    e.kind(),
                    "Ring live call failed",
                    e,
                ))),
            };
        }
    }

    fn request_keyframe(&self) {
        self.call.request_keyframe();
    }

    fn video_codec(&self) -> crate::media::VideoCodec {
        self.call.video_codec()
    }

    async fn close(mut self: Box<Self>) {
        if let Err(e) = self.call.close().await {
            debug!(err = %e, "hang-up was not clean");
        }
    }

    fn session_age(&self) -> Duration {
        self.call.session_age()
    }

    fn session_cap(&self) -> Option<Duration> {
        Some(self.cap)
    }

    fn has_audio(&self) -> bool {
        self.call.audio_codec() == Some(AudioCodec::Opus)
    }

    fn talkback(&self) -> Option<TalkbackSender> {
        self.talkback.clone()
    }
}
