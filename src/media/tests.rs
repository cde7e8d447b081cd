//! Hub behaviour tests on paused Tokio time with the scripted [`FakeOpener`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

use super::testutil::{FakeOpener, FakeSpec, fake_origin};
use super::*;
use crate::base::{CameraId, ErrorKind, ResultExt as _};

const CAM: CameraId = CameraId::new(1);

fn hub(opener: Arc<FakeOpener>, opts: HubOptions) -> Hub {
    Hub::new(opener, opts, CancellationToken::new())
}

async fn wait_state(rx: &mut watch::Receiver<StreamStatus>, want: StreamState) -> StreamStatus {
    timeout(Duration::from_secs(120), rx.wait_for(|s| s.state == want))
        .await
        .expect("state reached in time")
        .expect("status sender alive")
        .clone()
}

async fn recv(sub: &mut Subscriber) -> Arc<Frame> {
    timeout(Duration::from_secs(30), sub.recv())
        .await
        .expect("frame in time")
        .expect("frame, not an error")
}

#[tokio::test(start_paused = true)]
async fn lease_starts_source_and_linger_stops_it() {
    let opener = FakeOpener::new(FakeSpec::default());
    let hub = hub(opener.clone(), HubOptions::default());
    let mut status = hub.status(CAM);
    assert_eq!(status.borrow().state, StreamState::Inactive);
    assert_eq!(opener.opens(), 0);

    let lease = hub.lease(CAM);
    wait_state(&mut status, StreamState::Active).await;
    assert_eq!(opener.opens(), 1);
    let second = lease.clone();
    assert_eq!(lease.stream().viewers(), 2);
    drop(lease);
    sleep(Duration::from_secs(30)).await;
    assert_eq!(opener.closes(), 0, "one lease still held");
    drop(second);

    let dropped_at = Instant::now();
    sleep(Duration::from_secs(9)).await;
    assert_eq!(opener.closes(), 0, "still lingering");
    assert_eq!(status.borrow().state, StreamState::Active);
    assert!(opener.wait_closes(1, Duration::from_secs(5)).await);
    let waited = dropped_at.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    wait_state(&mut status, StreamState::Inactive).await;
    assert_eq!(opener.opens(), 1);
    assert!(
        hub.stream(CAM).video_params().is_none(),
        "stale params cleared"
    );

    // A new lease after the stop opens a new session.
    let _lease = hub.lease(CAM);
    wait_state(&mut status, StreamState::Active).await;
    assert_eq!(opener.opens(), 2);
}

#[tokio::test(start_paused = true)]
async fn lease_within_linger_keeps_the_same_session() {
    let opener = FakeOpener::new(FakeSpec::default());
    let hub = hub(opener.clone(), HubOptions::default());
    let mut status = hub.status(CAM);
    drop(hub.lease(CAM));
    wait_state(&mut status, StreamState::Active).await;
    sleep(Duration::from_secs(5)).await;
    let lease = hub.lease(CAM);
    sleep(Duration::from_secs(60)).await;
    assert_eq!((opener.opens(), opener.closes()), (1, 0));
    drop(lease);
    assert!(opener.wait_closes(1, Duration::from_secs(11)).await);
}

