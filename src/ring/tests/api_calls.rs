//! API calls: retries (429, 5xx, transport), session loss, device errors,
//! history and timeline pagination, recordings, snapshots, commands, ticket,
//! cancellation.

use std::time::{Duration, Instant};

use super::*;
use crate::base::{CameraId, ErrorKind, ResultExt};
use crate::ring::{ErrorInner, HistoryQuery, RingApi};

const DEVICES_PATH: &str = "/clients_api/ring_devices";
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0xFF, 0xD9,
];

/// A mock that grants tokens.
async fn mock() -> Mock {
    let m = Mock::start().await;
    m.script("POST /oauth/token", [Reply::token("at-1", "rt-1", 3600)]);
    m
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let mock = mock().await;
    mock.script(
        &format!("GET {DEVICES_PATH}"),
        [
            Reply::json(429, "{}").header("retry-after", "1"),
            Reply::ok(DEVICES),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let t0 = Instant::now();
    c.cameras().await.unwrap();
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "Retry-After 1 s + 1 s, waited {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(mock.count(DEVICES_PATH), 2);

    // A Retry-After beyond the bound fails at once instead of blocking the caller.
    mock.script(
        &format!("GET {DEVICES_PATH}"),
        [Reply::json(429, "{}").header("retry-after", "3600")],
    );
    let t0 = Instant::now();
    let e = c.cameras().await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5), "no hour-long wait");
    match e.inner() {
        ErrorInner::RateLimited { retry_after_s, .. } => assert_eq!(*retry_after_s, 3601),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::ResourceExhausted);
    assert_eq!(e.http_status(), Some(429));
}

