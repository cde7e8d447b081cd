//! H.265 over a real live call: the simulator's HEVC-mode camera against
//! `LiveCall`, with and without H.265 in our offer (`docs/design/0009-h265.md`).

use super::*;
use crate::media::{VideoCodec, h265};
use crate::sim::live::h265::{CLOSE_CODEC, VideoMode};

/// The first video frame of `call` (bounded).
async fn first_video(call: &mut LiveCall) -> LiveFrame {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let f = call.next_frame().await.unwrap().expect("call ended early");
            if f.kind == FrameKind::Video {
                return f;
            }
        }
    })
    .await
    .expect("no video within 15 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_camera_sends_h264_unless_h265_is_offered() {
    let h = Harness::start(small_sim()).await;
    h.sim.set_camera_video(Box::new(|_| VideoMode::Hevc));

    // Asked the way Ring's own clients ask: H.264 only → H.264 ("transcoded").
    let mut call = h.call(&client_opts()).await.unwrap();
    assert_eq!(call.video_codec(), VideoCodec::H264);
    let f = first_video(&mut call).await;
    assert!(f.keyframe);
    let sps = h264::annex_b_nals(&f.data)
        .find(|n| h264::nal_unit_type(n) == 7)
        .expect("H.264 SPS");
    assert_eq!(h264::sps_resolution(sps), Some((320, 180)));
    call.close().await.unwrap();
    h.wait_idle().await;

    // With H.265 offered, the HEVC camera answers H.265, depacketized from
    // webrtc-rs's RFC 7798 payloader (APs and FUs) into IRAP access units.
    let opts = LiveOptions {
        h265: true,
        ..client_opts()
    };
    let mut call = h.call(&opts).await.unwrap();
    assert_eq!(call.video_codec(), VideoCodec::H265);
    let f = first_video(&mut call).await;
    assert!(f.keyframe && h265::contains_irap(&f.data));
    let params = h265::find_parameter_sets(&f.data).video_params().unwrap();
    assert_eq!((params.width, params.height), (320, 180));
    // Later frames keep coming, and the next key frame has its parameter sets too.
    let mut keys = 0;
    tokio::time::timeout(Duration::from_secs(15), async {
        while keys < 1 {
            let f = call.next_frame().await.unwrap().expect("call ended early");
            if f.kind == FrameKind::Video && f.keyframe {
                assert!(h265::find_parameter_sets(&f.data).complete());
                keys += 1;
            }
        }
    })
    .await
    .expect("no second key frame");
    call.close().await.unwrap();
    h.wait_idle().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_only_camera_refuses_an_h264_only_offer() {
    let h = Harness::start(small_sim()).await;
    h.sim.set_camera_video(Box::new(|_| VideoMode::HevcOnly));
    let e = h.call(&client_opts()).await.unwrap_err();
    assert_eq!(e.close_reason().map(|r| r.code), Some(CLOSE_CODEC), "{e}");
    assert!(e.to_string().contains("H.265"), "{e}");
    h.wait_idle().await;
    h.stop().await;
}
