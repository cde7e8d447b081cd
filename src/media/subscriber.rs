//! [`Subscriber`]: one consumer's view of a camera stream. Starts at a key frame (the
//! cached GOP), then follows live frames; when it falls behind it reports
//! [`RecvError::Lagged`] and resumes at a key frame (moonfire-nvr `recent_frames`).
//!
//! A subscriber never blocks the producer or other subscribers: it reads from a
//! bounded `broadcast` channel whose overflow only affects itself.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::stats::ViewerCounters;
use super::{CameraStream, Frame, MediaKind, RecvError};

/// Receives a camera's frames. Create with [`CameraStream::subscribe`] or
/// [`crate::media::Lease::subscribe`]. Holding one does not keep the source running.
pub struct Subscriber {
    stream: CameraStream,
    rx: Option<broadcast::Receiver<Arc<Frame>>>,
    backlog: VecDeque<Arc<Frame>>,
    /// Dropping live frames until the next video key frame.
    awaiting_keyframe: bool,
    last_seq: Option<u64>,
    /// Delivery counters, for a subscriber made with `subscribe_as`.
    counters: Option<Arc<ViewerCounters>>,
    /// Whether audio frames are delivered (see [`Subscriber::set_audio`]).
    audio: bool,
}

impl Subscriber {
    pub(crate) fn new(
        stream: CameraStream,
        rx: Option<broadcast::Receiver<Arc<Frame>>>,
        gop: Vec<Arc<Frame>>,
        counters: Option<Arc<ViewerCounters>>,
    ) -> Self {
        let awaiting_keyframe = gop.is_empty();
        Subscriber {
            stream,
            rx,
            backlog: gop.into(),
            awaiting_keyframe,
            last_seq: None,
            counters,
            audio: true,
        }
    }

    /// Whether to deliver audio frames from now on (the default) or video frames
    /// only. A video-only subscriber is not woken for audio at all: it reads the
    /// hub's video-only channel. Switching keeps the video frames in order, none
    /// lost or repeated; audio starts with the next audio frame published.
    pub fn set_audio(&mut self, audio: bool) {
        if audio == self.audio {
            return;
        }
        self.audio = audio;
        let Some(old) = self.rx.as_mut() else {
            return;
        };
        // Subscribe first, then move what the old receiver still holds into the
        // backlog: a frame published in between is in both, and `next` skips
        // the second copy by its sequence number.
        let new = self.stream.shared.receiver(audio);
        if !self.awaiting_keyframe {
            let mut lagged = false;
            loop {
                match old.try_recv() {
                    Ok(f) => self.backlog.push_back(f),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                    Err(_) => break,
                }
            }
            if lagged {
                // Frames are missing in between: resume at a key frame, as after
                // any lag.
                self.backlog.clear();
                self.awaiting_keyframe = true;
                self.stream.request_keyframe();
            }
        }
        self.rx = new;
    }

    /// The stream this subscriber reads.
    pub fn stream(&self) -> &CameraStream {
        &self.stream
    }

    /// The next frame. The first frame ever returned, and the first after a
    /// [`RecvError::Lagged`], is a video key frame. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Arc<Frame>, RecvError> {
        let r = self.next().await;
        if let Some(c) = &self.counters {
            match &r {
                Ok(f) => c.delivered(f),
                Err(RecvError::Lagged { dropped }) => c.dropped(*dropped),
                Err(_) => {}
            }
        }
        r
    }

    async fn next(&mut self) -> Result<Arc<Frame>, RecvError> {
        loop {
            if let Some(f) = self.backlog.pop_front() {
                if self.last_seq.is_some_and(|s| f.seq <= s) || !self.wants(&f) {
                    continue;
                }
                self.last_seq = Some(f.seq);
                return Ok(f);
            }
            let rx = self.rx.as_mut().ok_or(RecvError::Closed)?;
            match rx.recv().await {
                Ok(f) => {
                    if self.last_seq.is_some_and(|s| f.seq <= s) || !self.wants(&f) {
                        continue;
                    }
                    if self.awaiting_keyframe {
                        if !f.is_video_keyframe() {
                            // Skipped after a lag (not before the first frame).
                            if let Some(c) =
                                self.counters.as_ref().filter(|_| self.last_seq.is_some())
                            {
                                c.dropped(1);
                            }
                            continue;
                        }
                        self.awaiting_keyframe = false;
                    }
                    self.last_seq = Some(f.seq);
                    return Ok(f);
                }
                Err(broadcast::error::RecvError::Lagged(dropped)) => {
                    self.resync();
                    return Err(RecvError::Lagged { dropped });
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.rx = None;
                    return Err(RecvError::Closed);
                }
            }
        }
    }

    /// Whether `f` is of a kind this subscriber delivers (the cached GOP and a
    /// receiver switched from have audio too).
    fn wants(&self, f: &Frame) -> bool {
        self.audio || f.kind == MediaKind::Video
    }

    /// After a lag: restart from the cached GOP if it begins after what we already
    /// delivered, else wait for the next key frame.
    fn resync(&mut self) {
        let (rx, gop) = self.stream.shared.snapshot(self.audio);
        self.rx = rx;
        let fresh = gop
            .first()
            .is_some_and(|k| self.last_seq.is_none_or(|s| k.seq > s));
        if fresh {
            self.backlog = gop.into();
            self.awaiting_keyframe = false;
        } else {
            self.backlog.clear();
            self.awaiting_keyframe = true;
            self.stream.request_keyframe();
        }
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("camera", &self.stream.id())
            .field("last_seq", &self.last_seq)
            .finish()
    }
}
