//! Smoke test of `ring-bridge bench` so the harness cannot rot: 1 camera,
//! 1 RTSP + 1 WebRTC viewer (RTSP only while the daemon has no WHEP endpoint),
//! a 2 s window, one cold/warm round, no ffmpeg baseline. Checks the report's
//! shape and that the SEI stamps made it through, not performance figures.

use std::process::Command;

#[test]
fn bench_runs_and_writes_a_report() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_ring-bridge"))
        .args(["bench", "--cameras", "1", "--rtsp", "1", "--webrtc", "1"])
        .args(["--duration", "2s", "--warmup", "1s", "--ttff-rounds", "1"])
        .args(["--no-baseline", "--quiet-wait", "0s"])
        .arg("--out")
        .arg(out.path())
        .env("RINGBRIDGE_LOG", "warn")
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("## Targets"), "{stdout}");
    assert!(out.path().join("bench.md").is_file());

    let json = std::fs::read_to_string(out.path().join("bench.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
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
    assert_eq!(main["ttff"]["cold"]["samples"], 1, "{}", main["ttff"]);
    assert!(main["ttff"]["warm"]["samples"].as_u64().unwrap() >= 1);
    assert!(main["daemon"]["cpu_cores"].as_f64().unwrap() > 0.0);
    assert!(main["daemon"]["rss_peak_mib"].as_f64().unwrap() > 1.0);
    assert!(main["daemon"]["rss_steady_mib"].as_f64().unwrap() > 1.0);
    assert!(main["frames"]["lost"].is_u64() && main["frames"]["late"].is_u64());
    let viewers = main["per_viewer"].as_array().unwrap();
    if main["webrtc_per_camera"] == 0 {
        let notes = main["notes"].to_string();
        assert!(notes.contains("WHEP unavailable"), "{notes}");
        assert_eq!(viewers.len(), 1);
    } else {
        assert_eq!(viewers.len(), 2);
    }
    assert_eq!(r["targets"].as_array().unwrap().len(), 7);
    assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
}
