//! Smoke test of `ring-bridge bench` so the harness cannot rot: 1 camera,
//! 1 RTSP + 1 WebRTC (WHEP) viewer, a 2 s window, two cold/warm rounds (one cold
//! join of each kind) and the ffmpeg baseline. Checks the report's shape, that both
//! viewers got stamped frames and that the SEI stamps made it through, not
//! performance figures.

use std::process::Command;

/// Runs `ring-bridge bench` with `args` (space-separated; plus `--out` and a quiet log) and
/// checks it succeeded; returns its stdout and the parsed bench.json.
fn bench(args: &str) -> (String, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_ring-bridge"))
        .arg("bench")
        .args(args.split_whitespace())
        .arg("--out")
        .arg(out.path())
        .env("RINGBRIDGE_LOG", "warn")
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.path().join("bench.md").is_file());
    let json = std::fs::read_to_string(out.path().join("bench.json")).unwrap();
    (stdout, serde_json::from_str(&json).unwrap())
}

#[test]
fn bench_runs_and_writes_a_report() {
    let (stdout, r) = bench(
        "--cameras 1 --rtsp 1 --webrtc 1 --duration 2s --warmup 1s --ttff-rounds 2 --quiet-wait 0s --idle 1s --ratio-rounds 2",
    );
    assert!(stdout.contains("## Targets"), "{stdout}");
    let main = &r["main"];
    assert_eq!(main["cameras"], 1, "{main}");
    let frames = &main["frames"];
    assert!(frames["received"].as_u64().unwrap() >= 15, "{frames}");
    assert!(
        frames["stamp_ratio"].as_f64().unwrap() >= 0.99,
        "SEI stamps pass through untouched: {frames}"
    );
    for key in ["p50", "p99", "max"] {
        assert!(main["latency_ms"][key].as_f64().unwrap() >= 0.0, "{main}");
    }
    let ttff = &main["ttff"];
    for kind in ["cold_rtsp", "cold_webrtc", "warm_rtsp", "warm_webrtc"] {
        assert!(
            ttff[kind]["samples"].as_u64().unwrap() >= 1,
            "{kind}: {ttff}"
        );
    }
    assert!(main["daemon"]["cpu_cores"].as_f64().unwrap() > 0.0);
    assert!(main["daemon"]["rss_peak_mib"].as_f64().unwrap() > 1.0);
    assert!(main["daemon"]["rss_steady_mib"].as_f64().unwrap() > 1.0);
    // Streaming 50 Opus packets and 15 frames a second: the daemon sleeps and
    // wakes far more than once a second.
    assert!(
        main["daemon"]["context_switches_per_s"].as_f64().unwrap() > 10.0,
        "{main}"
    );
    assert!(main["frames"]["lost"].is_u64() && main["frames"]["late"].is_u64());
    // ~145 video packets/s from the simulator: a 2 s window sees well over 50.
    assert!(main["ring_video_packets"].as_u64().unwrap() > 50, "{main}");
    assert!(
        main["cpu_us_per_ring_packet"].as_f64().unwrap() > 0.0,
        "{main}"
    );
    assert_eq!(main["idle"]["seconds"].as_f64(), Some(1.0), "{main}");
    assert!(main["idle"]["cpu_percent_of_one_core"].is_f64(), "{main}");
    assert!(stdout.contains("µs/packet"), "{stdout}");
    assert_eq!(
        main["webrtc_per_camera"], 1,
        "WHEP viewer ran: {}",
        main["notes"]
    );
    let viewers = main["per_viewer"].as_array().unwrap();
    assert_eq!(viewers.len(), 2, "{viewers:?}");
    for kind in ["rtsp", "webrtc"] {
        let v = viewers
            .iter()
            .find(|v| v["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} viewer: {viewers:?}"));
        assert!(v["error"].is_null(), "{kind} viewer failed: {v}");
        assert!(
            v["frames"].as_u64().unwrap() >= 15,
            "{kind} got frames: {v}"
        );
        assert_eq!(v["stamped"], v["frames"], "{kind}: {v}");
        assert!(v["lost"].is_u64() && v["late"].is_u64(), "{v}");
    }
    assert!(main["latency_webrtc_ms"]["samples"].as_u64().unwrap() >= 15);
    assert_eq!(r["targets"].as_array().unwrap().len(), 7);
    // The ffmpeg re-encode baseline ran on the same stream and gives the ratio.
    let base = &main["baseline"];
    assert!(
        base["command"].as_str().unwrap().contains("libx264"),
        "{base}"
    );
    assert!(base["cpu_cores"].as_f64().unwrap() > 0.0, "{base}");
    assert!(base["rtp_packets"].as_u64().unwrap() > 0, "{base}");
    // Two back-to-back pairs of a load window and ffmpeg's window (the second
    // pair measures ffmpeg first); the ratio judged is their median (the mean
    // of the two).
    let rounds = main["ratio_rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{main}");
    let ratios: Vec<f64> = rounds
        .iter()
        .map(|p| {
            let (d, b) = (
                p["daemon_cpu_cores"].as_f64().unwrap(),
                p["baseline_cpu_cores"].as_f64().unwrap(),
            );
            assert!(d > 0.0 && b > 0.0, "{p}");
            p["ratio"].as_f64().unwrap()
        })
        .collect();
    let ratio = main["cpu_ratio_vs_baseline"].as_f64().unwrap();
    assert!(ratio > 0.0, "{main}");
    assert!(
        (ratio - (ratios[0] + ratios[1]) / 2.0).abs() < 0.0015,
        "median of {ratios:?}: {ratio}"
    );
    assert!(stdout.contains("2 pairs:"), "{stdout}");
    // After it, the host's floor: a bare relay of the same traffic, which must
    // have delivered every packet (else `floor` is missing and a note says why).
    let floor = &main["floor"];
    assert!(floor["cpu_cores"].as_f64().unwrap() > 0.0, "{main}");
    assert!(floor["video_packets"].as_u64().unwrap() > 0, "{floor}");
    assert!(main["cpu_ratio_vs_floor"].as_f64().unwrap() > 0.0, "{main}");
    assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
}

