//! Plays encoded talkback packets into a camera's live session at real-time
//! pace, keeping the talk floor alive while it does.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::AnnounceError;
use crate::media::{CameraStream, Floors, TalkbackError, TalkbackPacket};

/// How far ahead of real time packets are handed to the live session, so the
/// sender's own scheduling never leaves the camera's jitter buffer empty.
const LEAD: Duration = Duration::from_millis(60);

/// What a playback did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Played {
    /// Audio handed to the live session.
    pub played: Duration,
    /// Packets sent.
    pub packets: u64,
    /// Packets dropped (no session while it renewed, or its buffer was full).
    pub dropped: u64,
}

/// Sends `packets` (durations at `clock_rate` Hz) to `stream`'s talkback, each
/// at its time, touching `session`'s floor on `camera` per packet; returns once
/// the last packet has played out.
pub(crate) async fn play(
    stream: &CameraStream,
    floors: &Floors,
    session: &str,
    packets: Vec<TalkbackPacket>,
    clock_rate: u32,
    cancel: &CancellationToken,
) -> Result<Played, AnnounceError> {
    let start = Instant::now();
    let mut offset = Duration::ZERO;
    let mut out = Played::default();
    let mut sender = stream.talkback();
    for packet in packets {
        let due = (start + offset).checked_sub(LEAD).unwrap_or(start);
        tokio::select! {
            _ = cancel.cancelled() => return Err(AnnounceError::ShuttingDown),
            _ = tokio::time::sleep_until(due) => {}
        }
        let length = Duration::from_secs_f64(f64::from(packet.samples) / f64::from(clock_rate));
        offset += length;
        floors.touch(stream.id(), session);
        // A renewed session has a new talkback handle.
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            sender = stream.talkback();
        }
        match sender.as_ref().map(|s| s.try_send(packet)) {
            Some(Ok(())) => {
                out.packets += 1;
                out.played += length;
            }
            Some(Err(TalkbackError::Full | TalkbackError::Closed)) | None => out.dropped += 1,
        }
    }
    // Finished when the camera has played the last packet, not when it was sent.
    tokio::select! {
        _ = cancel.cancelled() => return Err(AnnounceError::ShuttingDown),
        _ = tokio::time::sleep_until(start + offset) => {}
    }
    debug!(
        packets = out.packets,
        dropped = out.dropped,
        "announcement played"
    );
    Ok(out)
}
