//! The live call as the media hub's source: [`RingOpener`] implements
//! [`LiveOpener`] (a live-view ticket from [`RingApi`], then
//! [`LiveCall::connect`]), and [`LiveCall`] itself implements [`LiveSource`].
//! The media path is ring → media with no adapter in between: the call's
//! track tasks already build [`media::Frame`](crate::media::Frame)s (PCMU audio is
//! dropped there), and the talkback forwarder (`talk.rs`) runs on the call's
//! own tracker.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use url::Url;

use super::{AudioCodec, LiveCall, LiveOptions};
use crate::base::{CameraId, ResultExt};
use crate::media::{
    Frame, LiveOpener, LiveSource, SourceError, TalkbackSender, TransportStats, VideoCodec,
};
use crate::ring::RingApi;

/// Opens Ring live calls for the hub. Camera keys are Ring's numeric ids.
pub struct RingOpener {
    /// Where tickets come from.
    pub ring: Arc<dyn RingApi>,
    /// Signalling websocket URL (Ring's, [`super::RING_SIGNALLING_URL`], or the
    /// simulator's `ws://host:port/ws`).
    pub signalling: Url,
    /// Live-call options (ICE, talkback overrides, session cap).
    pub opts: LiveOptions,
}

#[async_trait]
impl LiveOpener for RingOpener {
    async fn open(
        &self,
        camera: CameraId,
        cancel: CancellationToken,
    ) -> Result<Box<dyn LiveSource>, SourceError> {
        let ticket =
            self.ring.live_ticket().await.map_err(|e| {
                SourceError::with_source(e.kind(), "requesting a live-view ticket", e)
            })?;
        let call = LiveCall::connect(&ticket, &self.signalling, camera, &self.opts, &cancel)
            .await
            .map_err(|e| SourceError::with_source(e.kind(), "starting the Ring live call", e))?;
        Ok(Box::new(call))
    }
}

#[async_trait]
impl LiveSource for LiveCall {
    async fn next(&mut self) -> Option<Result<Frame, SourceError>> {
        match self.next_frame().await {
            Ok(Some(f)) => Some(Ok(f)),
            Ok(None) => None,
            Err(e) => Some(Err(SourceError::with_source(
                e.kind(),
                "Ring live call failed",
                e,
            ))),
        }
    }

    fn request_keyframe(&self) {
        LiveCall::request_keyframe(self);
    }

    async fn close(mut self: Box<Self>) {
        if let Err(e) = LiveCall::close(&mut self).await {
            debug!(err = %e, "hang-up was not clean");
        }
    }

    fn session_age(&self) -> Duration {
        LiveCall::session_age(self)
    }

    fn session_cap(&self) -> Option<Duration> {
        self.session_cap
    }

    /// Only Opus audio reaches the hub; PCMU is dropped by the audio track task.
    fn has_audio(&self) -> bool {
        self.audio_codec() == Some(AudioCodec::Opus)
    }

    fn talkback(&self) -> Option<TalkbackSender> {
        self.talkback_sender()
    }

    /// What Ring answered: H.265 only when the offer listed it (`LiveOptions::h265`).
    fn video_codec(&self) -> VideoCodec {
        LiveCall::video_codec(self)
    }

    fn transport_stats(&self) -> Option<Arc<TransportStats>> {
        Some(LiveCall::transport_stats(self))
    }
}
