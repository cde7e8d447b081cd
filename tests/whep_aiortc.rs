//! WHEP with a second, independent WebRTC stack: aiortc (Python), driven as a
//! standard WHEP player that never calls ring-bridge's own `…/talk` API.
//!
//! - It plays the simulated camera's 1920×1080 H.264 (decoded by aiortc) and Opus.
//! - Its microphone's tone takes the talk floor by voice and reaches the simulated
//!   camera's speaker (> 50 packets within 3 s); silence gives the floor back.
//!   An explicit `POST …/talk` from another viewer wins over the voice talker.
//! - The answer's `profile-level-id` matches the SPS the player receives (the same
//!   RFC 6184 profile, the same level) when the player offers the stream's profile,
//!   and is the closest it allows (its profile, the stream's level) when it does
//!   not; the daemon says so in its log. Answers carry `a=rtcp-mux` and no
//!   component-2 candidates.

mod common;
mod whep_player;
mod whep_support;

use std::time::{Duration, Instant};

use common::{Daemon, Sim, daemon_on, get_json, wait_for};
use ring_bridge::media::h264::ProfileLevel;
use serde_json::Value;
use whep_player::{Player, answer_profile_level_id};
use whep_support::{ClientOpts, connect};

async fn daemon(sim: &Sim, state: &std::path::Path) -> Daemon {
    let config = "[stream]\nlinger = \"2s\"\n\n[rtsp]\nenabled = false\n";
    daemon_on(sim, state, config, &[]).await
}

/// Runs blocking player I/O without stalling the runtime (the simulator shares it).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Talkback packets and decoded energy the simulated camera 10001 received.
async fn talkback(sim: &Sim) -> (u64, f64) {
    let s = sim.state().await;
    let t = &s["talkback"]["10001"];
    (
        t["packets"].as_u64().unwrap_or(0),
        t["energy"].as_f64().unwrap_or(0.0),
    )
}

/// Starts a player on front-door and checks the answer's shape; returns it with
/// the answer event.
fn start_player(d: &Daemon, args: &[&str]) -> (Player, Value) {
    let url = d.url("/api/webrtc/front-door/whep");
    let mut p = Player::start(&url, args);
    let answer = p.wait_event("answer", Duration::from_secs(60));
    assert_eq!(answer["status"], 201, "{answer}\n{}", d.log_text());
    let sdp = answer["sdp"].as_str().unwrap_or_default();
    assert!(sdp.contains("a=rtcp-mux"), "{sdp}");
    let candidates: Vec<&str> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(!candidates.is_empty(), "{sdp}");
    assert!(
        candidates
            .iter()
            .all(|c| c.split_whitespace().nth(1) == Some("1")),
        "only component-1 candidates with rtcp-mux: {candidates:?}"
    );
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let st = p.wait_event("state", left);
        assert_ne!(st["state"], "failed", "{st}\n{}", d.log_text());
        if st["state"] == "connected" {
            break;
        }
    }
    (p, answer)
}

