//! The announcer against the hub with a fake live source that takes talkback:
//! real decoding and encoding (GStreamer), real time.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::base::CameraId;
use crate::codec::clip::{sine, wav};
use crate::media::testutil::{FakeOpener, FakeSpec};
use crate::media::{HubOptions, TalkbackCodec};

fn setup(spec: FakeSpec) -> (Announcer, Hub, Arc<FakeOpener>) {
    let opener = FakeOpener::new(spec);
    let hub = Hub::new(
        opener.clone(),
        HubOptions {
            linger: Duration::from_millis(200),
            ..HubOptions::default()
        },
        CancellationToken::new(),
    );
    let a = Announcer::new(
        hub.clone(),
        AnnounceOptions::default(),
        CancellationToken::new(),
    );
    (a, hub, opener)
}

fn talking() -> FakeSpec {
    FakeSpec {
        talkback: true,
        ..FakeSpec::default()
    }
}

fn wav_request(len: Duration) -> AnnounceRequest {
    let tone = sine(len, 440.0, 0.5, 16_000);
    AnnounceRequest {
        clip: Clip::Audio {
            data: wav(&tone).into(),
            kind: AudioType::Wav,
        },
        volume: None,
        wait: Duration::ZERO,
    }
}

/// Sum of received packet durations in ms at `rate`.
fn received_ms(o: &FakeOpener, codec: TalkbackCodec, rate: u64) -> u64 {
    let t = o.talkback();
    assert!(t.iter().all(|(_, p)| p.codec == codec));
    t.iter().map(|(_, p)| u64::from(p.samples)).sum::<u64>() * 1000 / rate
}

#[tokio::test(flavor = "multi_thread")]
async fn opus_clip_plays_at_real_time_pace() {
    let (a, hub, opener) = setup(FakeSpec {
        audio: true,
        ..talking()
    });
    let t0 = std::time::Instant::now();
    let r = a
        .announce(CameraId::new(1), wav_request(Duration::from_secs(1)))
        .await;
    let r = r.unwrap();
    assert_eq!(
        (r.codec, r.source, r.camera),
        ("opus", "audio", CameraId::new(1))
    );
    assert!((990..=1010).contains(&r.clip_ms), "{r:?}");
    assert!((980..=1040).contains(&r.played_ms), "{r:?}");
    let got = received_ms(&opener, TalkbackCodec::Opus, 48_000);
    assert!((980..=1040).contains(&got), "{got} ms received");
    // Real-time pace: the packets span about the clip, not a burst.
    let t = opener.talkback();
    let span = t.last().unwrap().0 - t.first().unwrap().0;
    assert!(span >= Duration::from_millis(800), "{span:?}");
    assert!(t0.elapsed() >= Duration::from_secs(1));
    // The floor is free again.
    assert_eq!(hub.floors().holder(CameraId::new(1)), None);
    a.shutdown().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pcmu_sessions_get_mu_law() {
    let (a, hub, opener) = setup(talking());
    let r = a
        .announce(CameraId::new(1), wav_request(Duration::from_millis(600)))
        .await
        .unwrap();
    assert_eq!(r.codec, "pcmu");
    let got = received_ms(&opener, TalkbackCodec::Pcmu, 8_000);
    assert!((580..=620).contains(&got), "{got} ms received");
    assert!(opener.talkback().iter().all(|(_, p)| p.data.len() <= 160));
    a.shutdown().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_floor_is_shared_with_other_talkers() {
    let (a, hub, opener) = setup(talking());
    assert_eq!(
        hub.floors()
            .take(CameraId::new(1), "whep-a", Claim::Explicit),
        Ok(None)
    );
    // Someone talks: refused at once, naming them; nothing was sent.
    let e = a
        .announce(CameraId::new(1), wav_request(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AnnounceError::FloorTaken { holder, by: Claim::Explicit, .. } if holder == "whep-a"),
        "{e:?}"
    );
    assert_eq!(e.http_status(), 409);
    assert!(opener.talkback().is_empty());

    // Asked to wait: plays once the talker lets go.
    let floors = hub.floors().clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        floors.release(CameraId::new(1), "whep-a")
    });
    let mut req = wav_request(Duration::from_millis(200));
    req.wait = Duration::from_secs(10);
    let r = a.announce(CameraId::new(1), req).await.unwrap();
    assert!(release.await.unwrap());
    assert!(r.waited_ms >= 250, "{r:?}");
    assert!(!opener.talkback().is_empty());
    a.shutdown().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_cameras_that_cannot_talk() {
    let (a, hub, opener) = setup(FakeSpec::default());
    let bad = AnnounceRequest {
        clip: Clip::Audio {
            data: bytes::Bytes::from_static(b"<html>not audio</html>"),
            kind: AudioType::Wav,
        },
        volume: None,
        wait: Duration::ZERO,
    };
    let e = a.announce(CameraId::new(1), bad).await.unwrap_err();
    assert_eq!(e.http_status(), 415, "{e:?}");
    assert_eq!(opener.opens(), 0, "bad files never open a live call");

    let e = a
        .announce(CameraId::new(1), wav_request(Duration::from_secs(31)))
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 413, "{e:?}");

    let mut loud = wav_request(Duration::from_millis(100));
    loud.volume = Some(0);
    assert!(matches!(
        a.announce(CameraId::new(1), loud).await,
        Err(AnnounceError::BadRequest(_))
    ));

    // A session without talkback.
    let e = a
        .announce(CameraId::new(1), wav_request(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert!(matches!(e, AnnounceError::CannotTalk { .. }), "{e:?}");
    assert_eq!(
        hub.floors().holder(CameraId::new(1)),
        None,
        "the floor is released"
    );
    a.shutdown().await;
    hub.shutdown().await;
}
