//! Live stream statistics end to end: the real daemon binary against the
//! simulator (15 fps H.264) and a real mosquitto, with a Retina RTSP viewer and
//! a WHEP viewer playing. The REST `stats` object moves (bitrate > 0, fps ≈ 15,
//! both viewer kinds counted with their own bitrate), `/metrics` carries the
//! per-camera series, and the MQTT `stream` attributes get `stats` at the
//! configured interval and no more often.

mod common;
mod common_mqtt;
mod whep_support;

use std::time::{Duration, Instant};

use common::{Daemon, Sim, base_env, get_json, wait_for};
use common_mqtt::{Mosquitto, Subscriber};
use whep_support::{ClientOpts, connect};

const HOME: &str = "5d1a2f3e-0001-4c6b-9a51-000000000001";
const FRONT_DOOR: u64 = 10001;

fn viewer_bitrate(stats: &serde_json::Value, kind: &str) -> f64 {
    stats["viewer_streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["kind"] == kind)
        .filter_map(|v| v["bitrate_bps"].as_f64())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_move_in_rest_metrics_and_mqtt_while_viewers_play() {
    let broker = tokio::task::block_in_place(Mosquitto::start);
    let attrs_topic = format!("ring/{HOME}/camera/a4c1380f0001/stream/attributes");
    let sub = Subscriber::connect(broker.port, &[attrs_topic.as_str()]).await;
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("ring-bridge.toml");
    std::fs::write(
        &cfg,
        "[stream]\nlinger = \"1s\"\n[mqtt]\nsnapshot_interval_wired = \"0s\"\nstream_stats_interval = \"2s\"\n",
    )
    .unwrap();
    let mut env = base_env(state.path());
    env.retain(|(k, _)| k != "MQTT_ENABLED");
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    env.push(("MQTT_URL".into(), broker.url()));
    let d: Daemon = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let base = format!("http://{}", d.http);
    let cams = wait_for(Duration::from_secs(30), || async {
        let (st, v) = get_json(&d.url("/api/ring/cameras")).await;
        (st == 200).then_some(v)
    })
    .await
    .unwrap_or_else(|| panic!("camera list: {}", d.log_text()));
    let rtsp: url::Url = cams
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == FRONT_DOOR)
        .and_then(|c| c["rtsp_url"].as_str())
        .expect("front door has an RTSP URL")
        .parse()
        .unwrap();
    // RTSP paths follow the camera list a moment after REST has it.
    let mounted = tokio::task::block_in_place(|| {
        d.wait_log("RTSP paths mounted camera=10001", Duration::from_secs(20))
    });
    assert!(mounted, "{}", d.log_text());
    let live = d.url(&format!("/api/ring/cameras/{FRONT_DOOR}/live"));

    // Before any viewer: the object is there, not streaming, nothing moving.
    let (st, idle) = get_json(&live).await;
    assert_eq!(st, 200);
    assert_eq!(idle["stats"]["streaming"], false, "{idle}");
    assert_eq!(idle["stats"]["fps"], 0.0, "{idle}");

    // One RTSP viewer (Retina) and one WHEP viewer.
    let (_, mut rtsp_rx) = common::rtsp::spawn_client(rtsp).await;
    common::rtsp::next_video(&mut rtsp_rx).await;
    let mut whep = connect(&base, &FRONT_DOOR.to_string(), ClientOpts::default()).await;
    whep.wait_connected(Duration::from_secs(20)).await;
    whep.next_frame(Duration::from_secs(20)).await;
    // Keep both viewers reading while the test polls; `stop` ends the readers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut stopped_rtsp = stopped.clone();
    let rtsp_reader = tokio::spawn(async move {
        loop {
            tokio::select! {
                s = rtsp_rx.recv() => if s.is_none() { break },
                _ = stopped_rtsp.changed() => break,
            }
        }
    });
    let mut stopped_whep = stopped;
    let whep_reader = tokio::spawn(async move {
        loop {
            tokio::select! {
                f = whep.frames.recv() => if f.is_none() { break },
                _ = stopped_whep.changed() => break,
            }
        }
        whep
    });

    // The REST stats settle on the simulator's 15 fps with both viewers counted.
    let last = std::sync::Mutex::new(serde_json::Value::Null);
    let stats = wait_for(Duration::from_secs(20), || async {
        let (_, v) = get_json(&live).await;
        let s = v["stats"].clone();
        *last.lock().unwrap() = s.clone();
        let fps = s["fps"].as_f64().unwrap_or(0.0);
        let ok = s["streaming"] == true
            && (12.0..=18.0).contains(&fps)
            && s["bitrate_bps"].as_f64().unwrap_or(0.0) > 0.0
            && s["viewers"]["rtsp"].as_u64() >= Some(1)
            && s["viewers"]["whep"] == 1
            && viewer_bitrate(&s, "rtsp") > 0.0
            && viewer_bitrate(&s, "whep") > 0.0;
        ok.then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("stats never settled: {}", last.lock().unwrap()));
    assert_eq!(stats["codec"], "h264", "{stats}");
    assert_eq!(
        (stats["width"].as_u64(), stats["height"].as_u64()),
        (Some(1920), Some(1080))
    );
    assert!(stats["session_age_s"].as_f64() > Some(0.0), "{stats}");
    assert!(stats["sessions"].as_u64() >= Some(1), "{stats}");
    assert!(stats["packets_received"].as_u64() > Some(0), "{stats}");
    assert!(stats["keyframes"].as_u64() >= Some(1), "{stats}");

    // The counters move between two polls.
    let first = stats["video_frames"].as_u64().unwrap();
    let moved = wait_for(Duration::from_secs(10), || async {
        let (_, v) = get_json(&live).await;
        let s = &v["stats"];
        (s["video_frames"].as_u64().unwrap_or(0) >= first + 15
            && s["keyframe_interval_s"].as_f64() > Some(0.0))
        .then_some(())
    })
    .await;
    assert!(
        moved.is_some(),
        "video_frames stuck at {first} or no key-frame interval"
    );

    // /metrics: per-camera series with bounded labels.
    let text = reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        format!("ringbridge_live_streaming{{camera=\"{FRONT_DOOR}\"}} 1"),
        format!("ringbridge_live_fps{{camera=\"{FRONT_DOOR}\"}} "),
        format!("ringbridge_live_video_bytes_total{{camera=\"{FRONT_DOOR}\"}} "),
        format!("ringbridge_live_viewers{{camera=\"{FRONT_DOOR}\",kind=\"whep\"}} 1"),
        format!("ringbridge_live_viewer_bitrate_bps{{camera=\"{FRONT_DOOR}\",kind=\"rtsp\"}} "),
        "# TYPE ringbridge_live_plis_sent_total counter".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} missing in:\n{text}");
    }
    let bitrate_line = text
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "ringbridge_live_bitrate_bps{{camera=\"{FRONT_DOOR}\"}}"
            ))
        })
        .expect("bitrate series");
    let v: f64 = bitrate_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(v > 0.0, "{bitrate_line}");

    // MQTT: `stats` in the stream attributes, refreshed every 2 s, not more often.
    // Only messages from now on, so arrival times are publication times.
    sub.clear();
    let mut seen: Vec<(Instant, serde_json::Value)> = Vec::new();
    while seen.len() < 3 {
        let prev = seen.last().map(|(_, s)| s.clone());
        let next = sub
            .wait_for("a new stats attribute", Duration::from_secs(10), |msgs| {
                msgs.iter()
                    .rev()
                    .find(|m| m.topic == attrs_topic)
                    .map(|m| m.json()["stats"].clone())
                    .filter(|s| s.is_object() && Some(s) != prev.as_ref())
            })
            .await;
        seen.push((Instant::now(), next));
    }
    for pair in seen.windows(2) {
        let (a, b) = (&pair[0].1, &pair[1].1);
        let age = |s: &serde_json::Value| s["session_age_s"].as_f64().unwrap();
        let gap = age(b) - age(a);
        assert!(
            (1.8..=3.5).contains(&gap),
            "stats 2 s apart by the daemon's clock, got {gap}: {a} then {b}"
        );
        assert!(
            pair[1].0 - pair[0].0 >= Duration::from_millis(1500),
            "stats arrived too often"
        );
        assert!(b["fps"].as_f64() > Some(0.0), "{b}");
    }

    // Viewers gone: the stream stops and `stats` leaves the attributes.
    let _ = stop.send(true);
    rtsp_reader.await.unwrap();
    let whep = whep_reader.await.unwrap();
    assert_eq!(whep.delete().await, 200, "WHEP session deleted");
    whep.close().await;
    let stopped = sub
        .wait_for("stream stopped", Duration::from_secs(20), |msgs| {
            msgs.iter()
                .rev()
                .find(|m| m.topic == attrs_topic)
                .map(|m| m.json())
                .filter(|a| a["status"] == "inactive")
        })
        .await;
    assert!(stopped.get("stats").is_none(), "{stopped}");
    let (_, idle) = get_json(&live).await;
    assert_eq!(idle["stats"]["streaming"], false, "{idle}");
    assert_eq!(idle["stats"]["bitrate_bps"], 0.0, "{idle}");
    d.terminate();
}