/// Waits until the player has decoded 1080p video at a steady rate; returns the
/// stats.
fn wait_playing(p: &mut Player) -> Value {
    p.wait_stats(Duration::from_secs(30), |s| {
        s["video_frames"].as_u64().unwrap_or(0) >= 30
            && s["fps"].as_f64().unwrap_or(0.0) >= 8.0
            && s["sps_profile_level_id"].is_string()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn aiortc_plays_and_talks_by_voice_without_calling_talk() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path()).await;

    // Plain aiortc offers only Constrained Baseline; the simulator sends High.
    let (mut p, answer) = blocking(|| start_player(&d, &[]));
    let stats = blocking(|| wait_playing(&mut p));
    assert_eq!(
        (stats["width"].as_u64(), stats["height"].as_u64()),
        (Some(1920), Some(1080)),
        "{stats}"
    );
    assert!(
        stats["audio_frames"].as_u64().unwrap_or(0) > 0,
        "Opus plays: {stats}"
    );
    // aiortc offers Constrained Baseline (42001f, 42e01f), which is what the
    // simulator sends: the answer names the stream's profile and level.
    let sps = plid(&stats["sps_profile_level_id"]);
    let announced = answered(&answer);
    assert_eq!(
        (announced.profile(), announced.level_idc),
        (sps.profile(), sps.level_idc),
        "answer {announced} vs the SPS received {sps}"
    );
    assert!(
        !d.log_text().contains("strict decoders may refuse"),
        "a matching answer is not flagged:\n{}",
        d.log_text()
    );

    // Silence on the microphone: no floor, nothing reaches the camera.
    let base = format!("http://{}", d.http);
    let talk_url = format!("{base}/api/webrtc/front-door/talk");
    blocking(|| {
        p.wait_stats(Duration::from_secs(10), |s| {
            s["mic_frames"].as_u64().unwrap_or(0) >= 100
        })
    });
    assert_eq!(talkback(&sim).await.0, 0, "silence does not talk");
    assert_eq!(get_json(&talk_url).await.1["talking"], false);

    // A tone: the voice takes the floor and the speaker hears it.
    blocking(|| p.send("tone"));
    let started = Instant::now();
    let heard = wait_for(Duration::from_secs(3), || async {
        let (packets, energy) = talkback(&sim).await;
        (packets > 50 && energy > 0.05).then_some(packets)
    })
    .await;
    let (packets, energy) = talkback(&sim).await;
    assert!(
        heard.is_some(),
        "camera heard {packets} packets (energy {energy}) {:?} after the tone started:\n{}",
        started.elapsed(),
        d.log_text()
    );
    let session = answer["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (_, talk) = get_json(&talk_url).await;
    assert_eq!(
        talk,
        serde_json::json!({"talking": true, "session": session, "by": "voice"})
    );

    // An explicit talker (webrtc-rs viewer) wins over the voice; while it holds
    // the floor the tone does not take it back.
    let mut explicit = connect(&base, "front-door", ClientOpts::default()).await;
    explicit.wait_connected(Duration::from_secs(20)).await;
    assert_eq!(
        explicit.talk(true).await,
        (200, serde_json::json!({"talking": true}))
    );
    let (_, talk) = get_json(&talk_url).await;
    assert_eq!(talk["by"], "explicit", "{talk}");
    assert_ne!(talk["session"], session.as_str(), "{talk}");
    // It lets go: the tone (still sounding) takes the floor again by voice.
    assert_eq!(explicit.talk(false).await.0, 200);
    let back = wait_for(Duration::from_secs(5), || async {
        let (_, t) = get_json(&talk_url).await;
        (t["session"] == session.as_str() && t["by"] == "voice").then_some(())
    })
    .await;
    assert!(
        back.is_some(),
        "voice retakes a free floor:\n{}",
        d.log_text()
    );

    // Silence: the floor goes back after the hang time (1 s).
    blocking(|| p.send("silence"));
    let released = wait_for(Duration::from_secs(5), || async {
        (get_json(&talk_url).await.1["talking"] == false).then_some(())
    })
    .await;
    assert!(
        released.is_some(),
        "floor kept after silence:\n{}",
        d.log_text()
    );
    assert!(d.log_text().contains("talk floor released after silence"));

    // DELETE like any WHEP player.
    assert_eq!(blocking(|| p.quit()), 200);
    explicit.delete().await;
    explicit.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_player_without_the_streams_profile_gets_the_closest_fit_logged() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path()).await;

    // A player that lists only H.264 High; the simulator sends Constrained Baseline.
    let (mut p, answer) = blocking(|| start_player(&d, &["--h264", "64001f"]));
    let stats = blocking(|| wait_playing(&mut p));
    assert_eq!(
        (stats["width"].as_u64(), stats["height"].as_u64()),
        (Some(1920), Some(1080)),
        "{stats}"
    );
    let sps = plid(&stats["sps_profile_level_id"]);
    let announced = answered(&answer);
    assert_ne!(announced.profile(), sps.profile(), "{announced} vs {sps}");
    assert_eq!(
        announced,
        ProfileLevel {
            level_idc: sps.level_idc,
            ..ProfileLevel::parse("64001f").unwrap()
        },
        "the offer's profile with the stream's level"
    );
    assert!(
        d.log_text()
            .contains("the offer has no format of the stream's H.264 profile"),
        "the closest fit is logged:\n{}",
        d.log_text()
    );
    assert_eq!(blocking(|| p.quit()), 200);
}

/// A `profile-level-id` reported by the player.
fn plid(v: &Value) -> ProfileLevel {
    v.as_str()
        .and_then(ProfileLevel::parse)
        .unwrap_or_else(|| panic!("not a profile-level-id: {v}"))
}

/// The `profile-level-id` of the answer's H.264 format.
fn answered(answer: &Value) -> ProfileLevel {
    let sdp = answer["sdp"].as_str().unwrap_or_default();
    answer_profile_level_id(sdp)
        .as_deref()
        .and_then(ProfileLevel::parse)
        .unwrap_or_else(|| panic!("no H.264 profile-level-id in the answer:\n{sdp}"))
}