#[tokio::test]
async fn session_rate_limit_blocks_session_creation_not_callers() {
    let mock = mock().await;
    mock.script("POST /clients_api/session", [Reply::json(429, "{}")]);
    mock.script(&format!("GET {DEVICES_PATH}"), [Reply::ok(DEVICES)]);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let t0 = Instant::now();
    for _ in 0..3 {
        let e = c.cameras().await.unwrap_err();
        match e.inner() {
            ErrorInner::RateLimited { retry_after_s, .. } => {
                assert!((195..=201).contains(retry_after_s), "{retry_after_s}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(
        mock.count("/clients_api/session"),
        1,
        "no session attempt before Retry-After"
    );
    assert_eq!(mock.count(DEVICES_PATH), 0);
}

#[tokio::test]
async fn server_errors_back_off_then_succeed() {
    let mock = mock().await;
    mock.script(
        &format!("GET {DEVICES_PATH}"),
        [
            Reply::json(503, "{}"),
            Reply::json(504, "{}"),
            Reply::ok(DEVICES),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    assert_eq!(c.cameras().await.unwrap().len(), 7);
    assert_eq!(mock.count(DEVICES_PATH), 3);

    // Bounded: three 500s give up with the last status.
    mock.script(
        &format!("GET {DEVICES_PATH}"),
        [Reply::json(500, r#"{"oops":1}"#)],
    );
    let e = c.cameras().await.unwrap_err();
    assert_eq!(e.http_status(), Some(500));
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(mock.count(DEVICES_PATH), 6);
}

#[tokio::test]
async fn unreachable_ring_is_bounded_and_typed() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = Url::parse(&format!("http://{}/", l.local_addr().unwrap())).unwrap();
    drop(l);
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "rt-0");
    let mut opts = options(&Mock::start().await, dir.path());
    opts.hosts = RingHosts::simulator(&base);
    let c = RingClient::new(opts).unwrap();
    let t0 = Instant::now();
    let e = c.cameras().await.unwrap_err();
    assert!(matches!(e.inner(), ErrorInner::Transport { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(saved(dir.path()), "rt-0", "nothing lost");
}

#[tokio::test]
async fn lost_session_is_recreated_once() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let lost = format!(r#"{{"error":"Session not found for {}"}}"#, c.hardware_id());
    mock.script(
        &format!("GET {DEVICES_PATH}"),
        [Reply::json(404, &lost), Reply::ok(DEVICES)],
    );
    c.cameras().await.unwrap();
    assert_eq!(mock.count("/clients_api/session"), 2);
    assert_eq!(mock.count(DEVICES_PATH), 2);
}

#[tokio::test]
async fn device_busy_codes_are_typed() {
    let mock = mock().await;
    mock.script(
        "PUT /clients_api/doorbots/10001/siren_on",
        [Reply::json(404, r#"{"errors":[7019]}"#)],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let e = c.set_siren(CameraId::new(10001), true).await.unwrap_err();
    match e.inner() {
        ErrorInner::DeviceUnavailable { code, .. } => assert_eq!(*code, 7019),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("ASSET_OFFLINE"), "{e}");
    assert_eq!(mock.count("/clients_api/doorbots/10001/siren_on"), 1);
}

#[tokio::test]
async fn history_pages_follow_the_cursor() {
    let mock = mock().await;
    mock.script(
        "GET /clients_api/doorbots/10001/history",
        [
            Reply::ok(include_str!("../testdata/doorbell_history_page1.json")),
            Reply::ok(include_str!("../testdata/doorbell_history_page2.json")),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let p1 = c
        .history(
            CameraId::new(10001),
            HistoryQuery {
                limit: 3,
                older_than: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(p1.events.len(), 3);
    assert_eq!(p1.next.as_deref(), Some("7311234567890123300"));
    let p2 = c
        .history(
            CameraId::new(10001),
            HistoryQuery {
                limit: 3,
                older_than: p1.next.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(p2.events.len(), 1);
    assert_eq!(p2.events[0].id, "7311234567890123001");
    assert_eq!(p2.next, None, "short page: the end");
    let q: Vec<String> = mock
        .seen_at("/clients_api/doorbots/10001/history")
        .iter()
        .map(|s| s.query.clone())
        .collect();
    assert_eq!(q, ["limit=3", "limit=3&older_than=7311234567890123300"]);

    let bad = HistoryQuery {
        limit: 3,
        older_than: Some("1&x=2".into()),
    };
    let e = c.history(CameraId::new(10001), bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn timeline_pages_follow_the_pagination_key() {
    let mock = mock().await;
    mock.script(
        "GET /evm/v2/history/devices/10001",
        [
            Reply::ok(include_str!("../testdata/doorbell_timeline_page1.json")),
            Reply::ok(include_str!("../testdata/doorbell_timeline_page2.json")),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let p1 = c.timeline(CameraId::new(10001), 50, None).await.unwrap();
    assert_eq!(p1.events.len(), 2);
    let p2 = c
        .timeline(CameraId::new(10001), 50, p1.next.as_deref())
        .await
        .unwrap();
    assert_eq!(p2.events[0].id, "7311234567890123900");
    assert_eq!(p2.next, None);
    let q: Vec<String> = mock
        .seen_at("/evm/v2/history/devices/10001")
        .iter()
        .map(|s| s.query.clone())
        .collect();
    assert_eq!(
        q,
        [
            "capabilities=offline_event&limit=50",
            "capabilities=offline_event&limit=50&pagination_key=eyJwYWdlIjoyfQ"
        ]
    );
}

#[tokio::test]
async fn snapshot_is_a_checked_jpeg() {
    let mock = mock().await;
    mock.script(
        "GET /snapshots/next/10001",
        [Reply::bytes(200, "image/jpeg", JPEG).header("x-time-millis", "1772359440123")],
    );
    mock.script(
        "GET /snapshots/next/10002",
        [Reply::ok(r#"{"error":"nope"}"#)],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let s = c.snapshot(CameraId::new(10001)).await.unwrap();
    assert_eq!(&s.jpeg[..], JPEG);
    assert_eq!(s.captured_at_ms, Some(1772359440123));
    let req = mock.seen_at("/snapshots/next/10001").pop().unwrap();
    assert_eq!(req.header("accept"), Some("image/jpeg"));
    assert_eq!(req.header("authorization"), Some("Bearer at-1"));
    let e = c.snapshot(CameraId::new(10002)).await.unwrap_err();
    assert!(matches!(e.inner(), ErrorInner::Decode { .. }), "{e}");
}

#[tokio::test]
async fn recording_url_with_fallback() {
    let mock = mock().await;
    let share = "/clients_api/dings/7311234567890123457/share/play";
    mock.script(
        &format!("GET {share}"),
        [Reply::ok(
            r#"{"url":"https://media.example/a.mp4?X-Amz-Expires=3600"}"#,
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let u = c.recording_url("7311234567890123457").await.unwrap();
    assert_eq!(u.as_str(), "https://media.example/a.mp4?X-Amz-Expires=3600");
    assert_eq!(mock.seen_at(share)[0].query, "disable_redirect=true");

    mock.script(
        "GET /clients_api/dings/5/share/play",
        [Reply::json(404, "{}")],
    );
    mock.script(
        "GET /clients_api/dings/5/recording",
        [Reply::ok(r#"{"url":"https://media.example/b.mp4"}"#)],
    );
    assert_eq!(
        c.recording_url("5").await.unwrap().as_str(),
        "https://media.example/b.mp4"
    );
    assert_eq!(
        mock.seen_at("/clients_api/dings/5/recording")[0].query,
        "disable_redirect=true"
    );

    let e = c.recording_url("../session").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn commands_ticket_locations_health() {
    let mock = mock().await;
    for p in [
        "floodlight_light_on",
        "floodlight_light_off",
        "siren_on",
        "siren_off",
    ] {
        mock.script(
            &format!("PUT /clients_api/doorbots/20001/{p}"),
            [Reply::json(200, "")],
        );
    }
    mock.script(
        "PATCH /devices/v1/devices/20001/settings",
        [Reply::json(204, "")],
    );
    mock.script(
        "POST /api/v1/clap/ticket/request/signalsocket",
        [Reply::ok(r#"{"ticket":"tk-1","response_id":"x"}"#)],
    );
    mock.script(
        "GET /devices/v1/locations",
        [Reply::ok(include_str!(
            "../testdata/account_locations.json"
        ))],
    );
    mock.script(
        "GET /clients_api/doorbots/10001/health",
        [Reply::ok(include_str!("../testdata/doorbell_health.json"))],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");

    c.set_light(CameraId::new(20001), true).await.unwrap();
    c.set_light(CameraId::new(20001), false).await.unwrap();
    c.set_siren(CameraId::new(20001), true).await.unwrap();
    c.set_siren(CameraId::new(20001), false).await.unwrap();
    for p in [
        "floodlight_light_on",
        "floodlight_light_off",
        "siren_on",
        "siren_off",
    ] {
        let s = mock
            .seen_at(&format!("/clients_api/doorbots/20001/{p}"))
            .pop()
            .unwrap();
        assert_eq!(&s.body[..], b"null", "PUT without payload sends JSON null");
        assert_eq!(s.header("content-type"), Some("application/json"));
    }
    c.set_motion_detection(CameraId::new(20001), false)
        .await
        .unwrap();
    let s = mock
        .seen_at("/devices/v1/devices/20001/settings")
        .pop()
        .unwrap();
    assert_eq!(s.method, Method::PATCH);
    assert_eq!(
        s.json(),
        serde_json::json!({"motion_settings":{"motion_detection_enabled":false}})
    );

    assert_eq!(c.live_ticket().await.unwrap(), "tk-1");
    let s = mock
        .seen_at("/api/v1/clap/ticket/request/signalsocket")
        .pop()
        .unwrap();
    assert_eq!(s.method, Method::POST);
    assert_eq!(s.header("authorization"), Some("Bearer at-1"));

    assert_eq!(c.locations().await.unwrap().len(), 2);
    assert_eq!(
        c.camera_health(CameraId::new(10001))
            .await
            .unwrap()
            .wifi_rssi_dbm,
        Some(-52)
    );
    assert_eq!(mock.count("/clients_api/session"), 1);
}

#[tokio::test]
async fn cancellation_stops_waits() {
    let mock = mock().await;
    mock.script(
        &format!("GET {DEVICES_PATH}"),
        [Reply::json(429, "{}").header("retry-after", "20")],
    );
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "rt-0");
    let opts = options(&mock, dir.path());
    let cancel = opts.cancel.clone();
    let c = RingClient::new(opts).unwrap();
    let call = tokio::spawn(async move { c.cameras().await });
    wait_until("the 429", || mock.count(DEVICES_PATH) == 1).await;
    cancel.cancel();
    let r = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
}
