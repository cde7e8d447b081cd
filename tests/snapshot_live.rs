//! Live snapshots: a real H.264 key frame (encoded here with GStreamer) decodes
//! to a JPEG of the right size; `LiveSnapshots` answers from a hub stream fed by
//! a `FakeOpener` replaying a real clip while a lease is held, and `None` when
//! the stream is inactive. The same for an H.265 stream, whose parameter sets the
//! hub re-sends before every key frame.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use ring_bridge::base::CameraId;
use ring_bridge::media::testutil::{FakeClip, FakeOpener, FakeSpec};
use ring_bridge::media::{Hub, HubOptions, StreamState};
use ring_bridge::mqtt::SnapshotSource as _;
use ring_bridge::snapshot::{LiveSnapshots, SnapshotError, jpeg_from_keyframe};

/// The camera every test streams.
const CAM: CameraId = CameraId::new(10001);

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
    assert_eq!(snaps.latest_jpeg(CAM).await, None, "no stream at all");
    assert!(hub.cameras().is_empty(), "asking created no stream");

    let lease = hub.lease(CAM);
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

    let key_before = snaps.current_keyframe(CAM).expect("key frame");
    let jpeg = snaps
        .latest_jpeg(CAM)
        .await
        .expect("a JPEG while streaming");
    assert_eq!(jpeg_size(&jpeg), Some((640, 360)));
    let again = snaps.latest_jpeg(CAM).await.expect("again");
    let key_after = snaps.current_keyframe(CAM).expect("key frame");
    if key_before.seq == key_after.seq {
        assert_eq!(jpeg.as_ptr(), again.as_ptr(), "same key frame: cached JPEG");
    }
    assert_eq!(
        snaps.latest_jpeg(CameraId::new(10002)).await,
        None,
        "another camera"
    );

    drop(lease);
    let mut status = hub.status(CAM);
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.state == StreamState::Inactive),
    )
    .await
    .expect("inactive after the linger")
    .expect("status channel open");
    assert_eq!(snaps.latest_jpeg(CAM).await, None, "inactive stream");
    assert_eq!(hub.stream(CAM).viewers(), 0, "snapshots took no lease");

    cancel.cancel();
    hub.shutdown().await;
}

/// An H.265 camera whose parameter sets came only with its first key frame: the hub
/// describes the stream from them, puts them back in front of every later key frame
/// (so a late joiner starts decodable), and `LiveSnapshots` decodes its key frame
/// with the H.265 decoder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_stream_late_joiner_gets_parameter_sets_and_snapshots_decode() {
    use ring_bridge::media::{VideoCodec, h265};
    let mut video = tokio::task::spawn_blocking(|| {
        ring_bridge::codec::encode::h265_test_pattern(20, 640, 360, 5).expect("H.265 clip")
    })
    .await
    .expect("encode");
    assert!(h265::find_parameter_sets(&video[0]).complete());
    // Keep VPS/SPS/PPS in the first access unit only.
    for au in video.iter_mut().skip(1) {
        let mut stripped = bytes::BytesMut::new();
        for n in ring_bridge::media::h264::nal_units(au) {
            if !matches!(h265::nal_type(&n), h265::NAL_VPS..=h265::NAL_PPS) {
                stripped.extend_from_slice(&[0, 0, 0, 1]);
                stripped.extend_from_slice(&n);
            }
        }
        *au = stripped.freeze();
    }
    assert!(h265::contains_irap(&video[5]) && !h265::find_parameter_sets(&video[5]).complete());
    let opener = FakeOpener::new(FakeSpec {
        clip: Some(Arc::new(FakeClip {
            video,
            audio: Vec::new(),
        })),
        codec: VideoCodec::H265,
        ..FakeSpec::default()
    });
    let cancel = CancellationToken::new();
    let hub = Hub::new(opener, HubOptions::default(), cancel.child_token());
    let snaps = LiveSnapshots::new(hub.clone());
    let lease = hub.lease(CAM);
    let params = lease
        .stream()
        .wait_ready(Duration::from_secs(10))
        .await
        .expect("described");
    assert_eq!(params.codec, VideoCodec::H265);
    assert_eq!((params.width, params.height), (640, 360));
    assert!(params.sprop_parameter_sets().starts_with("sprop-vps="));
    // The status (REST camera list, MQTT `stream` attributes) names the codec too.
    assert_eq!(hub.status(CAM).borrow().video_codec, Some(VideoCodec::H265));

    // Watch until a key frame without inline sets has gone by, then join late.
    let mut early = lease.stream().subscribe();
    let mut keys = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        while keys < 3 {
            let f = early.recv().await.expect("frame");
            if f.is_video_keyframe() {
                assert!(
                    h265::find_parameter_sets(&f.data).complete(),
                    "sets re-sent"
                );
                keys += 1;
            }
        }
    })
    .await
    .expect("three key frames in time");
    let mut late = lease.stream().subscribe();
    let first = tokio::time::timeout(Duration::from_secs(5), late.recv())
        .await
        .expect("in time")
        .expect("frame");
    assert!(
        first.is_video_keyframe(),
        "late joiner starts on a key frame"
    );
    assert!(h265::find_parameter_sets(&first.data).complete());

    let mut status = lease.stream().status();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.state == StreamState::Active),
    )
    .await
    .expect("active in time")
    .expect("status channel open");
    let jpeg = snaps
        .latest_jpeg(CAM)
        .await
        .expect("a JPEG of the H.265 key frame");
    assert_eq!(jpeg_size(&jpeg), Some((640, 360)));
    drop((early, late, lease));
    cancel.cancel();
    hub.shutdown().await;
}
