//! End-to-end tests: `LiveCall` against the simulator's `LiveSim` over real
//! sockets on 127.0.0.1 (websocket + WebRTC over loopback). Every wait is
//! bounded; no test sleeps longer than 100 ms at a time.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::*;
use crate::base::{CameraId, ErrorKind, ResultExt};
use crate::media::{Frame, MediaKind, h264};
use crate::sim::live::{CLOSE_CAMERA_OFFLINE, LiveSim, LiveSimOptions};

const CAMERA: CameraId = CameraId::new(987_654_321);
const OFFLINE_CAMERA: CameraId = CameraId::new(666);

struct Harness {
    sim: Arc<LiveSim>,
    url: Url,
    stop: CancellationToken,
}

/// Test logs: `RINGBRIDGE_LOG=ring_bridge=debug cargo test --lib live -- --nocapture`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

impl Harness {
    async fn start(opts: LiveSimOptions) -> Harness {
        init_tracing();
        let sim = LiveSim::new(
            opts,
            Box::new(|t| t != "bad-ticket"),
            Box::new(|id| id != OFFLINE_CAMERA.get()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let app = sim.router();
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await
                .unwrap();
        });
        Harness {
            sim,
            url: Url::parse(&format!("ws://{addr}/ws")).unwrap(),
            stop,
        }
    }

    async fn call(&self, opts: &LiveOptions) -> Result<LiveCall, Error> {
        LiveCall::connect("ticket", &self.url, CAMERA, opts, &CancellationToken::new()).await
    }

    fn stat(&self, key: &str) -> u64 {
        self.sim.stats()[key].as_u64().unwrap()
    }

