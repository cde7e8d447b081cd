//! H.265 to WHEP viewers whose offer includes it (`docs/design/0009-h265.md`): the
//! real daemon binary against the simulator, a webrtc-rs WHEP client over real
//! sockets on 127.0.0.1.
//!
//! - The Front Door forced to H.265 (`hevc_only`, `stream.h265 = true`) and a viewer
//!   offering H.265 (Chrome's formats, after its H.264 ones): 201, the answer names
//!   H265, the RTP depacketizes (ring-bridge's RFC 7798 depacketizer) into complete
//!   access units starting with a key frame with VPS/SPS/PPS, and ffmpeg decodes
//!   them without an error at the camera's size. A late joiner starts on a key
//!   frame with VPS/SPS/PPS too.
//! - A viewer offering no H.265 still gets the 409 naming H.265.
//! - An H.264 camera (the Driveway, legacy mode) answers H.264 to the same
//!   H.265-capable offer.
//! - A session is sent one codec: when the camera's next Ring session answers
//!   H.264 instead (renewal after the camera left `hevc_only`), the H.265 session
//!   ends, and the viewer's next offer is answered H.264.

mod common;
mod whep_support;

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use common::{Daemon, Sim, daemon_on, get_json};
use ring_bridge::sim::SimOptions;
use ring_bridge::sim::live::LiveSimOptions;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use whep_support::{ClientOpts, VideoFrame, WhepClient, connect};

const FRONT_DOOR: u64 = 10001;
const SIZE: (u32, u32) = (640, 360);
/// Access units to collect: 2 s at 15 fps, two GOPs.
const FRAMES: usize = 30;

/// H.265 on the Ring leg (forced for the Front Door), no RTSP.
const CONFIG: &str = "[stream]\nlinger = \"2s\"\nh265 = true\n\n[rtsp]\nenabled = false\n";
/// [`CONFIG`] with Ring sessions renewed every 3 s.
const RENEWING: &str = "[stream]\nlinger = \"2s\"\nh265 = true\nsession_cap = \"6s\"\nrenew_before = \"3s\"\n\n[rtsp]\nenabled = false\n";

async fn setup() -> (Sim, tempfile::TempDir, Daemon) {
    setup_with(CONFIG).await
}

async fn setup_with(config: &str) -> (Sim, tempfile::TempDir, Daemon) {
    let sim = Sim::start_with(SimOptions {
        live: LiveSimOptions {
            width: SIZE.0,
            height: SIZE.1,
            fps: 15,
            gop_secs: 1,
            ..LiveSimOptions::default()
        },
        ..SimOptions::default()
    })
    .await;
    let r = sim
        .post(
            &format!("cameras/{FRONT_DOOR}/video"),
            serde_json::json!({"mode": "hevc_only"}),
        )
        .await;
    assert!(r.status().is_success());
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on(&sim, state.path(), config, &[]).await;
    (sim, state, d)
}

fn base(d: &Daemon) -> String {
    format!("http://{}", d.http)
}

fn h265_client() -> ClientOpts {
    ClientOpts {
        offer_h265: true,
        ..ClientOpts::default()
    }
}

/// The video `a=rtpmap` lines of an answer.
fn video_rtpmaps(sdp: &str) -> Vec<&str> {
    sdp.lines()
        .skip_while(|l| !l.starts_with("m=video"))
        .skip(1)
        .take_while(|l| !l.starts_with("m="))
        .filter(|l| l.starts_with("a=rtpmap:"))
        .collect()
}

/// The first `n` access units once connected (Ring call set-up included).
async fn frames(c: &mut WhepClient, n: usize) -> Vec<VideoFrame> {
    c.wait_connected(Duration::from_secs(20)).await;
    let mut out = vec![c.next_frame(Duration::from_secs(30)).await];
    while out.len() < n {
        out.push(c.next_frame(Duration::from_secs(10)).await);
    }
    out
}

