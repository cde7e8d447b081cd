//! WHEP with a third, independent WebRTC stack as the player: GStreamer's
//! `webrtcbin` (libnice ICE, OpenSSL DTLS with an RSA certificate, libsrtp2), the
//! stack of GStreamer-based players and recorders. It connects, decodes the
//! simulated camera's 1080p H.264, receives its Opus (offered the way webrtcbin
//! does without extra caps, `OPUS/48000` without the channel count), and its
//! DELETE ends the session.

mod common;
mod whep_player;

use std::time::{Duration, Instant};

use common::{Sim, daemon_on, wait_for};
use whep_player::Player;

#[tokio::test(flavor = "multi_thread")]
async fn gstreamer_webrtcbin_plays_video_and_audio() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let config = "[stream]\nlinger = \"2s\"\n\n[rtsp]\nenabled = false\n";
    let d = daemon_on(&sim, state.path(), config, &[]).await;
    let url = d.url("/api/webrtc/front-door/whep");
    let log = || d.log_text();
    // Blocking player I/O off the runtime the simulator shares.
    tokio::task::block_in_place(|| {
        let mut p = Player::start_gst(&url);
        let answer = p.wait_event("answer", Duration::from_secs(60));
        assert_eq!(answer["status"], 201, "{answer}\n{}", log());
        let sdp = answer["sdp"].as_str().unwrap_or_default();
        assert!(
            sdp.lines().any(|l| l.starts_with("m=audio 9 ")),
            "audio accepted: {sdp}"
        );
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let st = p.wait_event("state", end.saturating_duration_since(Instant::now()));
            assert_ne!(st["state"], "failed", "{:?}\n{}", p.seen, log());
            if st["state"] == "connected" {
                break;
            }
        }
        let s = p.wait_stats(Duration::from_secs(30), |s| {
            s["frames"].as_u64().unwrap_or(0) >= 30
                && s["audio_buffers"].as_u64().unwrap_or(0) >= 50
        });
        assert_eq!(
            (s["width"].as_u64(), s["height"].as_u64()),
            (Some(1920), Some(1080)),
            "{s}"
        );
        assert_eq!(p.quit(), 200, "DELETE of the session");
    });
    let ended = wait_for(Duration::from_secs(20), || async {
        log().contains("WebRTC session ended").then_some(())
    })
    .await;
    assert!(ended.is_some(), "{}", log());
}
