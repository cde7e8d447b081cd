//! RTSP server tests: real H.264/Opus (encoded here with GStreamer) from a fake hub
//! source, Retina and ffprobe as clients on 127.0.0.1 with a free port.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use retina::client::Credentials;
use tokio_util::sync::CancellationToken;

use ring_bridge::cameras::testutil;
use ring_bridge::codec::encode;
use ring_bridge::media::testutil::{FakeClip, FakeOpener, FakeSpec};
use ring_bridge::media::{Hub, HubOptions};
use ring_bridge::rtsp::{RtspHandle, RtspOptions, RtspServer};

mod common;
use common::rtsp::{next_video, play, spawn_client};
use ring_bridge::base::{CameraId, Secret};

/// The hub key of the test camera (its Ring id).
const CAM: CameraId = CameraId::new(1);
const LINGER: Duration = Duration::from_secs(1);

/// 3 s of 640x360 H.264 (GOP 30) and 1 s of 20 ms Opus packets, encoded once.
fn clip() -> Arc<FakeClip> {
    static CLIP: OnceLock<Arc<FakeClip>> = OnceLock::new();
    CLIP.get_or_init(|| {
        let video = encode::h264_test_pattern(90, 640, 360, 30).expect("H.264 clip");
        let audio = encode::opus_sine(Duration::from_secs(1), 440).expect("Opus clip");
        assert_eq!(video.len(), 90);
        assert!(ring_bridge::media::h264::contains_idr(&video[0]));
        Arc::new(FakeClip { video, audio })
    })
    .clone()
}

struct Fixture {
    opener: Arc<FakeOpener>,
    hub: Hub,
    handle: Option<RtspHandle>,
    cancel: CancellationToken,
    /// Keeps the camera directory open.
    _feed: testutil::DirectoryFeed,
}

impl Fixture {
    fn start(spec: FakeSpec, opts: RtspOptions) -> Fixture {
        let opener = FakeOpener::new(FakeSpec {
            clip: Some(clip()),
            ..spec
        });
        let cancel = CancellationToken::new();
        let hub_opts = HubOptions {
            linger: LINGER,
            ..HubOptions::default()
        };
        let hub = Hub::new(opener.clone(), hub_opts, cancel.child_token());
        let mut front = testutil::entry(1, "Front Door");
        front.camera.device_id = "12345".into();
        let (directory, feed) = testutil::fixed(vec![front]);
        let handle = RtspServer::start(
            RtspOptions {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..opts
            },
            hub.clone(),
            directory,
            cancel.child_token(),
        )
        .expect("server starts");
        assert_ne!(handle.port(), 0);
        Fixture {
            opener,
            hub,
            handle: Some(handle),
            cancel,
            _feed: feed,
        }
    }

    fn url(&self, path: &str) -> url::Url {
        let port = self.handle.as_ref().map_or(0, RtspHandle::port);
        url::Url::parse(&format!("rtsp://127.0.0.1:{port}/{path}")).expect("url")
    }