/// Runs `cmd before… file after…`; its stdout and stderr, or a panic with stderr.
fn run(cmd: &str, before: &[&str], file: &Path, after: &[&str]) -> (String, String) {
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(cmd)
            .args(before)
            .arg(file)
            .args(after)
            .output()
            .expect("ffmpeg/ffprobe runs")
    });
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert!(out.status.success(), "{cmd} failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn h265_offer_gets_h265_that_decodes_and_h264_offers_get_the_409() {
    let (_sim, _state, d) = setup().await;

    let mut c = connect(&base(&d), "front-door", h265_client()).await;
    let maps = video_rtpmaps(&c.answer);
    assert_eq!(maps.len(), 1, "one video format: {}", c.answer);
    assert!(maps[0].ends_with(" H265/90000"), "{}", c.answer);
    let fmtp = c
        .answer
        .lines()
        .find_map(|l| l.strip_prefix("a=fmtp:49 "))
        .unwrap_or_default();
    let params: Vec<&str> = fmtp.split(';').collect();
    assert!(
        params.contains(&"profile-id=1")
            && params.contains(&"tier-flag=0")
            && params.iter().any(|p| p.starts_with("level-id=")),
        "the Main format, its level the stream's: {}",
        c.answer
    );

    let got = frames(&mut c, FRAMES).await;
    assert!(got.iter().all(|f| f.h265 && f.pt == 49));
    assert!(
        got[0].is_keyframe() && got[0].has_parameter_sets(),
        "starts on a key frame with VPS/SPS/PPS: {:?}",
        got[0].nal_types
    );
    assert!(
        got.iter()
            .filter(|f| f.is_keyframe())
            .all(VideoFrame::has_parameter_sets),
        "parameter sets before every key frame"
    );
    assert!(got.iter().skip(1).any(|f| !f.is_keyframe()));

    // A real decoder takes every access unit, without a single error.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for f in &got {
        file.write_all(&f.data).unwrap();
    }
    file.flush().unwrap();
    let (_, errors) = run(
        "ffmpeg",
        &["-v", "error", "-f", "hevc", "-i"],
        file.path(),
        &["-f", "null", "-"],
    );
    assert!(errors.is_empty(), "decode errors: {errors}");
    let (probe, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-f",
            "hevc",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "compact",
        ],
        file.path(),
        &[],
    );
    assert!(
        probe.contains(&format!(
            "codec_name=hevc|width={}|height={}|nb_read_frames={FRAMES}",
            SIZE.0, SIZE.1
        )),
        "{probe}"
    );

    // A late joiner starts on a key frame with its parameter sets too.
    let mut late = connect(&base(&d), "front-door", h265_client()).await;
    let first = frames(&mut late, 1).await.remove(0);
    assert!(
        first.h265 && first.is_keyframe() && first.has_parameter_sets(),
        "late joiner: {:?}",
        first.nal_types
    );
    assert_eq!(late.delete().await, 200);
    late.close().await;

    // The stream's codec is visible per camera in REST.
    let (_, live) = get_json(&d.url("/api/ring/cameras/front-door/live")).await;
    assert_eq!(live["video_codec"], "h265", "{live}");
    assert_eq!(live["stats"]["codec"], "h265", "{live}");
    assert!(
        live["stats"]["codec_string"]
            .as_str()
            .is_some_and(|s| s.starts_with("hvc1.1.")),
        "{live}"
    );

    // A viewer that cannot take H.265 (Debian's Chromium, aiortc) gets the 409.
    whep_support::assert_h265_refused(&base(&d), "front-door").await;
    assert_eq!(c.delete().await, 200);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn h264_camera_answers_h264_to_an_h265_capable_offer() {
    let (_sim, _state, d) = setup().await;
    let mut c = connect(&base(&d), "driveway", h265_client()).await;
    let maps = video_rtpmaps(&c.answer);
    assert_eq!(maps.len(), 1, "one video format: {}", c.answer);
    assert!(maps[0].ends_with(" H264/90000"), "{}", c.answer);
    let got = frames(&mut c, 3).await;
    assert!(got.iter().all(|f| !f.h265));
    assert!(
        got[0].is_keyframe() && got[0].has_parameter_sets(),
        "{:?}",
        got[0].nal_types
    );
    let (_, live) = get_json(&d.url("/api/ring/cameras/driveway/live")).await;
    assert_eq!(live["stats"]["codec"], "h264", "{live}");
    assert_eq!(c.delete().await, 200);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_h265_session_ends_when_the_stream_turns_h264() {
    // Ring sessions renewed every 3 s, so the camera's next session comes soon.
    let (sim, _state, d) = setup_with(RENEWING).await;
    let mut c = connect(&base(&d), "front-door", h265_client()).await;
    assert!(frames(&mut c, 1).await[0].h265);
    // The camera leaves HEVC mode: its next session (the renewal) is H.264.
    let r = sim
        .post(
            &format!("cameras/{FRONT_DOOR}/video"),
            serde_json::json!({"mode": "legacy"}),
        )
        .await;
    assert!(r.status().is_success());
    assert!(
        d.wait_log("the camera's stream changed codec", Duration::from_secs(30)),
        "{}",
        d.log_text()
    );
    tokio::time::timeout(
        Duration::from_secs(10),
        c.state.wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Closed
                    | RTCPeerConnectionState::Failed
                    | RTCPeerConnectionState::Disconnected
            )
        }),
    )
    .await
    .expect("the viewer sees the session end")
    .expect("state channel open");
    assert_eq!(c.delete().await, 404, "the session is gone");
    c.close().await;

    // The viewer reconnects and gets H.264 from the same offer.
    let mut again = connect(&base(&d), "front-door", h265_client()).await;
    let maps = video_rtpmaps(&again.answer);
    assert!(maps[0].ends_with(" H264/90000"), "{}", again.answer);
    assert!(!frames(&mut again, 1).await[0].h265);
    assert_eq!(again.delete().await, 200);
    again.close().await;
}
