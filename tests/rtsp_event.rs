//! Recorded-event replay over RTSP, end to end: the real daemon against the
//! simulator, ffprobe/ffmpeg as players. The simulator's recordings are real
//! H.264 + AAC MP4s; events triggered here ask for clips of different lengths so
//! the frame count tells which clip played.

mod browser;
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Sim, daemon_on, get_json};
use serde_json::{Value, json};

const FPS: u64 = 15;

/// `rtsp://127.0.0.1:PORT` of the daemon, from its log.
fn rtsp_base(d: &Daemon) -> String {
    assert!(
        d.wait_log("rtsp_addr=", Duration::from_secs(40)),
        "{}",
        d.log_text()
    );
    let log = d.log_text();
    let i = log.find("rtsp_addr=").unwrap() + "rtsp_addr=".len();
    let addr: String = log[i..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ',')
        .collect();
    format!("rtsp://{addr}")
}

/// Runs `cmd` to its end, killing it after `limit`; (exit ok, stdout, stderr, elapsed).
fn run(mut cmd: Command, limit: Duration) -> (bool, String, String, Duration) {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn player");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(out)) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            start.elapsed(),
        ),
        _ => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("player did not finish within {limit:?}: the stream did not end");
        }
    }
}

/// ffprobe decodes every frame of `url` until the stream ends: per stream
/// `(codec_type, codec_name, frames)`, and how long it took.
fn probe_all(url: &str) -> (Vec<(String, String, u64)>, Duration) {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-rtsp_transport",
        "tcp",
        "-count_frames",
        "-show_entries",
        "stream=codec_type,codec_name,nb_read_frames",
        "-of",
        "json",
        url,
    ]);
    let (ok, out, err, took) = run(cmd, Duration::from_secs(60));
    assert!(ok, "ffprobe {url} failed: {err}");
    let v: Value = serde_json::from_str(&out).expect("ffprobe JSON");
    let streams = v["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_owned(),
                s["codec_name"].as_str().unwrap_or("").to_owned(),
                s["nb_read_frames"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            )
        })
        .collect();
    (streams, took)
}

fn video_frames(streams: &[(String, String, u64)]) -> u64 {
    let v = streams
        .iter()
        .find(|s| s.0 == "video")
        .expect("a video stream");
    assert_eq!(v.1, "h264", "{streams:?}");
    v.2
}

