//! RTP payloads shared by every WHEP viewer of a camera: an access unit is
//! packetized once (RFC 6184 for H.264 with [`crate::media::h264::pay`], RFC 7798
//! for H.265 with [`crate::media::h265::pay`]) and each viewer's writer only puts its
//! own RTP header (sequence number, timestamp; SSRC and payload type in the
//! track) in front of the same payload buffers.
//!
//! That makes the per-viewer cost of a packet its header, SRTP and the send, and
//! the retransmission cache each viewer keeps holds references to the shared
//! buffers instead of copies. The cache keeps the
//! last [`KEEP`] video frames of the camera by the hub's frame sequence number, so
//! viewers on the live edge (a few frames apart at most) share; a viewer replaying
//! the cached GOP after it joined packetizes its backlog itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use crate::base::CameraId;
use crate::media::{Frame, VideoCodec, h264, h265};

/// Frames kept per camera: enough for viewers a few frames apart.
const KEEP: usize = 8;

/// RTP payload budget: 1200-byte packets minus the 12-byte header and room for
/// header extensions (mid and the others a viewer may negotiate, `peer.rs`).
pub(crate) const PAYLOAD_MTU: usize = 1200 - 12 - 28;

/// One RTP payload, shareable with the WebRTC stack's send path as is.
pub(crate) type Payload = Arc<[u8]>;

/// The RTP payloads of one access unit, in order.
pub(crate) type FramePayloads = Arc<[Payload]>;

/// The payloads of one camera's recent video frames.
pub(crate) struct PayloadCache {
    inner: Mutex<CacheInner>,
}

struct CacheInner {
    /// (hub frame sequence number, codec, its payloads), oldest first.
    recent: VecDeque<(u64, VideoCodec, FramePayloads)>,
}

impl PayloadCache {
    fn new() -> Self {
        PayloadCache {
            inner: Mutex::new(CacheInner {
                recent: VecDeque::with_capacity(KEEP),
            }),
        }
    }

    /// The RTP payloads of the video access unit `frame` in `codec` (the
    /// session's): from the cache when a viewer already packetized it, otherwise
    /// packetized now (and kept).
    pub fn video(&self, frame: &Frame, codec: VideoCodec) -> FramePayloads {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let hit = c
            .recent
            .iter()
            .rev()
            .find(|(seq, kept, _)| *seq == frame.seq && *kept == codec);
        if let Some((_, _, p)) = hit {
            return Arc::clone(p);
        }
        let payloads: FramePayloads = match codec {
            VideoCodec::H264 => h264::pay::packetize(&frame.data, PAYLOAD_MTU),
            VideoCodec::H265 => h265::pay::packetize(&frame.data, PAYLOAD_MTU),
        }
        .iter()
        .map(|p| Payload::from(&p[..]))
        .collect();
        // Only frames past the newest kept one are worth keeping: an older one is
        // a late joiner's backlog that nobody else will ask for.
        if c.recent.back().is_none_or(|(seq, _, _)| frame.seq > *seq) {
            if c.recent.len() == KEEP {
                c.recent.pop_front();
            }
            c.recent
                .push_back((frame.seq, codec, Arc::clone(&payloads)));
        }
        payloads
    }
}

/// One [`PayloadCache`] per camera with WHEP viewers; a cache lives as long as a
/// viewer holds it.
#[derive(Default)]
pub(crate) struct Payloads {
    by_camera: Mutex<HashMap<CameraId, Weak<PayloadCache>>>,
}

impl Payloads {
    /// The cache of `camera`, shared with its other viewers.
    pub fn for_camera(&self, camera: CameraId) -> Arc<PayloadCache> {
        let mut map = self.by_camera.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(&camera).and_then(Weak::upgrade) {
            return c;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let c = Arc::new(PayloadCache::new());
        map.insert(camera, Arc::downgrade(&c));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    use crate::media::MediaKind;

    fn video(seq: u64, len: usize) -> Frame {
        let mut data = vec![0, 0, 0, 1, 0x65];
        data.extend(std::iter::repeat_n(0xAB, len));
        let mut f = Frame::new(MediaKind::Video, Bytes::from(data), true, seq * 6000, 0);
        f.seq = seq;
        f
    }

    #[test]
    fn viewers_of_one_camera_share_payload_buffers() {
        let payloads = Payloads::default();
        let (a, b) = (
            payloads.for_camera(CameraId::new(1)),
            payloads.for_camera(CameraId::new(1)),
        );
        assert!(Arc::ptr_eq(&a, &b));
        let other = payloads.for_camera(CameraId::new(2));
        assert!(!Arc::ptr_eq(&a, &other));

        let f = video(7, 3000);
        let first = a.video(&f, VideoCodec::H264);
        assert!(first.len() >= 3, "FU-A fragments");
        assert!(first.iter().all(|p| p.len() <= PAYLOAD_MTU));
        let second = b.video(&f, VideoCodec::H264);
        assert!(Arc::ptr_eq(&first, &second), "packetized once");
        // The very same bytes, not copies.
        assert_eq!(first[0].as_ptr(), second[0].as_ptr());
    }

    #[test]
    fn keeps_the_newest_frames_and_forgets_dropped_cameras() {
        let payloads = Payloads::default();
        let c = payloads.for_camera(CameraId::new(1));
        let kept: Vec<_> = (1..=KEEP as u64 + 4)
            .map(|s| c.video(&video(s, 10), VideoCodec::H264))
            .collect();
        // The newest KEEP frames come from the cache; the oldest were evicted.
        let last = KEEP as u64 + 4;
        assert!(Arc::ptr_eq(
            &kept[kept.len() - 1],
            &c.video(&video(last, 10), VideoCodec::H264)
        ));
        assert!(!Arc::ptr_eq(
            &kept[0],
            &c.video(&video(1, 10), VideoCodec::H264)
        ));
        // A backlog frame older than the newest is not kept (and evicts nothing).
        assert!(Arc::ptr_eq(
            &kept[kept.len() - 1],
            &c.video(&video(last, 10), VideoCodec::H264)
        ));

        drop(c);
        let fresh = payloads.for_camera(CameraId::new(1));
        assert!(payloads.by_camera.lock().unwrap().len() == 1);
        drop(fresh);
    }
}
