//! WHEP end to end: the real daemon binary against the in-process simulator, with a
//! webrtc-rs WHEP client over real sockets on 127.0.0.1.

mod common;
mod whep_support;

use std::time::{Duration, Instant};

use common::{Daemon, Sim, daemon_on, get_json, wait_for};
use whep_support::{ClientOpts, WhepClient, connect, post_offer};

/// Short linger, no RTSP.
const CONFIG: &str = "[stream]\nlinger = \"2s\"\n\n[rtsp]\nenabled = false\n";

/// The daemon against `sim`, once its camera list is loaded.
async fn daemon(sim: &Sim, state: &std::path::Path) -> Daemon {
    daemon_on(sim, state, CONFIG, &[]).await
}

fn base(d: &Daemon) -> String {
    format!("http://{}", d.http)
}

async fn live_sessions(sim: &Sim) -> (u64, u64) {
    let s = sim.state().await;
    (
        s["live_sessions_active"].as_u64().unwrap(),
        s["live_sessions_total"].as_u64().unwrap(),
    )
}

/// Waits for the first frame (Ring call set-up included), then counts frames for
/// 3 s; returns the first frame and the count.
async fn receive(c: &mut WhepClient) -> (whep_support::VideoFrame, usize) {
    c.wait_connected(Duration::from_secs(20)).await;
    let first = c.next_frame(Duration::from_secs(30)).await;
    let end = Instant::now() + Duration::from_secs(3);
    let mut n = 0;
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, c.frames.recv()).await {
            Ok(Some(_)) => n += 1,
            _ => break,
        }
    }
    (first, n)
}

