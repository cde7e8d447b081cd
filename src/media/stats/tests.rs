//! Unit tests of the stats counters and rate computations.

use super::*;
use crate::base::CameraId;
use crate::media::{Frame, MediaKind};
use bytes::Bytes;

#[test]
fn rate_uses_window_and_reuses_between() {
    let t0 = Instant::now();
    let mut r = Rate::new(t0, 100);
    // Before any full window: the average since the baseline.
    assert_eq!(r.update(t0, 100, RATE_WINDOW), 0.0);
    assert_eq!(
        r.update(t0 + Duration::from_millis(500), 150, RATE_WINDOW),
        100.0
    );
    // A full window: a real rate, baseline shifts.
    assert_eq!(
        r.update(t0 + Duration::from_secs(2), 400, RATE_WINDOW),
        150.0
    );
    // Shorter than the window: the last rate again.
    assert_eq!(
        r.update(t0 + Duration::from_millis(2100), 410, RATE_WINDOW),
        150.0
    );
    // Next window measured from the shifted baseline (400 at 2 s).
    assert_eq!(
        r.update(t0 + Duration::from_secs(4), 420, RATE_WINDOW),
        10.0
    );
    // A counter that did not move gives 0, never negative.
    assert_eq!(r.update(t0 + Duration::from_secs(6), 420, RATE_WINDOW), 0.0);
}

#[test]
fn seq_gaps_count_loss_across_wrap_and_ignore_reordering() {
    let mut g = SeqGaps::default();
    assert_eq!(g.push(65_533), 0);
    assert_eq!(g.push(65_534), 0);
    assert_eq!(g.push(1), 2); // 65535 and 0 missing
    assert_eq!(g.push(0), 0); // late packet: not loss, not counted twice
    assert_eq!(g.push(1), 0); // duplicate
    assert_eq!(g.push(5), 3);
}

#[test]
fn transport_totals_carry_over_sessions() {
    let s = StreamStats::default();
    let a = Arc::new(TransportStats::default());
    a.add_packet(2);
    a.add_pli();
    s.session_started(Duration::ZERO, false, Some(a.clone()));
    let b = Arc::new(TransportStats::default());
    b.add_packet(0);
    b.add_nacks(3);
    s.session_started(Duration::from_secs(1), true, Some(b));
    a.add_pli(); // the old session's late counts are not double-counted
    let st = s.snapshot(None);
    assert_eq!(st.packets_received, 2);
    assert_eq!(st.packets_lost, 2);
    assert_eq!(st.plis_sent, 1);
    assert_eq!(st.nacks_sent, 3);
    assert_eq!((st.sessions, st.renewals), (2, 1));
    assert!(st.streaming);
    assert!(st.session_age_s.is_some_and(|a| a >= 1.0));
    s.session_ended(false);
    let st = s.snapshot(None);
    assert!(!st.streaming);
    assert_eq!((st.fps, st.bitrate_bps), (0.0, 0.0));
    assert_eq!(st.plis_sent, 1);
}

#[test]
fn frames_viewers_and_keyframe_interval() {
    let s = StreamStats::default();
    s.session_started(Duration::ZERO, false, None);
    let t0 = Instant::now();
    let mut key = Frame::new(MediaKind::Video, Bytes::from_static(&[0; 100]), true, 0, 0);
    key.received_at = t0;
    s.on_frame(&key);
    s.on_frame(&Frame::new(
        MediaKind::Audio,
        Bytes::from_static(&[0; 10]),
        false,
        0,
        0,
    ));
    key.received_at = t0 + Duration::from_millis(1000);
    s.on_frame(&key);
    key.received_at = t0 + Duration::from_millis(4000);
    s.on_frame(&key);
    s.viewer(ViewerKind::Rtsp, true);
    s.viewer(ViewerKind::Hold, true);
    s.viewer(ViewerKind::Hold, false);
    s.viewer(ViewerKind::Hold, false); // never below zero
    let v = s.register(ViewerKind::Whep);
    v.delivered(&key);
    v.dropped(4);
    let st = s.snapshot(None);
    assert_eq!(st.keyframe_interval_s, Some(2.0), "mean of 1 s and 3 s");
    assert_eq!(
        (st.video_frames, st.video_bytes, st.audio_bytes),
        (3, 300, 10)
    );
    assert_eq!(st.viewers.get(ViewerKind::Rtsp), 1);
    assert_eq!(st.viewers.get(ViewerKind::Hold), 0);
    assert_eq!(st.viewer_streams.len(), 1);
    assert_eq!(st.viewer_streams[0].kind, ViewerKind::Whep);
    assert_eq!(
        (st.viewer_streams[0].frames, st.viewer_streams[0].drops),
        (1, 4)
    );
    drop(v);
    assert!(s.snapshot(None).viewer_streams.is_empty());
}