#[tokio::test(start_paused = true)]
async fn late_joiner_starts_on_keyframe_with_audio() {
    let opener = FakeOpener::new(FakeSpec {
        audio: true,
        ..FakeSpec::default()
    });
    let hub = hub(opener.clone(), HubOptions::default());
    let lease = hub.lease(CAM);
    let params = lease
        .stream()
        .wait_ready(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((params.width, params.height), (1920, 1080));
    assert_eq!(params.profile_level_id, "640028");
    assert!(lease.stream().has_audio());
    sleep(Duration::from_millis(1500)).await; // mid-GOP

    let mut sub = lease.subscribe();
    let first = recv(&mut sub).await;
    assert!(first.is_video_keyframe());
    let mut prev = first.seq;
    let (mut video, mut audio) = (0, 0);
    for _ in 0..200 {
        let f = recv(&mut sub).await;
        assert_eq!(f.seq, prev + 1, "consecutive, nothing lost or repeated");
        prev = f.seq;
        match f.kind {
            MediaKind::Video => video += 1,
            MediaKind::Audio => audio += 1,
        }
    }
    assert!(video > 50 && audio > 80, "video {video} audio {audio}");
    assert_eq!(opener.opens(), 1);
}

/// A lease on [`CAM`] once its stream is ready (a key frame arrived).
async fn ready_lease(hub: &Hub) -> Lease {
    let lease = hub.lease(CAM);
    lease
        .stream()
        .wait_ready(Duration::from_secs(5))
        .await
        .unwrap();
    lease
}

/// A hub streaming a camera with audio, and the lease that keeps it running.
async fn streaming_with_audio() -> (Hub, Lease) {
    let opener = FakeOpener::new(FakeSpec {
        audio: true,
        ..FakeSpec::default()
    });
    let hub = hub(opener, HubOptions::default());
    let lease = ready_lease(&hub).await;
    (hub, lease)
}

/// Receives `n` frames, checking that video frames keep coming one after the
/// other from `video_index` on; returns the last video index and the audio count.
async fn video_run(sub: &mut Subscriber, n: usize, mut video_index: Option<u32>) -> (u32, usize) {
    let mut audio = 0;
    for _ in 0..n {
        let f = recv(sub).await;
        if f.kind == MediaKind::Audio {
            audio += 1;
            continue;
        }
        let (_, i) = fake_origin(&f).expect("synthetic frame");
        if let Some(prev) = video_index {
            assert_eq!(i, prev + 1, "video in order, nothing lost or repeated");
        }
        video_index = Some(i);
    }
    (video_index.expect("some video"), audio)
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_switches_audio_off_and_on_without_losing_video() {
    let (_hub, lease) = streaming_with_audio().await;
    let mut sub = lease.subscribe();
    let (last, audio) = video_run(&mut sub, 60, None).await;
    assert!(audio > 0, "audio is delivered by default");

    // Frames pile up in the receiver before the switch: they are kept.
    sleep(Duration::from_millis(200)).await;
    sub.set_audio(false);
    let (last, audio) = video_run(&mut sub, 100, Some(last)).await;
    assert_eq!(audio, 0, "a video-only subscriber gets no audio");

    sleep(Duration::from_millis(200)).await;
    sub.set_audio(true);
    let (_, audio) = video_run(&mut sub, 100, Some(last)).await;
    assert!(audio > 20, "audio again after switching back: {audio}");
}

#[tokio::test(start_paused = true)]
async fn a_video_only_subscriber_starts_on_the_cached_gop_without_audio() {
    let (_hub, lease) = streaming_with_audio().await;
    sleep(Duration::from_millis(500)).await; // mid-GOP: the cache holds audio too
    let mut sub = lease.subscribe();
    sub.set_audio(false);
    assert!(recv(&mut sub).await.is_video_keyframe());
    let (_, audio) = video_run(&mut sub, 60, None).await;
    assert_eq!(audio, 0);
}

#[tokio::test(start_paused = true)]
async fn laggard_resyncs_at_keyframe_without_blocking_others() {
    let opener = FakeOpener::new(FakeSpec::default());
    let opts = HubOptions {
        subscriber_buffer: 16,
        ..HubOptions::default()
    };
    let hub = hub(opener.clone(), opts);
    let lease = ready_lease(&hub).await;
    let mut fast = lease.subscribe();
    let mut slow = lease.subscribe();
    assert!(recv(&mut slow).await.is_video_keyframe());

    // The fast subscriber reads 3 s of frames while the slow one reads nothing.
    let mut prev = recv(&mut fast).await.seq;
    for _ in 0..90 {
        let f = recv(&mut fast).await;
        assert_eq!(f.seq, prev + 1);
        prev = f.seq;
    }
    match slow.recv().await {
        Err(RecvError::Lagged { dropped }) => assert!(dropped > 0),
        other => panic!("expected Lagged, got {other:?}"),
    }
    let f = recv(&mut slow).await;
    assert!(f.is_video_keyframe(), "resumes at a key frame");
    let mut prev = f.seq;
    for _ in 0..60 {
        let f = recv(&mut slow).await;
        assert_eq!(f.seq, prev + 1);
        prev = f.seq;
    }
}

#[tokio::test(start_paused = true)]
async fn renewal_is_seamless_with_monotonic_pts() {
    let spec = FakeSpec {
        audio: true,
        cap: Some(Duration::from_secs(20)),
        ..FakeSpec::default()
    };
    // Each renewal has an unrelated PTS base, like separate Ring calls, and starts with
    // 10 delta frames that the hub must drop while the old session keeps playing.
    let script = (0..4)
        .map(|i| FakeSpec {
            start_pts: 5_000_000 - i * 1_000_000,
            first_keyframe: if i == 0 { 0 } else { 10 },
            honor_keyframe_requests: i == 0,
            ..spec.clone()
        })
        .collect();
    let opener = FakeOpener::scripted(spec, script);
    let opts = HubOptions {
        renew_before: Duration::from_secs(5),
        ..HubOptions::default()
    };
    let hub = hub(opener.clone(), opts);
    let lease = hub.lease(CAM);
    let mut status = lease.stream().status();
    let mut sub = lease.subscribe();
    wait_state(&mut status, StreamState::Active).await;
    status.mark_unchanged();

    let (mut last_video, mut last_audio): (Option<Arc<Frame>>, Option<u64>) = (None, None);
    let mut switches = Vec::new();
    while last_video.as_ref().is_none_or(|f| f.pts < 40 * 90_000) {
        let f = recv(&mut sub).await;
        match f.kind {
            MediaKind::Video => {
                if let Some(prev) = &last_video {
                    assert_eq!(
                        f.pts,
                        prev.pts + 3000,
                        "no gap and no overlap at {}",
                        prev.pts
                    );
                    let (ps, _) = fake_origin(prev).unwrap();
                    let (s, _) = fake_origin(&f).unwrap();
                    if s != ps {
                        assert!(f.is_video_keyframe(), "switch happens at a key frame");
                        assert_eq!(fake_origin(&f).unwrap().1, 10);
                        switches.push(f.pts);
                    }
                }
                last_video = Some(f);
            }
            MediaKind::Audio => {
                if let Some(prev) = last_audio {
                    assert!(f.pts > prev, "audio pts monotonic");
                    assert!(f.pts - prev <= 2 * 960, "no audio gap");
                }
                last_audio = Some(f.pts);
            }
        }
    }
    assert_eq!(switches.len(), 2, "renewed at 15 s and 30 s: {switches:?}");
    assert_eq!(opener.opens(), 3);
    assert!(opener.wait_closes(2, Duration::from_secs(1)).await);
    assert!(!status.has_changed().unwrap(), "status stayed active");
}

#[tokio::test(start_paused = true)]
async fn failed_renewal_keeps_the_old_session_playing() {
    let capped = FakeSpec {
        cap: Some(Duration::from_secs(60)),
        ..FakeSpec::default()
    };
    let broken = FakeSpec {
        open_error: Some(SourceError::new(ErrorKind::Unavailable, "busy")),
        ..capped.clone()
    };
    let opener = FakeOpener::scripted(capped.clone(), vec![capped, broken]);
    let opts = HubOptions {
        renew_before: Duration::from_secs(20),
        ..HubOptions::default()
    };
    let hub = hub(opener.clone(), opts);
    let lease = hub.lease(CAM);
    let mut status = lease.stream().status();
    let mut sub = lease.subscribe();
    wait_state(&mut status, StreamState::Active).await;
    status.mark_unchanged();
    let mut prev = recv(&mut sub).await;
    let mut origins = std::collections::BTreeSet::new();
    // 40 s renewal attempt fails, a retry ~1 s later succeeds; no gap throughout.
    while prev.pts < 50 * 90_000 {
        let f = recv(&mut sub).await;
        assert_eq!(f.pts, prev.pts + 3000, "no gap");
        origins.insert(fake_origin(&f).unwrap().0);
        prev = f;
    }
    assert_eq!(opener.opens(), 3);
    assert_eq!(origins.into_iter().collect::<Vec<_>>(), vec![0, 2]);
    assert!(!status.has_changed().unwrap(), "stayed active");
}

#[tokio::test(start_paused = true)]
async fn unexpected_end_recovers_with_monotonic_pts() {
    let first = FakeSpec {
        end_after: Some(60),
        ..FakeSpec::default()
    };
    let opener = FakeOpener::scripted(FakeSpec::default(), vec![first]);
    let hub = hub(opener.clone(), HubOptions::default());
    let lease = hub.lease(CAM);
    let mut sub = lease.subscribe();
    let mut last = recv(&mut sub).await;
    assert!(last.is_video_keyframe());
    let mut saw_second = false;
    for _ in 0..150 {
        let f = recv(&mut sub).await;
        assert!(f.pts > last.pts, "pts never go backwards");
        if fake_origin(&f).unwrap().0 == 1 && !saw_second {
            saw_second = true;
            assert!(f.is_video_keyframe());
            let gap = f.pts - last.pts;
            assert!(gap >= 90_000 / 2, "recovery gap kept in timestamps: {gap}");
        }
        last = f;
    }
    assert!(saw_second);
    assert_eq!(opener.opens(), 2);
    assert!(opener.wait_closes(1, Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn failure_sets_failed_then_retries_with_backoff() {
    let failing = FakeSpec {
        open_error: Some(SourceError::new(ErrorKind::Unavailable, "ring says no")),
        ..FakeSpec::default()
    };
    let opener = FakeOpener::scripted(
        FakeSpec::default(),
        vec![failing.clone(), failing.clone(), failing],
    );
    let hub = hub(opener.clone(), HubOptions::default());
    let mut status = hub.status(CAM);
    let started = Instant::now();
    let _lease = hub.lease(CAM);
    let failed = wait_state(&mut status, StreamState::Failed).await;
    assert_eq!(failed.last_error.as_deref(), Some("ring says no"));
    assert_eq!(failed.error_kind, Some(ErrorKind::Unavailable));
    assert_eq!(opener.opens(), 1);
    wait_state(&mut status, StreamState::Active).await;
    assert_eq!(opener.opens(), 4);
    // 1 s + 2 s + 4 s, each jittered by at most -25 %.
    assert!(
        started.elapsed() >= Duration::from_millis(5250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.borrow().last_error, None, "cleared once active");
}

#[tokio::test(start_paused = true)]
async fn no_keyframe_is_a_failure_and_wait_ready_times_out() {
    let opts = HubOptions {
        keyframe_timeout: Duration::from_secs(5),
        ..HubOptions::default()
    };
    let silent = FakeSpec {
        first_keyframe: u32::MAX,
        honor_keyframe_requests: false,
        ..FakeSpec::default()
    };
    let opener = FakeOpener::new(silent);
    let hub = hub(opener.clone(), opts);
    let stream = hub.stream(CAM);
    let err = stream.wait_ready(Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(err, HubError::NotLeased { .. }));
    let _lease = stream.lease();
    let err = stream.wait_ready(Duration::from_secs(2)).await.unwrap_err();
    assert!(matches!(err, HubError::Timeout { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    let mut status = stream.status();
    let failed = wait_state(&mut status, StreamState::Failed).await;
    assert_eq!(failed.error_kind, Some(ErrorKind::DeadlineExceeded));
    assert!(opener.wait_closes(1, Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn describe_style_wait_for_slow_first_keyframe() {
    let opener = FakeOpener::new(FakeSpec {
        first_frame_delay: Duration::from_secs(3),
        ..FakeSpec::default()
    });
    let hub = hub(opener.clone(), HubOptions::default());
    let lease = hub.lease(CAM);
    let t0 = Instant::now();
    let params = lease
        .stream()
        .wait_ready(Duration::from_secs(20))
        .await
        .unwrap();
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(params.height, 1080);
    let mut sub = lease.subscribe();
    assert!(recv(&mut sub).await.is_video_keyframe());
}

/// A hub streaming `CAM` (GOP of 300 frames, so no key frame comes by itself
/// during a test) with its key frame cached.
async fn streaming_with_long_gop() -> (Arc<FakeOpener>, Hub, Lease) {
    let opener = FakeOpener::new(FakeSpec {
        gop: 300,
        ..FakeSpec::default()
    });
    let hub = hub(opener.clone(), HubOptions::default());
    let lease = ready_lease(&hub).await;
    (opener, hub, lease)
}

#[tokio::test(start_paused = true)]
async fn keyframe_requests_are_forwarded_only_when_stale() {
    let (opener, _hub, lease) = streaming_with_long_gop().await;
    let base = opener.keyframe_requests();
    lease.stream().request_keyframe();
    sleep(Duration::from_millis(10)).await;
    assert_eq!(
        opener.keyframe_requests(),
        base,
        "cached key frame is fresh"
    );
    sleep(Duration::from_secs(3)).await;
    lease.stream().request_keyframe();
    lease.stream().request_keyframe();
    sleep(Duration::from_millis(10)).await;
    assert_eq!(
        opener.keyframe_requests(),
        base + 1,
        "forwarded once, rate limited"
    );
    // The forced key frame refreshes the cache, so a late joiner starts there.
    sleep(Duration::from_millis(100)).await;
    let mut sub = lease.subscribe();
    let f = recv(&mut sub).await;
    assert!(f.is_video_keyframe());
    assert!(fake_origin(&f).unwrap().1 > 90);
}

#[tokio::test(start_paused = true)]
async fn a_new_keyframe_is_asked_for_even_when_the_cached_one_is_fresh() {
    let (opener, _hub, lease) = streaming_with_long_gop().await;
    let base = opener.keyframe_requests();
    lease.stream().request_new_keyframe();
    lease.stream().request_new_keyframe();
    sleep(Duration::from_millis(10)).await;
    assert_eq!(
        opener.keyframe_requests(),
        base + 1,
        "forwarded despite a fresh cached key frame, once per interval"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_sources_and_ends_subscribers() {
    let opener = FakeOpener::new(FakeSpec::default());
    let hub = hub(opener.clone(), HubOptions::default());
    let lease = ready_lease(&hub).await;
    let mut sub = lease.subscribe();
    hub.shutdown().await;
    assert_eq!(opener.closes(), 1);
    assert_eq!(hub.status(CAM).borrow().state, StreamState::Inactive);
    let mut end = None;
    for _ in 0..100 {
        if let Err(e) = sub.recv().await {
            end = Some(e);
            break;
        }
    }
    assert_eq!(end, Some(RecvError::Closed));
    drop(lease);
    // Leases after shutdown never start anything.
    let _l = hub.lease(CAM);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(opener.opens(), 1);
}

#[test]
fn status_serializes_snake_case() {
    let s = StreamStatus {
        state: StreamState::Activating,
        last_error: None,
        error_kind: Some(ErrorKind::DeadlineExceeded),
        learned_cap_ms: Some(20_000),
        video_codec: Some(crate::media::VideoCodec::H265),
    };
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        serde_json::json!({"state": "activating", "last_error": null,
                           "error_kind": "deadline_exceeded", "learned_cap_ms": 20000,
                           "video_codec": "h265"})
    );
}

/// Ring ends sessions after 10 s although the source declares 600 s: the first
/// early end costs one gap, then the hub renews ahead of the learned cap, and
/// the learned cap is reported and persisted.
#[tokio::test(start_paused = true)]
async fn early_session_end_teaches_the_cap() {
    let spec = FakeSpec {
        cap: Some(Duration::from_secs(600)),
        end_after: Some(300), // 10 s at 30 fps
        ..FakeSpec::default()
    };
    let opener = FakeOpener::new(spec);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("session_caps.json");
    let opts = HubOptions {
        renew_before: Duration::from_secs(30),
        cap_file: Some(file.clone()),
        ..HubOptions::default()
    };
    let hub = hub(opener.clone(), opts.clone());
    let lease = hub.lease(CAM);
    let mut status = lease.stream().status();
    assert_eq!(status.borrow().learned_cap_ms, None);
    let mut sub = lease.subscribe();
    let mut gaps = Vec::new();
    let mut prev: Option<u64> = None;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let f = recv(&mut sub).await;
        if f.kind != MediaKind::Video {
            continue;
        }
        if let Some(p) = prev
            && f.pts - p > 3000
        {
            gaps.push(start.elapsed());
        }
        prev = Some(f.pts);
    }
    assert_eq!(gaps.len(), 1, "one gap, at the first early end: {gaps:?}");
    assert!(gaps[0] < Duration::from_secs(13), "{gaps:?}");
    let learned = status.borrow_and_update().learned_cap_ms.expect("learned");
    assert!((9_900..=10_100).contains(&learned), "{learned} ms");
    // Renewed at about 5 s (half the cap) from then on: ~10 sessions in 60 s.
    assert!(opener.opens() >= 9, "{} opens", opener.opens());

    // A new hub (a restart) starts with the persisted cap.
    wait_for_file(&file).await;
    let again = Hub::new(opener.clone(), opts, CancellationToken::new());
    let st = again.status(CAM).borrow().clone();
    assert_eq!(st.learned_cap_ms, Some(learned));
}

/// Waits (in real time: the write runs on the blocking pool, which paused
/// Tokio time does not wait for) until `path` exists, at most 5 s.
async fn wait_for_file(path: &std::path::Path) {
    for _ in 0..500 {
        if path.exists() {
            return;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} was not written", path.display());
}