async fn send(method: reqwest::Method, url: &str, ctype: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, url)
        .header("content-type", ctype)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn whep_viewer_gets_h264_and_opus_and_delete_ends_the_ring_session() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path()).await;
    let base = base(&d);

    // Discovery: OPTIONS and the camera JSON.
    let r = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/api/webrtc/front-door/whep"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.headers()["accept-post"], "application/sdp");
    let (_, cam) = get_json(&d.url("/api/ring/cameras/front-door")).await;
    assert_eq!(cam["whep_url"], "/api/webrtc/front-door/whep", "{cam}");

    let mut c = connect(&base, "front-door", ClientOpts::default()).await;
    assert!(
        c.location.starts_with("/api/webrtc/front-door/whep/") && c.location.len() > 30,
        "{}",
        c.location
    );
    assert!(c.etag.starts_with('"'), "{}", c.etag);
    // One H.264 format answered: a packetization-mode=1 one from the offer.
    let h264: Vec<&str> = c
        .answer
        .lines()
        .filter(|l| l.starts_with("a=rtpmap:") && l.contains("H264"))
        .collect();
    assert_eq!(h264.len(), 1, "{}", c.answer);
    assert!(c.answer.contains("packetization-mode=1"), "{}", c.answer);
    assert!(!c.answer.contains("packetization-mode=0"), "{}", c.answer);
    assert!(
        c.answer.contains("a=rtpmap:111 opus/48000/2"),
        "{}",
        c.answer
    );
    // Non-trickle answer; candidates in the default RTC_MIN_PORT..=RTC_MAX_PORT.
    let ports = candidate_ports(&c.answer);
    assert!(
        ports.iter().all(|p| (40_000..=40_100).contains(p)),
        "{ports:?}"
    );

    let (first, n) = receive(&mut c).await;
    assert!(first.is_keyframe(), "first frame is a key frame: {first:?}");
    assert!(first.has_parameter_sets(), "with SPS and PPS: {first:?}");
    assert!(n > 20, "only {n} frames in 3 s");
    assert!(c.audio_packets() > 0, "Opus audio arrives");
    assert_eq!(live_sessions(&sim).await.0, 1);

    // Hostile datagrams on the session's own port disturb nothing.
    let ufrag = c
        .answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .to_owned();
    hostile_datagrams(format!("127.0.0.1:{}", ports[0]).parse().unwrap(), &ufrag).await;
    let (_, n) = receive(&mut c).await;
    assert!(n > 20, "only {n} frames in 3 s after the flood");

    // Behind a reverse proxy (and by numeric id): Location carries the prefix.
    let (pc2, _) = whep_support::new_peer().await;
    let offer2 = whep_support::make_offer(&pc2).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/api/webrtc/10001/whep"))
        .header("content-type", "application/sdp")
        .header("x-forwarded-prefix", "/ring/")
        .body(offer2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with("/ring/api/webrtc/10001/whep/"), "{loc}");
    let unprefixed = format!("{base}{}", loc.trim_start_matches("/ring"));
    let r = reqwest::Client::new()
        .delete(unprefixed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let _ = pc2.close().await;

    // Trickle: a PATCH with a candidate is accepted; wrong type, stale ETag,
    // and an ICE restart are not.
    let frag = "a=mid:0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n";
    let r = send(
        reqwest::Method::PATCH,
        &c.session_url,
        "application/trickle-ice-sdpfrag",
        frag,
    )
    .await;
    assert_eq!(r.status().as_u16(), 204);
    let r = send(reqwest::Method::PATCH, &c.session_url, "text/plain", frag).await;
    assert_eq!(r.status().as_u16(), 415);
    let r = reqwest::Client::new()
        .patch(&c.session_url)
        .header("content-type", "application/trickle-ice-sdpfrag")
        .header("if-match", "\"stale\"")
        .body(frag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    let restart = "a=ice-ufrag:zzzz\r\na=ice-pwd:yyyyyyyyyyyyyyyyyyyyyyyy\r\n";
    let r = send(
        reqwest::Method::PATCH,
        &c.session_url,
        "application/trickle-ice-sdpfrag",
        restart,
    )
    .await;
    assert_eq!(r.status().as_u16(), 422);

    // DELETE ends the session; the Ring call ends after the linger.
    assert_eq!(c.delete().await, 200);
    assert_eq!(c.delete().await, 404, "session gone");
    let r = send(
        reqwest::Method::PATCH,
        &c.session_url,
        "application/trickle-ice-sdpfrag",
        frag,
    )
    .await;
    assert_eq!(r.status().as_u16(), 404);
    c.close().await;
    let ended = wait_for(Duration::from_secs(15), || async {
        (live_sessions(&sim).await.0 == 0).then_some(())
    })
    .await;
    assert!(
        ended.is_some(),
        "Ring session never ended:\n{}",
        d.log_text()
    );
    assert!(d.log_text().contains("WebRTC session ended"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_and_the_daemon_keeps_serving() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path()).await;
    let base = base(&d);

    for body in ["", "not sdp at all", "v=0\r\nbroken"] {
        let r = post_offer(&base, "front-door", body).await;
        assert_eq!(r.status().as_u16(), 400, "{body:?}");
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["error"], "invalid_argument", "{j}");
        assert!(j["message"].as_str().unwrap().contains("SDP"), "{j}");
    }
    // Valid SDP without H.264: 400 too.
    let (pc, _) = whep_support::new_peer().await;
    let offer = whep_support::make_offer(&pc).await.replace("H264", "H265");
    let r = post_offer(&base, "front-door", &offer).await;
    assert_eq!(r.status().as_u16(), 400);
    let _ = pc.close().await;

    let r = post_offer(&base, "no-such-camera", "v=0\r\n").await;
    assert_eq!(r.status().as_u16(), 404);
    // 10005 (Garage) is offline.
    let r = post_offer(&base, "10005", "v=0\r\n").await;
    assert_eq!(r.status().as_u16(), 409);
    let r = reqwest::Client::new()
        .post(format!("{base}/api/webrtc/front-door/whep"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let r = reqwest::Client::new()
        .delete(format!("{base}/api/webrtc/front-door/whep/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let (st, j) = get_json(&format!("{base}/api/webrtc/front-door/talk")).await;
    assert_eq!(
        (st, j),
        (200, serde_json::json!({"talking": false, "session": null}))
    );

    // Still serving, and no Ring call was started by any of that.
    assert_eq!(get_json(&d.url("/healthz")).await.0, 200);
    assert_eq!(live_sessions(&sim).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn mdns_candidates_still_connect_via_peer_reflexive() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path()).await;
    let opts = ClientOpts {
        mdns_candidates: true,
        ..ClientOpts::default()
    };
    let mut c = connect(&base(&d), "driveway", opts).await;
    let (first, n) = receive(&mut c).await;
    assert!(
        first.is_keyframe() && first.has_parameter_sets(),
        "{first:?}"
    );
    assert!(n > 20, "only {n} frames in 3 s");
    assert_eq!(c.delete().await, 200);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_viewers_share_one_ring_session() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path()).await;
    let base = base(&d);
    let mut viewers = Vec::new();
    for i in 0..3 {
        // The first one goes through a relay, to vanish below.
        let opts = ClientOpts {
            relay: i == 0,
            ..ClientOpts::default()
        };
        let mut c = connect(&base, "back-door", opts).await;
        c.wait_connected(Duration::from_secs(20)).await;
        let f = c.next_frame(Duration::from_secs(30)).await;
        assert!(f.is_keyframe(), "every viewer starts on a key frame");
        viewers.push(c);
    }
    for c in &mut viewers {
        for _ in 0..10 {
            c.next_frame(Duration::from_secs(5)).await;
        }
    }
    assert_eq!(
        live_sessions(&sim).await,
        (1, 1),
        "exactly one Ring session"
    );
    let (_, live) = get_json(&d.url("/api/ring/cameras/back-door/live")).await;
    assert!(live["viewers"].as_u64().unwrap() >= 3, "{live}");

    // One viewer just vanishes (no DELETE, no DTLS goodbye: its network is
    // gone): the others keep going, and the vanished one is dropped once ICE
    // reports it disconnected (a few seconds) plus 10 s.
    let mut gone = viewers.remove(0);
    gone.vanish();
    for c in &mut viewers {
        c.next_frame(Duration::from_secs(5)).await;
        assert_eq!(c.delete().await, 200);
        c.close().await;
    }
    let ended = wait_for(Duration::from_secs(30), || async {
        (live_sessions(&sim).await.0 == 0).then_some(())
    })
    .await;
    assert!(ended.is_some(), "{}", d.log_text());
    assert!(
        d.log_text().contains("reason=\"viewer disconnected\""),
        "{}",
        d.log_text()
    );
    gone.close().await;
}

/// A viewer that loses video packets on the way asks for them again (NACK) and
/// gets them from the session's cache on the retransmission format it offered
/// (RFC 4588); nothing is resent while nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn lost_video_packets_are_resent_on_the_retransmission_format() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path()).await;
    let opts = ClientOpts {
        relay: true,
        rtx: true,
        ..ClientOpts::default()
    };
    let mut c = connect(&base(&d), "driveway", opts).await;
    let (video, rtx) = whep_support::answer_video_pts(&c.answer);
    assert!(rtx.is_some(), "no rtx for {video} in {}", c.answer);
    c.wait_connected(Duration::from_secs(20)).await;
    // A second of video without loss first.
    for _ in 0..15 {
        c.next_frame(Duration::from_secs(30)).await;
    }
    let tap = c.relay.as_ref().expect("a relay").tap();
    assert_eq!(tap.retransmissions(), 0, "resent although nothing was lost");

    tap.drop_video(7, 10);
    let resent = wait_for(Duration::from_secs(30), || async {
        (tap.dropped() == 10 && tap.retransmissions() >= 10).then_some(())
    })
    .await;
    assert!(
        resent.is_some(),
        "lost {}, resent {}\n{}",
        tap.dropped(),
        tap.retransmissions(),
        d.log_text()
    );
    // The viewer plays on.
    c.next_frame(Duration::from_secs(5)).await;
    assert_eq!(c.delete().await, 200);
    c.close().await;
}

/// Ports of the `a=candidate:` lines of `sdp` (at least one).
fn candidate_ports(sdp: &str) -> Vec<u16> {
    let ports: Vec<u16> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .map(|l| l.split(' ').nth(5).unwrap().parse().unwrap())
        .collect();
    assert!(!ports.is_empty(), "{sdp}");
    ports
}

#[tokio::test(flavor = "multi_thread")]
async fn one_shared_udp_port_serves_every_viewer() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on(&sim, state.path(), CONFIG, &[("RTC_UDP_PORT", "0")]).await;
    let line = d
        .log_text()
        .lines()
        .find(|l| l.contains("browser WebRTC uses one UDP port"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no shared-port line: {}", d.log_text()));
    let port: u16 = line
        .rsplit("webrtc_udp_addr=")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line}"));
    let base = base(&d);
    let mut viewers = Vec::new();
    for camera in ["front-door", "front-door", "driveway"] {
        let mut c = connect(&base, camera, ClientOpts::default()).await;
        assert!(
            candidate_ports(&c.answer).iter().all(|p| *p == port),
            "every candidate on the shared port {port}: {}",
            c.answer
        );
        let (first, n) = receive(&mut c).await;
        assert!(first.is_keyframe(), "{first:?}");
        assert!(n > 20, "only {n} frames in 3 s");
        viewers.push(c);
    }
    // Hostile datagrams on the shared port (garbage, RTP/DTLS/STUN look-alikes,
    // binding requests naming no session or a real one without the password)
    // disturb no viewer.
    let ufrag = viewers[0]
        .answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .to_owned();
    hostile_datagrams(format!("127.0.0.1:{port}").parse().unwrap(), &ufrag).await;
    for c in &mut viewers {
        let (_, n) = receive(c).await;
        assert!(n > 20, "only {n} frames in 3 s after the flood");
    }
    assert_eq!(get_json(&d.url("/healthz")).await.0, 200);
    for c in &viewers {
        assert_eq!(c.delete().await, 200);
        c.close().await;
    }
}

/// Sends a few thousand malformed or unauthenticated datagrams to `to`.
async fn hostile_datagrams(to: std::net::SocketAddr, ufrag: &str) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend([7u8; 12]);
    let user = format!("{ufrag}:evil");
    let mut named = stun.clone();
    // USERNAME, then a MESSAGE-INTEGRITY of zeros (wrong).
    let mut attrs = vec![0x00, 0x06];
    attrs.extend((user.len() as u16).to_be_bytes());
    attrs.extend(user.as_bytes());
    attrs.resize(attrs.len().div_ceil(4) * 4, 0);
    attrs.extend([0x00, 0x08, 0x00, 0x14]);
    attrs.extend([0u8; 20]);
    named[2..4].copy_from_slice(&(attrs.len() as u16).to_be_bytes());
    named.extend(attrs);
    let shapes: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 1400],
        vec![0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],
        vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        stun,
        named,
    ];
    for i in 0..3000usize {
        let mut d = shapes[i % shapes.len()].clone();
        if let Some(b) = d.get_mut(i % 7) {
            *b ^= (i % 251) as u8;
        }
        let _ = sock.send_to(&d, to).await;
    }
}
