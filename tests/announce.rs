//! Announcements end to end: the daemon binary against the simulator (real Ring
//! live call over WebRTC, real GStreamer, real eSpeak NG). The simulated camera
//! decodes what reaches its speaker (`/_sim/state` `talkback`): a 3 s WAV and a
//! short text are heard for their length (±10 %); a browser holding the talk
//! floor gets announcements refused with 409 naming it; bad files get 415/413;
//! an offline camera cannot talk; the MQTT `announce/command` topic speaks
//! through a real mosquitto.

mod common;
mod common_mqtt;
mod whep_support;

use std::time::Duration;

use common::{Daemon, Sim, base_env, daemon_on, wait_for};
use ring_bridge::codec::clip::{self, Pcm, sine, wav};
use whep_support::{ClientOpts, connect};

const CONFIG: &str = "[stream]\nlinger = \"2s\"\n\n[rtsp]\nenabled = false\n\n\
    [webrtc]\ntalk_floor = \"explicit\"\n";

/// The simulated camera's talkback counters for `camera`.
async fn heard(sim: &Sim, camera: &str) -> serde_json::Value {
    sim.state().await["talkback"][camera].clone()
}

/// Waits until the camera's decoded talkback stops growing (two reads 300 ms
/// apart agree), then returns it. Bounded by 15 s.
async fn settled(sim: &Sim, camera: &str) -> serde_json::Value {
    let end = std::time::Instant::now() + Duration::from_secs(15);
    let mut last = heard(sim, camera).await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = heard(sim, camera).await;
        if t["audio_ms"].as_u64().unwrap_or(0) > 0 && t == last {
            return t;
        }
        assert!(
            std::time::Instant::now() < end,
            "talkback of {camera} never settled: {t}"
        );
        last = t;
    }
}

async fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

fn within(got: u64, want: u64, what: &str) {
    let (lo, hi) = (want * 9 / 10, want * 11 / 10);
    assert!(
        (lo..=hi).contains(&got),
        "{what}: {got} ms, want {want} ms ±10 %"
    );
}

