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
use super::{CameraStream, Frame, RecvError};

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
        }
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
                self.last_seq = Some(f.seq);
                return Ok(f);
            }
            let rx = self.rx.as_mut().ok_or(RecvError::Closed)?;
            match rx.recv().await {
                Ok(f) => {
                    if self.last_seq.is_some_and(|s| f.seq <= s) {
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

    /// After a lag: restart from the cached GOP if it begins after what we already
    /// delivered, else wait for the next key frame.
    fn resync(&mut self) {
        let (rx, gop) = self.stream.shared.snapshot();
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
