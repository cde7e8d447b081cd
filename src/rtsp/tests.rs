//! RTSP server unit tests: paths follow a hand-fed camera directory; Retina
//! plays them on 127.0.0.1 with a free port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions};
use retina::codec::CodecItem;
use tokio_util::sync::CancellationToken;

use super::mounts::valid_path_segment;
use super::{RtspOptions, RtspServer};
use crate::base::CameraId;
use crate::cameras::testutil::{entry, fixed};
use crate::codec::encode;
use crate::media::testutil::{FakeClip, FakeOpener, FakeSpec};
use crate::media::{Hub, HubOptions};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn rejects_bad_mount_paths() {
    assert!(valid_path_segment("front-door_2.cam~"));
    assert!(!valid_path_segment(""));
    assert!(!valid_path_segment("a/b"));
    assert!(!valid_path_segment("sp ace"));
}

#[test]
fn mount_of_a_request_path_drops_the_control_part() {
    assert_eq!(super::strip_control("/front-door"), "/front-door");
    assert_eq!(super::strip_control("/front-door/stream=0"), "/front-door");
    assert_eq!(
        super::strip_control("/front-door/event"),
        "/front-door/event"
    );
    assert_eq!(
        super::strip_control("/front-door/event/stream=1"),
        "/front-door/event"
    );
    assert_eq!(
        super::strip_control("/a4c1380f0001_event/"),
        "/a4c1380f0001_event"
    );
}

/// Describes `url`, sets up its video and returns the first video frame's
/// key-frame flag, with the session still open.
async fn play_first_frame(url: url::Url) -> Result<(bool, retina::client::Demuxed), String> {
    let mut session = Session::describe(url, SessionOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let video = session
        .streams()
        .iter()
        .position(|s| s.media() == "video")
        .ok_or("no video stream")?;
    session
        .setup(video, SetupOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut demuxed = session
        .play(PlayOptions::default())
        .await
        .map_err(|e| e.to_string())?
        .demuxed()
        .map_err(|e| e.to_string())?;
    loop {
        match demuxed.next().await {
            Some(Ok(CodecItem::VideoFrame(f))) => {
                return Ok((f.is_random_access_point(), demuxed));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("stream ended".into()),
        }
    }
}

/// Polls `check` every 50 ms until it holds (bounded).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} in time"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_follow_the_directory() {
    let video = encode::h264_test_pattern(30, 320, 180, 15).expect("H.264 clip");
    let opener = FakeOpener::new(FakeSpec {
        clip: Some(Arc::new(FakeClip {
            video,
            audio: Vec::new(),
        })),
        audio: false,
        ..FakeSpec::default()
    });
    let cancel = CancellationToken::new();
    let hub = Hub::new(
        opener,
        HubOptions {
            linger: Duration::from_millis(100),
            ..HubOptions::default()
        },
        cancel.child_token(),
    );
    let (directory, feed) = fixed(vec![]);
    let server = RtspServer::start(
        RtspOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            describe_timeout: Duration::from_secs(10),
            ..RtspOptions::default()
        },
        hub.clone(),
        directory,
        cancel.child_token(),
    )
    .expect("server starts");
    let url =
        |p: &str| url::Url::parse(&format!("rtsp://127.0.0.1:{}/{p}", server.port())).expect("URL");

    let none = Session::describe(url("shed"), SessionOptions::default()).await;
    assert!(none.is_err(), "an unknown camera has no path");

    let shed = entry(7, "Shed");
    feed.set(vec![shed.clone()]);
    let (key, playing) = tokio::time::timeout(WAIT, async {
        loop {
            match play_first_frame(url("shed")).await {
                Ok(p) => break p,
                // Until the GLib thread applied the change, DESCRIBE gets 404.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("the added camera plays");
    assert!(key, "a new client starts on a key frame");
    let stream = hub.stream(CameraId::new(7));
    assert_eq!(stream.viewers(), 1);

    feed.set(vec![]);
    eventually("the removed camera's viewer gone", || stream.viewers() == 0).await;
    drop(playing);
    let gone = Session::describe(url("shed"), SessionOptions::default()).await;
    assert!(gone.is_err(), "a removed camera has no path");
    let by_device = Session::describe(url(&shed.camera.device_id), SessionOptions::default()).await;
    assert!(by_device.is_err(), "nor its device-id path");

    server.shutdown().await;
    hub.shutdown().await;
    cancel.cancel();
}