/// The span (ms) from the first 20 ms window at or above -40 dBFS to the end of
/// the last, as the simulated camera measures it.
fn loud_span_ms(pcm: &Pcm) -> u64 {
    let windows: Vec<bool> = pcm
        .samples
        .chunks_exact(960)
        .map(|w| {
            let sq: f64 = w.iter().map(|&s| (f64::from(s) / 32768.0).powi(2)).sum();
            (sq / 960.0).sqrt() >= 0.01
        })
        .collect();
    let first = windows.iter().position(|&l| l).unwrap_or(0);
    let last = windows.iter().rposition(|&l| l).map_or(0, |i| i + 1);
    ((last - first) * 20) as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wav_and_a_text_reach_the_camera_speaker_for_their_length() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on(&sim, state.path(), CONFIG, &[]).await;

    // A 3 s tone as a 16 kHz WAV upload.
    let tone = wav(&sine(Duration::from_secs(3), 440.0, 0.5, 16_000));
    let (st, a) = post(
        &d.url("/api/ring/cameras/front-door/announce"),
        "audio/wav",
        tone,
    )
    .await;
    assert_eq!(st, 200, "{a}\n{}", d.log_text());
    assert_eq!(a["codec"], "opus", "{a}");
    assert_eq!(a["source"], "audio", "{a}");
    assert_eq!(a["camera_id"], 10001, "{a}");
    assert_eq!(a["camera"], "10001", "the hub key stays a string: {a}");
    within(a["clip_ms"].as_u64().unwrap(), 3000, "clip");
    within(a["played_ms"].as_u64().unwrap(), 3000, "played");
    let t = settled(&sim, "10001").await;
    within(t["loud_ms"].as_u64().unwrap(), 3000, "loud at the speaker");
    within(t["loud_span_ms"].as_u64().unwrap(), 3000, "heard span");
    assert!(t["energy"].as_f64().unwrap() > 0.1, "{t}");

    // Speech: the camera hears as long a stretch of sound as eSpeak NG makes
    // of the same text.
    let text = "We'll be right there";
    let reference = tokio::task::block_in_place(|| {
        let out = std::process::Command::new("espeak-ng")
            .args(["--stdout", "-v", "en", "-s", "160", text])
            .output()
            .expect("espeak-ng runs (scripts/setup-deps.sh)");
        clip::decode(
            out.stdout.into(),
            Duration::from_secs(30),
            Duration::from_secs(20),
        )
        .unwrap()
    });
    let want = loud_span_ms(&reference);
    assert!(want > 600, "{want}");
    let (st, a) = post(
        &d.url("/api/ring/cameras/10003/announce"),
        "application/json",
        serde_json::to_vec(&serde_json::json!({"text": text, "lang": "en"})).unwrap(),
    )
    .await;
    assert_eq!(st, 200, "{a}\n{}", d.log_text());
    assert_eq!(a["source"], "text", "{a}");
    within(
        a["clip_ms"].as_u64().unwrap(),
        reference.duration().as_millis() as u64,
        "spoken clip",
    );
    let t = settled(&sim, "10003").await;
    within(t["loud_span_ms"].as_u64().unwrap(), want, "speech heard");
    assert!(t["loud_ms"].as_u64().unwrap() > want / 2, "{t}");
    d.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn floor_conflicts_bad_files_and_cameras_that_cannot_talk() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on(&sim, state.path(), CONFIG, &[]).await;
    let base = format!("http://{}", d.http);
    let url = d.url("/api/ring/cameras/front-door/announce");
    let short = || wav(&sine(Duration::from_millis(400), 440.0, 0.5, 16_000));

    // A browser holds the talk floor: refused at once, naming the session.
    let mut browser = connect(&base, "front-door", ClientOpts::default()).await;
    browser.wait_connected(Duration::from_secs(20)).await;
    browser.next_frame(Duration::from_secs(30)).await;
    assert_eq!(browser.talk(true).await.0, 200);
    let session = browser.location.rsplit('/').next().unwrap().to_owned();
    let (st, body) = post(&url, "audio/wav", short()).await;
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["error"], "failed_precondition", "{body}");
    assert_eq!(body["holder"], session, "{body}");
    assert_eq!(body["by"], "explicit", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(&session),
        "{body}"
    );
    assert!(
        heard(&sim, "10001").await["loud_ms"].as_u64().unwrap_or(0) == 0,
        "nothing was played"
    );

    // Asked to wait: it plays once the browser lets go; meanwhile the browser
    // cannot take the floor back.
    let waiting = tokio::spawn({
        let url = format!("{url}?wait_s=20");
        let body = short();
        async move { post(&url, "audio/wav", body).await }
    });
    assert_eq!(browser.talk(false).await.0, 200);
    let (st, a) = waiting.await.unwrap();
    assert_eq!(st, 200, "{a}");
    let t = settled(&sim, "10001").await;
    assert!(t["loud_ms"].as_u64().unwrap() >= 300, "{t}");
    let (_, talk) = common::get_json(&format!("{base}/api/webrtc/front-door/talk")).await;
    assert_eq!(talk["talking"], false, "released after playing: {talk}");
    browser.close().await;

    // Bad files.
    let (st, body) = post(&url, "video/mp4", vec![0; 1000]).await;
    assert_eq!(st, 415, "{body}");
    assert_eq!(body["error"], "unsupported_media_type", "{body}");
    let (st, body) = post(&url, "audio/wav", b"<html>not a wav</html>".to_vec()).await;
    assert_eq!(st, 415, "{body}");
    let (st, body) = post(&url, "audio/mpeg", vec![0x55; 2 * 1024 * 1024 + 1]).await;
    assert_eq!(st, 413, "{body}");
    assert_eq!(body["error"], "payload_too_large", "{body}");
    let long = wav(&sine(Duration::from_secs(31), 440.0, 0.5, 8_000));
    let (st, body) = post(&url, "audio/wav", long).await;
    assert_eq!(st, 413, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("longer than 30s"),
        "{body}"
    );
    let (st, body) = post(
        &url,
        "application/json",
        br#"{"url":"file:///etc/passwd"}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 400, "{body}");

    // A camera that cannot talk (offline), and one that does not exist.
    let (st, body) = post(
        &d.url("/api/ring/cameras/10005/announce"),
        "audio/wav",
        short(),
    )
    .await;
    assert_eq!(st, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("cannot talk"),
        "{body}"
    );
    let (st, _) = post(
        &d.url("/api/ring/cameras/nope/announce"),
        "audio/wav",
        short(),
    )
    .await;
    assert_eq!(st, 404);
    d.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_announce_command_speaks_on_the_camera() {
    let broker = tokio::task::block_in_place(common_mqtt::Mosquitto::start);
    let sub = common_mqtt::Subscriber::connect(broker.port, &["homeassistant/text/#"]).await;
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("ring-bridge.toml");
    std::fs::write(
        &cfg,
        "[events]\npoll_interval = \"60s\"\n[rtsp]\nenabled = false\n",
    )
    .unwrap();
    let mut env = base_env(state.path());
    env.retain(|(k, _)| k != "MQTT_ENABLED");
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("MQTT_URL".into(), broker.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));

    // The HA text entity names the command topic.
    let m = sub
        .wait_match(
            "homeassistant/text/ringbridge/a4c1380f0001_announce/config",
            Duration::from_secs(30),
            |_| true,
        )
        .await;
    let cfg = m.json();
    assert_eq!(cfg["name"], "Announce", "{cfg}");
    let topic = cfg["command_topic"].as_str().unwrap().to_owned();
    assert!(topic.ends_with("/a4c1380f0001/announce/command"), "{topic}");

    sub.publish(&topic, "Someone is at the door").await;
    let t = wait_for(Duration::from_secs(40), || async {
        let t = heard(&sim, "10001").await;
        (t["loud_ms"].as_u64().unwrap_or(0) > 500).then_some(t)
    })
    .await;
    assert!(t.is_some(), "nothing heard:\n{}", d.log_text());
    let played = tokio::task::block_in_place(|| {
        d.wait_log("announcement from MQTT played", Duration::from_secs(20))
    });
    assert!(played, "{}", d.log_text());
    d.terminate();
}