/// `--h265`: the camera streams H.265 (simulator `hevc_only`, daemon `stream.h265`)
/// to an RTSP and a WHEP viewer (whose offer has H.265), and every access unit
/// still carries the simulator's stamp (a prefix SEI): passthrough, no
/// transcoding, for H.265 too.
#[test]
fn bench_h265_shows_passthrough() {
    let (_, r) = bench(
        "--h265 --cameras 1 --rtsp 1 --webrtc 1 --duration 2s --warmup 1s --ttff-rounds 1 --quiet-wait 0s --no-baseline --idle 0s",
    );
    let main = &r["main"];
    assert_eq!(main["video_codec"], "h265", "{main}");
    assert_eq!(main["label"], "1cam-1rtsp-1webrtc-h265", "{main}");
    let frames = &main["frames"];
    assert!(frames["received"].as_u64().unwrap() >= 30, "{frames}");
    assert_eq!(
        frames["stamp_ratio"].as_f64().unwrap(),
        1.0,
        "every H.265 access unit arrives with its stamp: {frames}"
    );
    // Both viewers really got H.265 (their SDP), not a transcode.
    let viewers = main["per_viewer"].as_array().unwrap();
    assert_eq!(viewers.len(), 2, "{viewers:?}");
    for v in viewers {
        assert_eq!(v["codec"], "h265", "{viewers:?}");
        assert!(v["frames"].as_u64().unwrap() > 0, "{viewers:?}");
        assert_eq!(v["stamped"], v["frames"], "{viewers:?}");
    }
}

/// `--rtsp 0 --webrtc 0`: no viewer, so the bench holds the camera's session open
/// (`live/start`) and measures the Ring call and the hub alone; the hold ends
/// after the window (the idle phase needs every session gone).
#[test]
fn bench_without_viewers_measures_a_held_session() {
    let (_, r) = bench(
        "--cameras 1 --rtsp 0 --webrtc 0 --duration 2s --warmup 1s --ttff-rounds 0 --quiet-wait 0s --idle 1s --no-baseline",
    );
    let main = &r["main"];
    assert_eq!(main["viewers"], 0, "{main}");
    assert!(main["ring_video_packets"].as_u64().unwrap() > 50, "{main}");
    assert!(
        main["ring_video_bytes"].as_u64().unwrap() > 10_000,
        "{main}"
    );
    assert!(
        main["daemon"]["cpu_cores"].as_f64().unwrap() > 0.0,
        "{main}"
    );
    assert!(
        main["notes"].to_string().contains("held open"),
        "{}",
        main["notes"]
    );
    // The hold ended, so the idle phase ran instead of failing on a live session.
    assert_eq!(main["idle"]["seconds"].as_f64(), Some(1.0), "{main}");
}
