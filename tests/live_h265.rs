//! H.265 cameras end to end (`docs/design/0009-h265.md`): the real daemon binary
//! against the simulator's Front Door, which is in HEVC mode.
//!
//! - Asked the way Ring's clients ask (H.264 only, the default), the HEVC camera
//!   streams H.264: ffprobe over our RTSP reports `h264`.
//! - Forced to H.265 (`/_sim/cameras/{id}/video` `hevc_only`) with `stream.h265` on,
//!   the H.265 is passed through: ffprobe reports `hevc` at the camera's size,
//!   ffmpeg decodes 10 s without an error, and a late joiner starts on a key frame.
//!   A WHEP viewer gets a clear 409 naming H.265 (browsers get H.264 only).

mod common;
mod whep_support;

use common::rtsp::{next_video, rtsp_url, spawn_client, wait_rtsp_ready};
use common::{Daemon, Sim, daemon_on, get_json};
use ring_bridge::sim::SimOptions;
use ring_bridge::sim::live::LiveSimOptions;

const FRONT_DOOR: u64 = 10001;
const SIZE: (u32, u32) = (640, 360);

async fn small_sim() -> Sim {
    Sim::start_with(SimOptions {
        live: LiveSimOptions {
            width: SIZE.0,
            height: SIZE.1,
            fps: 15,
            gop_secs: 1,
            ..LiveSimOptions::default()
        },
        ..SimOptions::default()
    })
    .await
}

async fn daemon(sim: &Sim, state: &std::path::Path, stream_toml: &str) -> Daemon {
    let d = daemon_on(sim, state, &format!("[stream]\n{stream_toml}\n"), &[]).await;
    wait_rtsp_ready(&d);
    d
}

/// `ffprobe` of the first video and audio stream: `codec_name=…|width=…|height=…` lines.
fn ffprobe(url: &url::Url) -> String {
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-show_entries"])
            .args(["stream=codec_name,width,height", "-of", "compact"])
            .arg(url.as_str())
            .output()
            .expect("ffprobe runs")
    });
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Decodes `secs` seconds with ffmpeg; returns its warnings (empty when clean).
fn ffmpeg_decode(url: &url::Url, secs: u32) -> String {
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "warning",
                "-rtsp_transport",
                "tcp",
                "-i",
                url.as_str(),
            ])
            .args(["-t", &secs.to_string(), "-f", "null", "-"])
            .output()
            .expect("ffmpeg runs")
    });
    let warnings = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() {
        warnings
    } else {
        format!("ffmpeg failed ({}): {warnings}", out.status)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hevc_camera_streams_h264_when_asked_like_ring_clients() {
    let sim = small_sim().await;
    assert_eq!(
        sim.state().await["cameras"][FRONT_DOOR.to_string()]["video"],
        "hevc",
        "the Front Door is an HEVC-mode camera"
    );
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path(), "linger = \"1s\"").await;
    let url = rtsp_url(&d, "front-door");
    let text = ffprobe(&url);
    assert!(
        text.contains(&format!(
            "codec_name=h264|width={}|height={}",
            SIZE.0, SIZE.1
        )),
        "{text}\n{}",
        d.log_text()
    );
    let (_, live) = get_json(&d.url("/api/ring/cameras/front-door/live")).await;
    assert_eq!(live["video_codec"], "h264", "{live}");
    let (_, cam) = get_json(&d.url("/api/ring/cameras/front-door")).await;
    assert_eq!(cam["video_codec"], "h264", "{cam}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_h265_is_passed_through_to_rtsp() {
    let sim = small_sim().await;
    let r = sim
        .post(
            &format!("cameras/{FRONT_DOOR}/video"),
            serde_json::json!({"mode": "hevc_only"}),
        )
        .await;
    assert!(r.status().is_success());
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path(), "linger = \"2s\"\nh265 = true").await;
    let url = rtsp_url(&d, "front-door");

    // Retina: an H.265 SDP (sprop-vps/sps/pps give the size) and key frames first.
    let (described, mut a) = spawn_client(url.clone()).await;
    assert_eq!(described.media[0], ("video".into(), "h265".into()));
    assert_eq!(described.video_size, Some(SIZE));
    assert!(
        next_video(&mut a).await.keyframe,
        "first frame is a key frame"
    );

    let text = ffprobe(&url);
    assert!(
        text.contains(&format!(
            "codec_name=hevc|width={}|height={}",
            SIZE.0, SIZE.1
        )),
        "{text}\n{}",
        d.log_text()
    );
    let (_, live) = get_json(&d.url("/api/ring/cameras/front-door/live")).await;
    assert_eq!(live["video_codec"], "h265", "{live}");
    let (_, cam) = get_json(&d.url("/api/ring/cameras/front-door")).await;
    assert_eq!(cam["video_codec"], "h265", "{cam}");
    let (_, other) = get_json(&d.url("/api/ring/cameras/driveway")).await;
    assert!(other["video_codec"].is_null(), "never streamed: {other}");

    // A late joiner starts on a key frame with its parameter sets (it decodes at
    // once), and a real decoder decodes 10 s without a single error.
    let (_, mut late) = spawn_client(url.clone()).await;
    assert!(
        next_video(&mut late).await.keyframe,
        "late joiner starts on a key frame"
    );
    let warnings = ffmpeg_decode(&url, 10);
    assert!(warnings.is_empty(), "{warnings}");

    // A browser-like WHEP viewer is refused with a message, not given a black picture.
    whep_support::assert_h265_refused(&d.url(""), "front-door").await;
    drop((a, late));
}
