//! Live snapshots: a real H.264 key frame (encoded here with GStreamer) decodes
//! to a JPEG of the right size; `LiveSnapshots` answers from a hub stream fed by
//! a `FakeOpener` replaying a real clip while a lease is held, and `None` when
//! the stream is inactive.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use ring_bridge::media::testutil::{FakeClip, FakeOpener, FakeSpec};
use ring_bridge::media::{Hub, HubOptions, StreamState};
use ring_bridge::mqtt::SnapshotSource as _;
use ring_bridge::snapshot::{LiveSnapshots, SnapshotError, jpeg_from_keyframe};

fn h264(frames: u32, width: u32, height: u32, gop: u32) -> Vec<Bytes> {
    ring_bridge::codec::encode::h264_test_pattern(frames, width, height, gop).expect("H.264 clip")
}

/// 2 s of 640x360 H.264 with one key frame every 2 s, encoded once.
fn clip() -> Arc<FakeClip> {
    static CLIP: OnceLock<Arc<FakeClip>> = OnceLock::new();
    CLIP.get_or_init(|| {
        let video = h264(60, 640, 360, 60);
        assert_eq!(video.len(), 60);
        assert!(ring_bridge::media::h264::contains_idr(&video[0]));
        Arc::new(FakeClip {
            video,
            audio: Vec::new(),
        })
    })
    .clone()
}

/// Width and height from a baseline/progressive JPEG's SOFn segment.
fn jpeg_size(j: &[u8]) -> Option<(u16, u16)> {
    assert!(j.starts_with(&[0xFF, 0xD8]), "SOI");
    assert!(j.ends_with(&[0xFF, 0xD9]), "EOI");
    let mut i = 2;
    while i + 9 < j.len() {
        if j[i] != 0xFF {
            return None;
        }
        let marker = j[i + 1];
        let len = usize::from(u16::from_be_bytes([j[i + 2], j[i + 3]]));
        if matches!(marker, 0xC0..=0xC3) {
            let h = u16::from_be_bytes([j[i + 5], j[i + 6]]);
            let w = u16::from_be_bytes([j[i + 7], j[i + 8]]);
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

#[tokio::test]
async fn keyframe_decodes_to_a_jpeg_of_its_size() {
    let frames = tokio::task::spawn_blocking(|| h264(1, 320, 240, 30))
        .await
        .expect("encode");
    let jpeg = jpeg_from_keyframe(&frames[0]).await.expect("decodes");
    assert_eq!(jpeg_size(&jpeg), Some((320, 240)));
}

#[tokio::test]
async fn a_delta_frame_or_garbage_is_not_a_keyframe() {
    let err = jpeg_from_keyframe(b"\x00\x00\x00\x01\x41\x9a\x00\x00")
        .await
        .expect_err("no IDR");
    assert!(
        matches!(err, SnapshotError::NotAKeyframe { bytes: 8 }),
        "{err}"
    );
    // An IDR NAL header followed by garbage: GStreamer fails, bounded, no panic.
    let bogus = b"\x00\x00\x00\x01\x65\x88\x84\x00\x33\xff\xff\xff\xff";
    assert!(jpeg_from_keyframe(bogus).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_jpeg_while_streaming_and_none_when_inactive() {
    let clip = tokio::task::spawn_blocking(clip).await.expect("clip");
    let opener = FakeOpener::new(FakeSpec {
        clip: Some(clip),
        ..FakeSpec::default()
    });
    let cancel = CancellationToken::new();
    let hub = Hub::new(
        opener,
        HubOptions {
            linger: Duration::from_millis(100),
            ..HubOptions::default()
        },
        cancel.child_token(),
    );
    let snaps = LiveSnapshots::new(hub.clone());
    assert_eq!(snaps.latest_jpeg(10001).await, None, "no stream at all");
    assert!(hub.cameras().is_empty(), "asking created no stream");

    let lease = hub.lease("10001");
    lease
        .stream()
        .wait_ready(Duration::from_secs(10))
        .await
        .expect("key frame cached");
    let mut status = lease.stream().status();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.state == StreamState::Active),
    )
    .await
    .expect("active in time")
    .expect("status channel open");

    let key_before = snaps.current_keyframe(10001).expect("key frame");
    let jpeg = snaps
        .latest_jpeg(10001)
        .await
        .expect("a JPEG while streaming");
    assert_eq!(jpeg_size(&jpeg), Some((640, 360)));
    let again = snaps.latest_jpeg(10001).await.expect("again");
    let key_after = snaps.current_keyframe(10001).expect("key frame");
    if key_before.seq == key_after.seq {
        assert_eq!(jpeg.as_ptr(), again.as_ptr(), "same key frame: cached JPEG");
    }
    assert_eq!(snaps.latest_jpeg(10002).await, None, "another camera");

    drop(lease);
    let mut status = hub.status("10001");
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.state == StreamState::Inactive),
    )
    .await
    .expect("inactive after the linger")
    .expect("status channel open");
    assert_eq!(snaps.latest_jpeg(10001).await, None, "inactive stream");
    assert_eq!(hub.stream("10001").viewers(), 0, "snapshots took no lease");

    cancel.cancel();
    hub.shutdown().await;
}
