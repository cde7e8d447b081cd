//! The producer seam of the hub: [`LiveOpener`] opens one live session per call, and a
//! [`LiveSource`] yields its [`Frame`]s. `ring::live` implements these against Ring;
//! [`crate::media::testutil::FakeOpener`] implements them with synthetic or recorded
//! frames for tests.
//!
//! The hub owns every source it opens and always ends it with
//! [`LiveSource::close`], so the producer can hang up explicitly.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Frame, SourceError, TransportStats};

use crate::base::CameraId;

/// Opens live sessions for a camera. Held by the hub as `Arc<dyn LiveOpener>`.
#[async_trait]
pub trait LiveOpener: Send + Sync {
    /// Starts a live session for `camera` (the hub's camera id).
    ///
    /// Returns once the session is established (frames may still take seconds).
    /// `cancel` is cancelled when the hub no longer wants this session, during the open
    /// or at any time after it; the hub still calls [`LiveSource::close`] on a returned
    /// source.
    async fn open(
        &self,
        camera: CameraId,
        cancel: CancellationToken,
    ) -> Result<Box<dyn LiveSource>, SourceError>;
}

/// One live session producing frames.
#[async_trait]
pub trait LiveSource: Send {
    /// The next frame, `Some(Err(_))` on a session failure, or `None` when the session
    /// ended. After `None` or an error the hub closes the source and opens a new one.
    ///
    /// **Must be cancel-safe** (the hub races it against timers and other sessions): a
    /// frame is either returned or kept for the next call, e.g. `mpsc::Receiver::recv`.
    ///
    /// Frames must be complete access units (see [`Frame`]); `pts` must be monotonic
    /// per kind within the session (unwrap 32-bit RTP timestamps). The hub sets
    /// `seq` and `received_at`.
    async fn next(&mut self) -> Option<Result<Frame, SourceError>>;

    /// Asks the camera for a key frame soon (e.g. an RTCP PLI). Must not block.
    fn request_keyframe(&self);

    /// The codec of this session's video frames (what Ring answered). H.264 unless
    /// the source says otherwise.
    fn video_codec(&self) -> super::VideoCodec {
        super::VideoCodec::H264
    }

    /// Hangs up explicitly and releases every resource. Called exactly once.
    async fn close(self: Box<Self>);

    /// How long this session has existed.
    fn session_age(&self) -> Duration;

    /// The most this session may last (Ring ends live calls after a few minutes), or
    /// `None` when unbounded. The hub opens a replacement shortly before the cap.
    fn session_cap(&self) -> Option<Duration>;

    /// Whether this session carries Opus audio frames. Consumers that must declare
    /// tracks up front (RTSP SDP) include audio only when this is true, so a source
    /// that says `true` must actually send audio. Defaults to `false`.
    fn has_audio(&self) -> bool {
        false
    }

    /// A handle for sending audio back to the camera (talkback), if supported.
    fn talkback(&self) -> Option<TalkbackSender> {
        None
    }

    /// This session's transport counters (RTP loss, NACKs and PLIs sent), if the
    /// source keeps them; the hub reads them for [`crate::media::LiveStats`].
    fn transport_stats(&self) -> Option<Arc<TransportStats>> {
        None
    }
}

/// Codec of a [`TalkbackPacket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TalkbackCodec {
    /// One Opus packet, 48 kHz.
    Opus,
    /// G.711 µ-law samples, 8 kHz.
    Pcmu,
}

/// One packet of audio to play on the camera's speaker.
#[derive(Clone, Debug)]
pub struct TalkbackPacket {
    /// The packet's codec.
    pub codec: TalkbackCodec,
    /// The encoded audio.
    pub data: Bytes,
    /// Duration in samples at the codec's clock rate (48 kHz Opus, 8 kHz PCMU).
    pub samples: u32,
}

/// Error of [`TalkbackSender::try_send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TalkbackError {
    /// The session's talkback buffer is full; the packet was dropped.
    #[error("talkback buffer full")]
    Full,
    /// The live session ended.
    #[error("talkback session ended")]
    Closed,
}

/// A cloneable handle to send [`TalkbackPacket`]s to a live session. The source keeps
/// the receiving end; it is only valid for that session.
#[derive(Clone, Debug)]
pub struct TalkbackSender {
    tx: mpsc::Sender<TalkbackPacket>,
}

impl TalkbackSender {
    /// Creates a sender and the receiver the source drains, buffering `capacity`
    /// packets.
    pub fn channel(capacity: usize) -> (TalkbackSender, mpsc::Receiver<TalkbackPacket>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (TalkbackSender { tx }, rx)
    }

    /// Sends without waiting; drops the packet when the buffer is full.
    pub fn try_send(&self, packet: TalkbackPacket) -> Result<(), TalkbackError> {
        self.tx.try_send(packet).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => TalkbackError::Full,
            mpsc::error::TrySendError::Closed(_) => TalkbackError::Closed,
        })
    }

    /// Sends, waiting for buffer space.
    pub async fn send(&self, packet: TalkbackPacket) -> Result<(), TalkbackError> {
        self.tx
            .send(packet)
            .await
            .map_err(|_| TalkbackError::Closed)
    }

    /// True once the session dropped its receiver.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