    async fn wait_for(&self, what: &str, f: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !f(&self.sim.stats()) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {}",
                self.sim.stats()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the simulator has no active session.
    async fn wait_idle(&self) {
        self.wait_for("active sessions to drop", |s| {
            s["live_sessions_active"] == 0
        })
        .await;
    }

    async fn stop(self) {
        self.sim.shutdown().await;
        self.stop.cancel();
    }
}

fn client_opts() -> LiveOptions {
    LiveOptions {
        ice_servers: vec![],
        ice_ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        include_loopback: true,
        ..LiveOptions::default()
    }
}

fn small_sim() -> LiveSimOptions {
    LiveSimOptions {
        width: 320,
        height: 180,
        fps: 10,
        gop_secs: 1,
        ..LiveSimOptions::default()
    }
}

/// The call's next frame, within 5 s; the call must still be running.
async fn next_frame(call: &mut LiveCall) -> Frame {
    tokio::time::timeout(Duration::from_secs(5), call.next_frame())
        .await
        .expect("no frame within 5 s")
        .unwrap()
        .expect("the call ended early")
}

/// Reads frames until the call ends, with an overall bound.
async fn until_end(call: &mut LiveCall, within: Duration) -> Result<Option<Frame>, Error> {
    tokio::time::timeout(within, async {
        loop {
            match call.next_frame().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the call did not end in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_and_audio_flow_then_explicit_close() {
    let h = Harness::start(LiveSimOptions::default()).await;
    let mut call = h.call(&client_opts()).await.unwrap();
    assert!(!call.session_id().is_empty());
    assert_eq!(call.audio_codec(), Some(AudioCodec::Opus));
    assert_eq!(h.stat("live_sessions_active"), 1);

    let (mut keyframes, mut audio, mut video) = (0, 0, 0);
    let (mut last_v, mut last_a): (Option<u64>, Option<u64>) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while keyframes < 2 || audio < 20 {
        assert!(
            Instant::now() < deadline,
            "keyframes={keyframes} video={video} audio={audio}"
        );
        let f = next_frame(&mut call).await;
        match f.kind {
            MediaKind::Video => {
                video += 1;
                assert!(last_v.is_none_or(|p| f.pts > p), "video PTS not increasing");
                last_v = Some(f.pts);
                let nals: Vec<&[u8]> = h264::nal_slices(&f.data).collect();
                if video == 1 {
                    assert!(f.keyframe, "first access unit must be a key frame");
                }
                if f.keyframe {
                    keyframes += 1;
                    let sps = nals
                        .iter()
                        .find(|n| h264::nal_type(n) == h264::NAL_SPS)
                        .expect("SPS before IDR");
                    let sps = h264::parse_sps(sps).expect("SPS parses");
                    assert_eq!((sps.width, sps.height), (1920, 1080));
                    assert!(
                        nals.iter().any(|n| h264::nal_type(n) == h264::NAL_PPS),
                        "PPS before IDR"
                    );
                    assert!(nals.iter().any(|n| h264::nal_type(n) == h264::NAL_IDR));
                }
            }
            MediaKind::Audio => {
                audio += 1;
                assert!(last_a.is_none_or(|p| f.pts >= p), "audio PTS decreasing");
                if let Some(p) = last_a {
                    assert!(f.pts - p <= 48_000, "audio PTS jumped");
                }
                last_a = Some(f.pts);
                assert!(!f.data.is_empty());
            }
        }
    }
    // 15 fps → consecutive video PTS 6000 apart on average.
    assert!(video >= 16, "{video}");
    call.close().await.unwrap();
    assert!(call.is_ended());
    assert!(matches!(call.next_frame().await, Ok(None) | Ok(Some(_))));
    h.wait_idle().await;
    assert_eq!(h.sim.client_hangups(), 1, "no explicit close message");
    assert_eq!(h.stat("live_sessions_total"), 1);
    h.stop().await;
}

/// The simulator's audio schedule for measurements (`sim --audio-per-send`):
/// no audio at all, or the same 20 ms packets in bursts of three, gap-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_per_send_changes_the_bursts_not_the_audio() {
    for per_send in [0, 3] {
        let h = Harness::start(LiveSimOptions {
            audio_per_send: per_send,
            ..small_sim()
        })
        .await;
        let mut call = h.call(&client_opts()).await.unwrap();
        let (mut video, mut audio_pts) = (0, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(20);
        // 20 video frames are 2 s of stream at 10 fps: 100 audio packets' worth.
        while video < 20 || (per_send > 0 && audio_pts.len() < 30) {
            assert!(
                Instant::now() < deadline,
                "video={video} audio={}",
                audio_pts.len()
            );
            let f = next_frame(&mut call).await;
            match f.kind {
                MediaKind::Video => video += 1,
                MediaKind::Audio => audio_pts.push(f.pts),
            }
        }
        if per_send == 0 {
            assert!(audio_pts.is_empty(), "{} audio frames", audio_pts.len());
        } else {
            // 20 ms apart at 48 kHz, none missing, none repeated.
            assert!(
                audio_pts.windows(2).all(|w| w[1] - w[0] == 960),
                "{audio_pts:?}"
            );
        }
        call.close().await.unwrap();
        h.wait_idle().await;
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talkback_reaches_the_camera() {
    talkback_reaches(&client_opts()).await;
}

/// `webrtc.talk_ssrc`: talkback on an SSRC our offer did not announce still
/// reaches the camera (BUNDLE routes it by its MID header extension).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talkback_with_an_overridden_ssrc_reaches_the_camera() {
    talkback_reaches(&LiveOptions {
        talk_ssrc: Some(0x1234_5678),
        ..client_opts()
    })
    .await;
}

async fn talkback_reaches(opts: &LiveOptions) {
    let h = Harness::start(small_sim()).await;
    let call = h.call(opts).await.unwrap();
    let talk = call.talk_sender();
    assert_eq!(talk.codec(), Some(AudioCodec::Opus));
    let packets = crate::codec::encode::opus_sine(Duration::from_secs(1), 440).unwrap();
    assert!(packets.len() >= 45);
    let mut next = Instant::now();
    for p in &packets {
        talk.send_talk(p.clone(), Duration::from_millis(20))
            .await
            .unwrap();
        next += Duration::from_millis(20);
        tokio::time::sleep_until(next).await;
    }
    let key = CAMERA.to_string();
    h.wait_for("talkback packets and energy", |s| {
        let t = &s["talkback"][&key];
        t["packets"].as_u64().unwrap_or(0) >= packets.len() as u64 * 9 / 10
            && t["energy"].as_f64().unwrap_or(0.0) > 0.05
    })
    .await;
    tracing::info!(stats = %h.sim.stats(), "talkback received");
    drop(call); // dropping hangs up in the background
    h.wait_idle().await;
    assert_eq!(h.sim.client_hangups(), 1, "no explicit close message");
    h.stop().await;
}

/// The hub's talkback channel: Opus packets reach the camera, packets in the
/// codec Ring did not pick are dropped, and the forwarder ends with the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_talkback_is_forwarded_until_the_call_ends() {
    use crate::media::{TalkbackCodec, TalkbackPacket};

    let h = Harness::start(small_sim()).await;
    let mut call = h.call(&client_opts()).await.unwrap();
    let tb = call
        .talkback_sender()
        .expect("Opus answer gives a talkback channel");
    let pcmu = TalkbackPacket {
        codec: TalkbackCodec::Pcmu,
        data: Bytes::from_static(&[0xff; 160]),
        samples: 160,
    };
    for _ in 0..5 {
        tb.send(pcmu.clone()).await.unwrap();
    }
    let packets = crate::codec::encode::opus_sine(Duration::from_millis(600), 440).unwrap();
    let mut next = Instant::now();
    for p in &packets {
        let pkt = TalkbackPacket {
            codec: TalkbackCodec::Opus,
            data: p.clone(),
            samples: 960,
        };
        tb.send(pkt).await.unwrap();
        next += Duration::from_millis(20);
        tokio::time::sleep_until(next).await;
    }
    let key = CAMERA.to_string();
    h.wait_for("talkback packets", |s| {
        s["talkback"][&key]["packets"].as_u64().unwrap_or(0) >= packets.len() as u64 * 9 / 10
    })
    .await;
    let got = h.sim.stats()["talkback"][&key]["packets"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        got <= packets.len() as u64,
        "PCMU packets were forwarded: {got}"
    );
    call.close().await.unwrap();
    assert!(tb.is_closed(), "the forwarder outlived the call");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_talkback_the_speaker_stays_off() {
    let h = Harness::start(small_sim()).await;
    let mut call = h
        .call(&LiveOptions {
            talkback: false,
            ..client_opts()
        })
        .await
        .unwrap();
    let talk = call.talk_sender();
    let packets = crate::codec::encode::opus_sine(Duration::from_millis(200), 440).unwrap();
    for p in &packets {
        talk.send_talk(p.clone(), Duration::from_millis(20))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let key = CAMERA.to_string();
    h.wait_for("talkback packets", |s| {
        s["talkback"][&key]["packets"].as_u64().unwrap_or(0) >= packets.len() as u64 * 9 / 10
    })
    .await;
    assert_eq!(h.sim.stats()["talkback"][&key]["energy"], 0.0);
    call.close().await.unwrap();
    let e = talk
        .send_talk(packets[0].clone(), Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(matches!(e.inner(), ErrorInner::HungUp), "{e}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_request_is_answered_promptly() {
    let h = Harness::start(LiveSimOptions {
        gop_secs: 4,
        ..small_sim()
    })
    .await;
    let mut call = h.call(&client_opts()).await.unwrap();
    let mut seen_key = false;
    let mut requested: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < deadline);
        let f = call.next_frame().await.unwrap().unwrap();
        if f.kind != MediaKind::Video {
            continue;
        }
        match (f.keyframe, seen_key, requested) {
            (true, false, _) => seen_key = true,
            (false, true, None) => {
                call.request_keyframe();
                requested = Some(Instant::now());
            }
            (true, true, Some(t)) => {
                // Without the PLI the next key frame would be ~4 s away.
                assert!(
                    t.elapsed() < Duration::from_millis(2500),
                    "{:?}",
                    t.elapsed()
                );
                break;
            }
            _ => {}
        }
    }
    call.close().await.unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cap_ends_the_call_normally() {
    let h = Harness::start(LiveSimOptions {
        session_cap: Duration::from_secs(2),
        ..small_sim()
    })
    .await;
    let mut call = h.call(&client_opts()).await.unwrap();
    assert!(
        until_end(&mut call, Duration::from_secs(10))
            .await
            .unwrap()
            .is_none()
    );
    let reason = call.close_reason().expect("Ring's reason");
    assert_eq!(reason.code, close_code::NORMAL);
    assert!(call.session_age() >= Duration::from_millis(1500));
    h.wait_idle().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_signalling_ends_the_call_with_an_error() {
    let h = Harness::start(small_sim()).await;
    let mut call = h.call(&client_opts()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), call.next_frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    h.sim.drop_signalling();
    let e = until_end(&mut call, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.inner(),
            ErrorInner::SignallingLost | ErrorInner::WebSocket(_)
        ),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    h.wait_idle().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_the_session_and_missing_pings_end_it() {
    let h = Harness::start(LiveSimOptions {
        ping_timeout: Duration::from_millis(1200),
        ..small_sim()
    })
    .await;
    // With pings every 300 ms the session outlives several ping timeouts.
    let mut call = h
        .call(&LiveOptions {
            ping_interval: Duration::from_millis(300),
            ..client_opts()
        })
        .await
        .unwrap();
    let until = Instant::now() + Duration::from_millis(3000);
    while Instant::now() < until {
        let f = tokio::time::timeout(Duration::from_secs(2), call.next_frame())
            .await
            .unwrap();
        assert!(matches!(f, Ok(Some(_))), "call ended: {f:?}");
    }
    call.close().await.unwrap();

    // Without pings Ring closes with code 6.
    let mut call = h
        .call(&LiveOptions {
            ping_interval: Duration::from_secs(3600),
            ..client_opts()
        })
        .await
        .unwrap();
    let e = until_end(&mut call, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(
        e.close_reason().map(|r| r.code),
        Some(close_code::PING_TIMEOUT),
        "{e}"
    );
    assert_eq!(
        call.close_reason().map(|r| r.code),
        Some(close_code::PING_TIMEOUT)
    );
    h.wait_idle().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ticket_and_offline_camera_fail_to_connect() {
    let h = Harness::start(small_sim()).await;
    let opts = client_opts();
    let cancel = CancellationToken::new();
    let e = LiveCall::connect("bad-ticket", &h.url, CAMERA, &opts, &cancel)
        .await
        .unwrap_err();
    assert_eq!(
        e.close_reason().map(|r| r.code),
        Some(close_code::AUTH_FAILED),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);

    let e = LiveCall::connect("ticket", &h.url, OFFLINE_CAMERA, &opts, &cancel)
        .await
        .unwrap_err();
    assert_eq!(
        e.close_reason().map(|r| r.code),
        Some(CLOSE_CAMERA_OFFLINE),
        "{e}"
    );
    assert_eq!(h.stat("live_sessions_total"), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_hangs_up() {
    let h = Harness::start(small_sim()).await;
    let cancel = CancellationToken::new();
    let mut call = LiveCall::connect("ticket", &h.url, CAMERA, &client_opts(), &cancel)
        .await
        .unwrap();
    cancel.cancel();
    assert!(
        until_end(&mut call, Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    h.wait_idle().await;
    assert_eq!(h.sim.client_hangups(), 1, "no explicit close message");
    h.stop().await;
}

#[tokio::test]
async fn signalling_requires_user_agent_and_dialog_id() {
    let h = Harness::start(small_sim()).await;
    let url = crate::ring::live::signalling::socket_url(&h.url, "ticket");
    // No User-Agent: refused before the upgrade.
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected HTTP 400, got {:?}", other.map(|_| ())),
    }
    // No dialog_id: the socket is closed.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("user-agent", "test".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let msg =
        serde_json::json!({"method": "live_view", "body": {"doorbot_id": CAMERA, "sdp": "v=0"}});
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        msg.to_string(),
    ))
    .await
    .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None
                | Some(Err(_))
                | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return,
                Some(Ok(m)) => assert!(!m.is_text(), "unexpected answer {m:?}"),
            }
        }
    })
    .await;
    assert!(end.is_ok(), "socket not closed");
    assert_eq!(h.stat("live_sessions_total"), 0);
    h.stop().await;
}

/// H.265 over a real live call: the simulator's HEVC-mode camera against
/// `LiveCall`, with and without H.265 in our offer (`docs/design/0009-h265.md`).
mod h265 {
    use super::*;
    use crate::media::{VideoCodec, h265};
    use crate::sim::live::h265::{CLOSE_CODEC, VideoMode};

    /// The first video frame of `call` (bounded).
    async fn first_video(call: &mut LiveCall) -> Frame {
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let f = call.next_frame().await.unwrap().expect("call ended early");
                if f.kind == MediaKind::Video {
                    return f;
                }
            }
        })
        .await
        .expect("no video within 15 s")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hevc_camera_sends_h264_unless_h265_is_offered() {
        let h = Harness::start(small_sim()).await;
        h.sim.set_camera_video(Box::new(|_| VideoMode::Hevc));

        // Asked the way Ring's own clients ask: H.264 only → H.264 ("transcoded").
        let mut call = h.call(&client_opts()).await.unwrap();
        assert_eq!(call.video_codec(), VideoCodec::H264);
        let f = first_video(&mut call).await;
        assert!(f.keyframe);
        let sps = h264::nal_slices(&f.data)
            .find(|n| h264::nal_type(n) == h264::NAL_SPS)
            .expect("H.264 SPS");
        let sps = h264::parse_sps(sps).expect("SPS parses");
        assert_eq!((sps.width, sps.height), (320, 180));
        call.close().await.unwrap();
        h.wait_idle().await;

        // With H.265 offered, the HEVC camera answers H.265, depacketized from
        // webrtc-rs's RFC 7798 payloader (APs and FUs) into IRAP access units.
        let opts = LiveOptions {
            h265: true,
            ..client_opts()
        };
        let mut call = h.call(&opts).await.unwrap();
        assert_eq!(call.video_codec(), VideoCodec::H265);
        let f = first_video(&mut call).await;
        assert!(f.keyframe && h265::contains_irap(&f.data));
        let params = h265::find_parameter_sets(&f.data).video_params().unwrap();
        assert_eq!((params.width, params.height), (320, 180));
        // Later frames keep coming, and the next key frame has its parameter sets too.
        let mut keys = 0;
        tokio::time::timeout(Duration::from_secs(15), async {
            while keys < 1 {
                let f = call.next_frame().await.unwrap().expect("call ended early");
                if f.kind == MediaKind::Video && f.keyframe {
                    assert!(h265::find_parameter_sets(&f.data).complete());
                    keys += 1;
                }
            }
        })
        .await
        .expect("no second key frame");
        call.close().await.unwrap();
        h.wait_idle().await;
        h.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hevc_only_camera_refuses_an_h264_only_offer() {
        let h = Harness::start(small_sim()).await;
        h.sim.set_camera_video(Box::new(|_| VideoMode::HevcOnly));
        let e = h.call(&client_opts()).await.unwrap_err();
        assert_eq!(e.close_reason().map(|r| r.code), Some(CLOSE_CODEC), "{e}");
        assert!(e.to_string().contains("H.265"), "{e}");
        h.wait_idle().await;
        h.stop().await;
    }
}

/// Ring's packets get lost on the way: the lost ones are NACKed, their
/// retransmissions fill the gaps (the reorder buffer holds the packets after a
/// gap), and the video goes on without a lost packet or a key-frame request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_video_packets_are_recovered_by_nack() {
    let h = Harness::start(LiveSimOptions {
        fps: 15,
        gop_secs: 2,
        video_loss_every: Some(15),
        ..small_sim()
    })
    .await;
    let mut call = h.call(&client_opts()).await.unwrap();
    let stats = call.transport_stats();
    let mut frames = 0u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    let window = Instant::now() + Duration::from_secs(4);
    loop {
        assert!(Instant::now() < deadline, "{:?}", stats.totals());
        let f = next_frame(&mut call).await;
        if f.kind == MediaKind::Video {
            frames += 1;
        }
        // NACKs are reported once a second: wait past the window for them.
        if Instant::now() >= window && stats.totals().nacks > 0 {
            break;
        }
    }
    let t = stats.totals();
    assert!(t.packets > 60, "{t:?}");
    assert!(t.nacks > 0, "{t:?}");
    assert_eq!(t.lost, 0, "every lost packet came back: {t:?}");
    assert_eq!(t.plis, 0, "no frame was broken: {t:?}");
    assert!(frames >= 40, "{frames} video frames in ~4 s at 15 fps");
    call.close().await.unwrap();
    h.stop().await;
}