    /// Shuts the server down and checks that every media released its lease.
    async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        let stream = self.hub.stream(CAM);
        let released = common::wait_for(Duration::from_secs(5), || {
            let n = stream.viewers();
            async move { (n == 0).then_some(()) }
        })
        .await;
        assert!(released.is_some(), "RTSP shutdown released all leases");
        self.cancel.cancel();
        self.hub.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_h264_and_opus_with_increasing_timestamps() {
    let fx = Fixture::start(FakeSpec::default(), RtspOptions::default());
    let (described, mut rx) = spawn_client(fx.url("front-door")).await;
    assert_eq!(
        described.media,
        vec![
            ("video".into(), "h264".into()),
            ("audio".into(), "opus".into())
        ]
    );
    assert_eq!(described.video_size, Some((640, 360)));

    let first = next_video(&mut rx).await;
    assert!(first.keyframe, "first frame is a key frame");
    let (mut video, mut keyframes, mut last_ts) = (1, 1, first.ts);
    while keyframes < 3 {
        let s = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("frame in time")
            .expect("client running");
        assert!(s.video);
        assert!(
            s.ts > last_ts,
            "video timestamps increase: {} then {}",
            last_ts,
            s.ts
        );
        last_ts = s.ts;
        video += 1;
        keyframes += usize::from(s.keyframe);
    }
    assert!(video >= 61, "at least two full GOPs: {video}");
    assert_eq!(fx.opener.opens(), 1);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_media_serves_many_clients_from_one_lease() {
    let fx = Fixture::start(FakeSpec::default(), RtspOptions::default());
    let (_, mut a) = spawn_client(fx.url("front-door")).await;
    next_video(&mut a).await;
    // Joiners of the running media wait in PLAY for the next key frame and
    // start on it (Retina rejects a stream that starts mid-NAL, and cannot
    // decode one that starts mid-GOP).
    for round in 0..3 {
        let (_, mut b) = spawn_client(fx.url("front-door")).await;
        let first = next_video(&mut b).await;
        assert!(first.keyframe, "joiner {round} starts on a key frame");
        for _ in 0..5 {
            next_video(&mut a).await;
            next_video(&mut b).await;
        }
    }
    assert_eq!(fx.opener.opens(), 1, "one live session for all clients");
    assert_eq!(fx.hub.stream(CAM).viewers(), 1, "one media, one lease");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unshared_late_joiner_starts_on_keyframe_with_one_session() {
    let opts = RtspOptions {
        shared_media: false,
        ..RtspOptions::default()
    };
    let fx = Fixture::start(FakeSpec::default(), opts);
    let (_, mut a) = spawn_client(fx.url("front-door")).await;
    let (_, mut b) = spawn_client(fx.url("12345")).await;
    assert!(next_video(&mut a).await.keyframe);
    assert!(next_video(&mut b).await.keyframe);
    for _ in 0..15 {
        next_video(&mut a).await;
        next_video(&mut b).await;
    }
    let (_, mut late) = spawn_client(fx.url("front-door")).await;
    assert!(
        next_video(&mut late).await.keyframe,
        "late joiner starts on a key frame"
    );
    assert_eq!(fx.opener.opens(), 1, "one live session for all clients");
    assert_eq!(fx.hub.stream(CAM).viewers(), 3);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_probes_and_clients_all_get_the_stream() {
    // A DESCRIBE-only probe, then at once the next client (ffprobe-then-ffmpeg
    // scripts, NVRs that probe first). gst-rtsp-server 1.22 handed the next
    // client the shared media its last client was unpreparing: 503.
    let fx = Fixture::start(FakeSpec::default(), RtspOptions::default());
    for round in 0..40 {
        let r = retina::client::Session::describe(
            fx.url("front-door"),
            retina::client::SessionOptions::default(),
        )
        .await;
        assert!(r.is_ok(), "DESCRIBE {round}: {:?}", r.err());
    }
    let (_, mut rx) = spawn_client(fx.url("front-door")).await;
    assert!(next_video(&mut rx).await.keyframe);
    assert_eq!(fx.opener.opens(), 1, "one live session throughout");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_closed_after_linger_once_last_client_leaves() {
    let fx = Fixture::start(FakeSpec::default(), RtspOptions::default());
    let (_, mut rx) = spawn_client(fx.url("front-door")).await;
    for _ in 0..10 {
        next_video(&mut rx).await;
    }
    drop(rx); // the client task ends and drops its connection
    let left = Instant::now();
    // The shared media outlives its last client by ~2 s at most (`rtsp::hold`).
    assert!(
        fx.opener
            .wait_closes(1, LINGER + Duration::from_secs(4))
            .await,
        "source closed within linger + 4 s"
    );
    assert!(left.elapsed() >= LINGER - Duration::from_millis(100));
    assert_eq!(fx.hub.stream(CAM).viewers(), 0);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_is_held_until_the_first_keyframe() {
    let spec = FakeSpec {
        first_frame_delay: Duration::from_secs(3),
        ..FakeSpec::default()
    };
    let fx = Fixture::start(spec, RtspOptions::default());
    let t0 = Instant::now();
    let (described, mut rx) = spawn_client(fx.url("front-door")).await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(2900),
        "DESCRIBE held: {waited:?}"
    );
    assert_eq!(described.video_size, Some((640, 360)));
    assert!(next_video(&mut rx).await.keyframe);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_fails_after_timeout_when_camera_never_starts() {
    let spec = FakeSpec {
        first_frame_delay: Duration::from_secs(3600),
        ..FakeSpec::default()
    };
    let opts = RtspOptions {
        describe_timeout: Duration::from_secs(1),
        ..RtspOptions::default()
    };
    let fx = Fixture::start(spec, opts);
    let t0 = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), play(fx.url("front-door"), None))
        .await
        .expect("answered in time");
    assert!(r.is_err(), "DESCRIBE fails");
    assert!(t0.elapsed() < Duration::from_secs(5));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_is_enforced() {
    let opts = RtspOptions {
        username: Some("viewer".into()),
        password: Some(Secret::new("s3cret".into())),
        ..RtspOptions::default()
    };
    let fx = Fixture::start(FakeSpec::default(), opts);
    let denied = play(fx.url("front-door"), None).await;
    assert!(denied.is_err(), "no credentials, no stream");
    let creds = Credentials {
        username: "viewer".into(),
        password: "s3cret".into(),
    };
    let (described, _demuxed) = tokio::time::timeout(
        Duration::from_secs(15),
        play(fx.url("front-door"), Some(creds)),
    )
    .await
    .expect("in time")
    .expect("authorised client plays");
    assert_eq!(described.video_size, Some((640, 360)));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_sees_h264_with_the_right_size_and_opus() {
    if which("ffprobe").is_none() {
        tracing::warn!("ffprobe not installed; skipping");
        return;
    }
    let fx = Fixture::start(FakeSpec::default(), RtspOptions::default());
    let out = ffprobe(
        &[
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
            "-of",
            "json",
        ],
        &fx.url("front-door"),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let streams = json["streams"].as_array().expect("streams");
    let v = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert!(
        streams
            .iter()
            .any(|s| s["codec_type"] == "audio" && s["codec_name"] == "opus"),
        "opus audio: {json}"
    );
    fx.stop().await;
}

/// A video-only client (Retina) leaves the shared media's audio unfed; a second
/// client that sets up the audio stream gets Opus packets all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_flows_to_a_client_joining_a_video_only_media() {
    if which("ffprobe").is_none() {
        tracing::warn!("ffprobe not installed; skipping");
        return;
    }
    let fx = Fixture::start(FakeSpec::default(), RtspOptions::default());
    let (_, mut video_only) = spawn_client(fx.url("front-door")).await;
    next_video(&mut video_only).await;
    let out = ffprobe(
        &[
            "-select_streams",
            "a:0",
            "-read_intervals",
            "%+#10",
            "-show_entries",
            "packet=codec_type",
            "-of",
            "csv",
        ],
        &fx.url("front-door"),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains("audio")).count(),
        10,
        "ten audio packets: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first client kept playing meanwhile.
    next_video(&mut video_only).await;
    fx.stop().await;
}

/// What NVRs and players read besides the media: the SDP's `fmtp` (parameter sets,
/// profile) and PLAY's `RTP-Info`, which must name the first packet sent; then
/// one access unit per RTP timestamp with the marker on its last packet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_fmtp_and_rtp_info_describe_the_packets_sent() {
    use base64::Engine as _;
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

    let fx = Fixture::start(FakeSpec::default(), RtspOptions::default());
    let url = fx.url("front-door");
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", url.port().unwrap()))
        .await
        .unwrap();
    let mut rtsp = BufReader::new(stream);
    let mut cseq = 0;
    let mut request = async |rtsp: &mut BufReader<tokio::net::TcpStream>, line: String| {
        cseq += 1;
        let msg = format!("{line}\r\nCSeq: {cseq}\r\n\r\n");
        rtsp.get_mut().write_all(msg.as_bytes()).await.unwrap();
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            rtsp.read_line(&mut l).await.unwrap();
            if l.trim().is_empty() {
                break;
            }
            headers.push(l.trim().to_owned());
        }
        let header = |name: &str| {
            headers.iter().find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        assert!(headers[0].ends_with("200 OK"), "{line}: {headers:?}");
        let mut body = vec![0; header("content-length").map_or(0, |n| n.parse().unwrap())];
        rtsp.read_exact(&mut body).await.unwrap();
        (
            header("session"),
            header("rtp-info"),
            String::from_utf8(body).unwrap(),
        )
    };
    let io = Duration::from_secs(30);
    let (_, _, sdp) = tokio::time::timeout(
        io,
        request(
            &mut rtsp,
            format!("DESCRIBE {url} RTSP/1.0\r\nAccept: application/sdp"),
        ),
    )
    .await
    .expect("DESCRIBE answered");
    let fmtp = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=fmtp:96 "))
        .expect("video fmtp");
    let param = |k: &str| {
        fmtp.split(';')
            .find_map(|p| p.trim().strip_prefix(k)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("{k} in {fmtp}"))
    };
    assert_eq!(param("packetization-mode"), "1");
    let sets: Vec<Vec<u8>> = param("sprop-parameter-sets")
        .split(',')
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap())
        .collect();
    assert_eq!(sets.len(), 2);
    assert_eq!((sets[0][0] & 0x1f, sets[1][0] & 0x1f), (7, 8), "SPS, PPS");
    let sps = &sets[0];
    assert_eq!(
        param("profile-level-id"),
        format!("{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3])
    );

    let (session, _, _) = request(
        &mut rtsp,
        format!("SETUP {url}/stream=0 RTSP/1.0\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1"),
    )
    .await;
    let session = session
        .expect("session")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (_, rtp_info, _) = request(
        &mut rtsp,
        format!("PLAY {url} RTSP/1.0\r\nSession: {session}\r\nRange: npt=0-"),
    )
    .await;
    let rtp_info = rtp_info.expect("RTP-Info");
    let field = |k: &str| -> u32 {
        rtp_info
            .split(';')
            .find_map(|p| p.trim().strip_prefix(k)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("{k} in {rtp_info}"))
            .parse()
            .unwrap()
    };
    let (mut want_seq, rtptime) = (field("seq") as u16, field("rtptime"));

    // Interleaved packets: channel 0 is video RTP.
    let (mut first, mut units, mut last_marker, mut last_ts) = (true, 0, true, 0u32);
    while units < 10 {
        let mut head = [0u8; 4];
        tokio::time::timeout(io, rtsp.read_exact(&mut head))
            .await
            .expect("media in time")
            .unwrap();
        assert_eq!(head[0], b'$');
        let mut p = vec![0; usize::from(u16::from_be_bytes([head[2], head[3]]))];
        rtsp.read_exact(&mut p).await.unwrap();
        if head[1] != 0 {
            continue;
        }
        let seq = u16::from_be_bytes([p[2], p[3]]);
        let ts = u32::from_be_bytes(p[4..8].try_into().unwrap());
        assert_eq!(seq, want_seq, "consecutive from RTP-Info's seq");
        want_seq = seq.wrapping_add(1);
        if first {
            assert_eq!(ts, rtptime, "RTP-Info's rtptime is the first packet's");
            first = false;
        } else if ts != last_ts {
            assert!(last_marker, "a new timestamp only after a marked packet");
            units += 1;
        } else {
            assert!(
                !last_marker,
                "no packet after the marker in one access unit"
            );
        }
        last_marker = p[1] & 0x80 != 0;
        last_ts = ts;
    }
    drop(rtsp);
    fx.stop().await;
}

/// Runs ffprobe with `args` over interleaved TCP against `url` (60 s at most).
async fn ffprobe(args: &[&str], url: &url::Url) -> std::process::Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp"])
            .args(args)
            .arg(url.as_str())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ffprobe finishes")
    .expect("ffprobe runs")
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(bin))
        .find(|p| p.is_file())
}
