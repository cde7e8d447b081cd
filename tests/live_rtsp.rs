//! Live view end to end: the real daemon binary calls the simulated Ring camera
//! over WebRTC and serves it over RTSP to Retina and ffprobe.

mod common;

use std::time::{Duration, Instant};

use common::rtsp::{next_video, rtsp_url, spawn_client, wait_rtsp_ready};
use common::{Daemon, Sim, base_env, get_json};

/// The daemon against `sim`, with a config file for stream timing.
fn daemon(sim: &Sim, state: &std::path::Path, stream_toml: &str) -> Daemon {
    let cfg = state.join("ring-bridge.toml");
    std::fs::write(&cfg, format!("[stream]\n{stream_toml}\n")).unwrap();
    let mut env = base_env(state);
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    let d = Daemon::spawn(&env);
    wait_rtsp_ready(&d);
    d
}

async fn live_sessions(sim: &Sim) -> (u64, u64) {
    let s = sim.state().await;
    (
        s["live_sessions_active"].as_u64().unwrap(),
        s["live_sessions_total"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rtsp_clients_share_one_ring_session_and_it_ends_after_linger() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = tokio::task::block_in_place(|| daemon(&sim, state.path(), "linger = \"2s\""));
    let url = rtsp_url(&d, "front-door");

    // First client: SDP with H.264 1920x1080 and Opus; >= 2 GOPs in order.
    let (described, mut a) = spawn_client(url.clone()).await;
    assert_eq!(
        described.media,
        vec![
            ("video".into(), "h264".into()),
            ("audio".into(), "opus".into())
        ]
    );
    assert_eq!(described.video_size, Some((1920, 1080)));
    let first = next_video(&mut a).await;
    assert!(first.keyframe, "first frame is a key frame");
    let (mut keyframes, mut last) = (1, first.ts);
    while keyframes < 3 {
        let f = next_video(&mut a).await;
        assert!(f.ts > last, "timestamps increase: {last} then {}", f.ts);
        last = f.ts;
        keyframes += usize::from(f.keyframe);
    }

    // A second client and a late joiner: still one Ring session.
    let (_, mut b) = spawn_client(url.clone()).await;
    next_video(&mut b).await;
    let (_, mut late) = spawn_client(url.clone()).await;
    let f = next_video(&mut late).await;
    assert!(f.keyframe, "late joiner starts on a key frame");
    assert_eq!(
        live_sessions(&sim).await,
        (1, 1),
        "exactly one live session"
    );
    let (_, live) = get_json(&d.url("/api/ring/cameras/front-door/live")).await;
    assert_eq!(live["status"], "active", "{live}");
    // Shared media (the default): one pipeline, one lease for all three clients.
    assert!(live["viewers"].as_u64().unwrap() >= 1, "{live}");

    // ffprobe (a second RTSP implementation) sees the same stream.
    let probe = tokio::task::block_in_place(|| {
        std::process::Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-show_entries"])
            .args(["stream=codec_name,width,height", "-of", "compact"])
            .arg(url.as_str())
            .output()
            .expect("ffprobe runs")
    });
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(
        text.contains("codec_name=h264|width=1920|height=1080"),
        "{text}"
    );
    assert!(text.contains("codec_name=opus"), "{text}");

    // A real decoder decodes 4 s of it without a single error.
    let decode = tokio::task::block_in_place(|| {
        std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "warning",
                "-rtsp_transport",
                "tcp",
                "-i",
                url.as_str(),
            ])
            .args(["-t", "4", "-f", "null", "-"])
            .output()
            .expect("ffmpeg runs")
    });
    let warnings = String::from_utf8_lossy(&decode.stderr);
    assert!(
        decode.status.success() && warnings.trim().is_empty(),
        "{warnings}"
    );

    // Everyone leaves: the Ring session ends within linger + 2 s.
    drop((a, b, late));
    let left = Instant::now();
    let ended = common::wait_for(Duration::from_secs(15), || async {
        (live_sessions(&sim).await.0 == 0).then_some(())
    })
    .await;
    assert!(ended.is_some(), "session never ended:\n{}", d.log_text());
    assert!(
        left.elapsed() < Duration::from_secs(2 + 2 + 2),
        "took {:?}",
        left.elapsed()
    );
    assert_eq!(
        live_sessions(&sim).await.1,
        1,
        "no extra sessions were opened"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_start_endpoint_and_unknown_camera() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = tokio::task::block_in_place(|| daemon(&sim, state.path(), "linger = \"1s\""));
    let client = reqwest::Client::new();
    let r = client
        .post(d.url("/api/ring/cameras/10004/live/start"))
        .json(&serde_json::json!({"duration_s": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["rtsp_url"].as_str().unwrap().ends_with("/living-room"),
        "{body}"
    );
    let active = common::wait_for(Duration::from_secs(30), || async {
        let (_, b) = get_json(&d.url("/api/ring/cameras/10004/live")).await;
        (b["status"] == "active").then_some(())
    })
    .await;
    assert!(active.is_some(), "{}", d.log_text());
    assert_eq!(live_sessions(&sim).await.0, 1);

    // Offline camera: clear 409; bad duration: 400; unknown: 404.
    let r = client
        .post(d.url("/api/ring/cameras/10005/live/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let r = client
        .post(d.url("/api/ring/cameras/10004/live/start"))
        .body("{\"duration_s\": 0}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = client
        .post(d.url("/api/ring/cameras/4242/live/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Stop all: the session ends after the linger.
    let r = client.post(d.url("/api/ingest/stop")).send().await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["stopped"], serde_json::json!(["10004"]));
    let ended = common::wait_for(Duration::from_secs(10), || async {
        (live_sessions(&sim).await.0 == 0).then_some(())
    })
    .await;
    assert!(ended.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn seamless_renewal_and_signalling_drop_recovery() {
    let sim = Sim::start_with(ring_bridge::sim::SimOptions {
        session_cap: Duration::from_secs(20),
        ..Default::default()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let d = tokio::task::block_in_place(|| {
        daemon(
            &sim,
            state.path(),
            "linger = \"2s\"\nsession_cap = \"20s\"\nrenew_before = \"8s\"",
        )
    });
    let (_, mut rx) = spawn_client(rtsp_url(&d, "driveway")).await;
    let first = next_video(&mut rx).await;
    assert!(first.keyframe);

    // Read for 60 s across at least two Ring session caps.
    let frame_interval = Duration::from_millis(1000 / 15);
    let (mut last_ts, mut last_at) = (first.ts, first.at);
    let (mut max_gap, mut max_ts_gap, mut frames) = (Duration::ZERO, 0i64, 1u32);
    let started = Instant::now();
    let mut gap_at = Duration::ZERO;
    let end = started + Duration::from_secs(60);
    while Instant::now() < end {
        let f = next_video(&mut rx).await;
        assert!(
            f.ts > last_ts,
            "frames never go backwards: {last_ts} then {}",
            f.ts
        );
        if f.at - last_at > max_gap {
            max_gap = f.at - last_at;
            gap_at = f.at - started;
        }
        max_ts_gap = max_ts_gap.max(f.ts - last_ts);
        (last_ts, last_at) = (f.ts, f.at);
        frames += 1;
    }
    let (_, total) = live_sessions(&sim).await;
    assert!(total >= 3, "sessions were renewed: {total}");
    // No frame is missing across renewals: the media timeline never jumps by
    // more than three frame intervals (90 kHz units)...
    assert!(
        max_ts_gap <= 3 * 90_000 / 15,
        "timestamp gap {max_ts_gap} over {frames} frames ({total} sessions)"
    );
    // ...and frames keep arriving: no stall longer than three frame intervals
    // (plus scheduling noise of a loaded 2-core machine).
    assert!(
        max_gap <= frame_interval * 3 + Duration::from_millis(300),
        "largest gap {max_gap:?} at {gap_at:?} over {frames} frames ({total} sessions)"
    );
    assert!(frames >= 15 * 55, "about 15 fps: {frames}");

    // A dropped signalling connection recovers by itself.
    sim.post("live/drop_signalling", serde_json::json!({}))
        .await;
    let t0 = Instant::now();
    let mut after = 0;
    while after < 30 {
        let f = tokio::time::timeout(Duration::from_secs(30), next_video(&mut rx))
            .await
            .expect("frames resume after a signalling drop");
        assert!(f.ts > last_ts, "frames never go backwards after recovery");
        last_ts = f.ts;
        if t0.elapsed() > Duration::from_secs(1) {
            after += 1;
        }
    }
    let (active, _) = live_sessions(&sim).await;
    assert_eq!(active, 1, "{}", d.log_text());
}

/// Ring's cap is not a constant: with the simulator ending sessions every 8 s
/// and ring-bridge at its default `stream.session_cap` (600 s), the first early
/// end costs one timestamp gap; from then on the learned cap is renewed ahead
/// of, with no gap, and it is reported in `/live` and kept in the state dir.
#[tokio::test(flavor = "multi_thread")]
async fn learned_session_cap_renews_without_gaps_after_the_first() {
    let sim = Sim::start_with(ring_bridge::sim::SimOptions {
        session_cap: Duration::from_secs(8),
        ..Default::default()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let d = tokio::task::block_in_place(|| daemon(&sim, state.path(), "linger = \"2s\""));
    let (_, mut rx) = spawn_client(rtsp_url(&d, "driveway")).await;
    let first = next_video(&mut rx).await;
    let started = Instant::now();
    let mut last_ts = first.ts;
    let mut gaps = Vec::new();
    // Four simulator caps.
    while started.elapsed() < Duration::from_secs(34) {
        let f = next_video(&mut rx).await;
        assert!(f.ts > last_ts, "frames never go backwards");
        if f.ts - last_ts > 90_000 / 5 {
            gaps.push((started.elapsed(), f.ts - last_ts));
        }
        last_ts = f.ts;
    }
    assert!(
        gaps.len() <= 1 && gaps.iter().all(|(at, _)| *at < Duration::from_secs(12)),
        "at most one gap over 200 ms, at the first cap: {gaps:?}\n{}",
        d.log_text()
    );
    let (_, total) = live_sessions(&sim).await;
    assert!(total >= 5, "sessions were renewed: {total}");
    assert!(
        d.log_text().contains("renewing ahead of the learned cap"),
        "{}",
        d.log_text()
    );
    let (st, live) = get_json(&d.url("/api/ring/cameras/10003/live")).await;
    assert_eq!(st, 200, "{live}");
    let cap = live["learned_session_cap_s"].as_f64().expect("learned cap");
    assert!((7.0..10.0).contains(&cap), "{live}");
    let saved = std::fs::read_to_string(state.path().join("session_caps.json")).unwrap();
    assert!(saved.contains("\"10003\""), "{saved}");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_own_mp4_becomes_a_live_camera() {
    // A 320x240 H.264 MP4 made here; the simulator turns it into camera 10101.
    let media = tempfile::tempdir().unwrap();
    let file = media.path().join("garden_cam.mp4");
    let status = std::process::Command::new("gst-launch-1.0")
        .args(
            "-q videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=15/1 \
             ! x264enc key-int-max=15 ! h264parse ! mp4mux ! filesink"
                .split_whitespace(),
        )
        .arg(format!("location={}", file.display()))
        .status()
        .expect("gst-launch runs");
    assert!(status.success());
    let sim = Sim::start_with(ring_bridge::sim::SimOptions {
        media_dir: Some(media.path().to_owned()),
        ..Default::default()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let d = tokio::task::block_in_place(|| daemon(&sim, state.path(), "linger = \"1s\""));
    let (described, mut rx) = spawn_client(rtsp_url(&d, "a4c1380f0065")).await;
    assert_eq!(
        described.video_size,
        Some((320, 240)),
        "the file's video, untranscoded"
    );
    let first = next_video(&mut rx).await;
    assert!(first.keyframe);
    for _ in 0..40 {
        next_video(&mut rx).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_camera_that_sends_no_audio_still_streams_over_rtsp() {
    // Audio negotiated (Opus) but never sent, as with a camera whose audio is
    // switched off: the media must not wait for audio to describe and play.
    let mut opts = ring_bridge::sim::SimOptions::default();
    opts.live.audio_per_send = 0;
    let sim = Sim::start_with(opts).await;
    let state = tempfile::tempdir().unwrap();
    let d = tokio::task::block_in_place(|| daemon(&sim, state.path(), "linger = \"1s\""));
    let (described, mut rx) = spawn_client(rtsp_url(&d, "front-door")).await;
    assert_eq!(
        described.media,
        vec![
            ("video".into(), "h264".into()),
            ("audio".into(), "opus".into())
        ]
    );
    let first = next_video(&mut rx).await;
    assert!(first.keyframe, "first frame is a key frame");
    for _ in 0..20 {
        next_video(&mut rx).await;
    }
}