/// Through the hub (paused Tokio time, fake sources): sessions and renewals,
/// viewers by lease kind, a subscriber's deliveries and drops. Rates use wall
/// time and are covered by the tests above and `tests/live_stats.rs`.
#[tokio::test(start_paused = true)]
async fn hub_counts_sessions_renewals_viewers_and_drops() {
    use crate::media::testutil::{FakeOpener, FakeSpec};
    use crate::media::{Hub, HubOptions, RecvError};
    use tokio_util::sync::CancellationToken;

    let spec = FakeSpec {
        cap: Some(Duration::from_secs(20)),
        ..FakeSpec::default()
    };
    let opts = HubOptions {
        renew_before: Duration::from_secs(5),
        subscriber_buffer: 16,
        ..HubOptions::default()
    };
    let hub = Hub::new(FakeOpener::new(spec), opts, CancellationToken::new());
    let stream = hub.stream(CameraId::new(1));
    let rtsp = stream.lease_as(ViewerKind::Rtsp);
    let hold = stream.lease_as(ViewerKind::Hold);
    stream.wait_ready(Duration::from_secs(5)).await.unwrap();
    let mut sub = rtsp.subscribe();
    let mut frames = 0u64;
    let mut last = 0u64;
    while last < 32 * 90_000 {
        let f = sub.recv().await.expect("a frame");
        frames += 1;
        if f.kind == MediaKind::Video {
            last = f.pts;
        }
    }
    let s = stream.stats();
    assert!(s.streaming);
    assert_eq!((s.sessions, s.renewals), (3, 2), "renewed at 15 s and 30 s");
    assert_eq!((s.viewers.rtsp, s.viewers.hold, s.viewers.whep), (1, 1, 0));
    assert_eq!(s.codec, Some("h264"));
    assert!(s.keyframes >= 3 && s.video_frames > 900, "{s:?}");
    assert_eq!(s.viewer_streams.len(), 1);
    assert_eq!(s.viewer_streams[0].kind, ViewerKind::Rtsp);
    assert_eq!(s.viewer_streams[0].frames, frames);
    assert_eq!(s.viewer_streams[0].drops, 0);

    // A subscriber that stops reading falls behind; its misses are counted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let Err(RecvError::Lagged { dropped }) = sub.recv().await else {
        panic!("expected a lag after 2 s unread with a 16-frame buffer");
    };
    assert!(stream.stats().viewer_streams[0].drops >= dropped);

    drop(hold);
    assert_eq!(stream.stats().viewers.hold, 0);
    // A live snapshot counts while it reads, without a lease.
    let reader = stream.count_reader(ViewerKind::Snapshot);
    assert_eq!(stream.stats().viewers.snapshot, 1);
    assert_eq!(stream.viewers(), 1, "no lease taken");
    drop(reader);
    assert_eq!(stream.stats().viewers.snapshot, 0);
    drop(sub);
    assert!(stream.stats().viewer_streams.is_empty());
    drop(rtsp);
    hub.shutdown().await;
    assert!(!stream.stats().streaming);
}