async fn put_select(d: &Daemon, camera: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(d.url(&format!("/api/ring/cameras/{camera}/event-stream")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn trigger(sim: &Sim, camera: u64, body: Value) -> String {
    let r = sim.post(&format!("cameras/{camera}/motion"), body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["ding_id_str"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_plays_the_selected_clip_to_its_end_or_loops() {
    let sim = Sim::start().await;
    // Motion 2: 3 s; Motion 1 (the newest event): 2 s.
    let older = trigger(&sim, 10001, json!({"clip_seconds": 3})).await;
    let newest = trigger(&sim, 10001, json!({"clip_seconds": 2})).await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on(&sim, state.path(), "", &[]).await;
    let base = rtsp_base(&d);

    // The default selection is the newest recorded event; REST says so.
    let (st, v) = get_json(&d.url("/api/ring/cameras/front-door/event-stream")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["select"], "Latest");
    assert_eq!(v["event_id"], newest.as_str());
    assert!(
        v["rtsp_url"]
            .as_str()
            .unwrap()
            .ends_with("/front-door/event"),
        "{v}"
    );

    // The whole 2 s clip, H.264 and AAC, at real-time pace, then the end.
    let (streams, took) = probe_all(&format!("{base}/front-door/event"));
    let frames = video_frames(&streams);
    assert!((2 * FPS - 2..=2 * FPS).contains(&frames), "{streams:?}");
    assert!(
        streams
            .iter()
            .any(|s| s.0 == "audio" && s.1 == "aac" && s.2 > 0),
        "{streams:?}"
    );
    assert!(took >= Duration::from_millis(1500), "not paced: {took:?}");

    // `Motion 2` switches the clip (the 3 s one), on the device-id alias too.
    let (st, v) = put_select(&d, "front-door", json!({"select": "Motion 2"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["event_id"], older.as_str());
    assert_eq!(v["select"], "Motion 2");
    let (streams, _) = probe_all(&format!("{base}/a4c1380f0001_event"));
    let frames = video_frames(&streams);
    assert!((3 * FPS - 2..=3 * FPS).contains(&frames), "{streams:?}");

    // With `?loop=1` it keeps going past the clip's end, timestamps increasing.
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostats",
        "-v",
        "warning",
        "-rtsp_transport",
        "tcp",
        "-i",
        &format!("{base}/front-door/event?loop=1"),
        "-map",
        "0:v",
        "-t",
        "5",
        "-f",
        "framemd5",
        "-",
    ]);
    let (ok, out, err, _) = run(cmd, Duration::from_secs(40));
    assert!(ok, "ffmpeg failed: {err}");
    let looped = out.lines().filter(|l| !l.starts_with('#')).count() as u64;
    assert!(
        looped > 3 * FPS + FPS,
        "{looped} frames in 5 s of a looping 3 s clip"
    );
    assert!(
        !err.contains("onmonoton"),
        "timestamps went backwards: {err}"
    );

    // Bad selections are refused with the reason; the selection stays.
    let (st, v) = put_select(&d, "front-door", json!({"select": "Motion 9"})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = put_select(&d, "front-door", json!({"event_id": "12"})).await;
    assert_eq!(st, 404, "{v}");
    let (_, v) = get_json(&d.url("/api/ring/cameras/front-door/event-stream")).await;
    assert_eq!(v["select"], "Motion 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_path_without_recordings_and_a_clear_error_when_not_ready() {
    let sim = Sim::start().await;
    // Back Door's newest event is still being processed by Ring.
    trigger(&sim, 10002, json!({"ready_after_ms": 600_000})).await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on(&sim, state.path(), "", &[]).await;
    let base = rtsp_base(&d);

    // Living Room has no Ring Protect: no event path at all.
    let (st, v) = get_json(&d.url("/api/ring/cameras/living-room/event-stream")).await;
    assert_eq!(st, 404, "{v}");
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-rtsp_transport", "tcp"])
        .arg(format!("{base}/living-room/event"));
    let (ok, _, err, _) = run(cmd, Duration::from_secs(20));
    assert!(!ok && err.contains("404"), "{err}");

    // A recording that is not ready fails DESCRIBE at once, with a log line.
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-rtsp_transport", "tcp"])
        .arg(format!("{base}/back-door/event"));
    let (ok, _, err, took) = run(cmd, Duration::from_secs(20));
    assert!(!ok, "{err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        d.wait_log("event stream refused", Duration::from_secs(5)),
        "{}",
        d.log_text()
    );
    assert!(d.log_text().contains("pending"), "{}", d.log_text());
}

/// The console's History "Play over RTSP" (Chromium): the URL it shows plays
/// the clicked recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_history_plays_an_event_over_rtsp() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on(&sim, state.path(), "", &[]).await;
    let details = tokio::task::block_in_place(|| {
        browser::run_scenario("history_rtsp", &d.url("/"), &sim.url())
    });
    let url = details["rtsp_url"].as_str().expect("rtsp_url").to_owned();
    let event_id = details["event_id"].as_str().expect("event_id").to_owned();
    let (_, v) = get_json(&d.url("/api/ring/cameras/front-door/event-stream")).await;
    assert_eq!(v["event_id"], event_id.as_str(), "{v}");
    assert_eq!(v["select"], Value::Null, "chosen by id: no option label");
    // The seeded clips are 4 s long.
    let (streams, _) = tokio::task::block_in_place(|| probe_all(&url));
    let frames = video_frames(&streams);
    assert!((4 * FPS - 2..=4 * FPS).contains(&frames), "{streams:?}");
}
