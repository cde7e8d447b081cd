//! Simulator tests over real sockets: the three history forms with pagination,
//! recordings (signed URLs, redirects, ranges, real MP4s), snapshots (real JPEGs)
//! and cameras made from the user's own MP4 files.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestSim;
use crate::sim::clock;
use crate::sim::*;

fn is_jpeg(b: &[u8]) -> bool {
    b.len() > 100 && b.starts_with(&[0xFF, 0xD8]) && b.ends_with(&[0xFF, 0xD9])
}

/// Top-level MP4 box types, in order (fails on a truncated file).
fn mp4_boxes(b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i + 8 <= b.len() {
        let size = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        out.push(String::from_utf8_lossy(&b[i + 4..i + 8]).to_string());
        assert!(
            size >= 8 && i + size <= b.len(),
            "box {} overruns the file",
            out.len()
        );
        i += size;
    }
    assert_eq!(i, b.len(), "trailing bytes");
    out
}

/// Checks ids are numbers beyond 2^53, unique and strictly decreasing.
fn check_ids(ids: &[u64]) {
    assert!(
        ids.iter()
            .all(|id| *id > (1u64 << 53) && id.to_string().len() == 19)
    );
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
}

#[tokio::test]
async fn legacy_history_pages_by_older_than() {
    let sim = TestSim::start().await;
    let mut ids = Vec::new();
    let mut path = "/clients_api/doorbots/10001/history?limit=7".to_string();
    loop {
        let (s, page) = sim.get(&path).await;
        assert_eq!(s, 200);
        let page = page.as_array().expect("array").clone();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        for e in &page {
            ids.push(e["id"].as_u64().expect("numeric id"));
            assert!(e["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
            assert!(["motion", "ding", "on_demand"].contains(&e["kind"].as_str().unwrap_or("")));
        }
        path = format!(
            "/clients_api/doorbots/10001/history?limit=7&older_than={}",
            ids[ids.len() - 1]
        );
    }
    assert_eq!(ids.len(), 30);
    check_ids(&ids);
    let (_, all) = sim
        .get("/clients_api/doorbots/10001/history?limit=30")
        .await;
    let statuses: HashSet<Value> = all
        .as_array()
        .expect("arr")
        .iter()
        .map(|e| e["recording"]["status"].clone())
        .collect();
    assert!(
        statuses.contains(&json!("ready"))
            && statuses.contains(&json!("pending"))
            && statuses.contains(&Value::Null)
    );
    assert_eq!(
        sim.get("/clients_api/doorbots/10001/history?limit=0")
            .await
            .0,
        400
    );
    assert_eq!(
        sim.get("/clients_api/doorbots/10001/history?older_than=x")
            .await
            .0,
        400
    );
    assert_eq!(sim.get("/clients_api/doorbots/424242/history").await.0, 404);
    sim.stop().await;
}

#[tokio::test]
async fn location_events_page_with_pagination_key() {
    let sim = TestSim::start().await;
    let mut ids = Vec::new();
    let mut key: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/clients_api/locations/{HOME_LOCATION_ID}/events?limit=25");
        if let Some(k) = &key {
            // ring-mqtt strips the padding; both must work.
            path.push_str(&format!("&pagination_key={}", k.trim_end_matches('=')));
        }
        let (s, b) = sim.get(&path).await;
        assert_eq!(s, 200, "{b}");
        pages += 1;
        for e in b["events"].as_array().expect("events") {
            let id = e["ding_id"].as_u64().expect("numeric ding_id");
            assert_eq!(e["ding_id_str"], id.to_string());
            assert!([10001, 10002, 10003, 10004].contains(&e["doorbot_id"].as_u64().unwrap_or(0)));
            assert!(e["cv_properties"]["person_detected"].is_boolean());
            ids.push(id);
        }
        match b["meta"]["pagination_key"].as_str() {
            Some(k) => key = Some(k.to_string()),
            None => break,
        }
    }
    assert_eq!((ids.len(), pages), (120, 5));
    check_ids(&ids);

    let dev = format!("/clients_api/locations/{HOME_LOCATION_ID}/devices/10002/events?limit=100");
    let (_, b) = sim.get(&dev).await;
    let evs = b["events"].as_array().expect("events");
    assert_eq!(evs.len(), 30);
    assert!(b["meta"]["pagination_key"].is_null());
    assert!(
        evs.iter()
            .any(|e| e["recorded"] == true && e["recording_status"] == "ready")
    );
    assert!(evs.iter().any(|e| e["recorded"] == false));

    let (_, b) = sim.get(&format!("{dev}&kind=ding")).await;
    assert!(
        b["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["kind"] == "ding")
    );
    let (_, b) = sim.get(&format!("{dev}&state=person_detected")).await;
    let people = b["events"].as_array().expect("events");
    assert!(
        !people.is_empty()
            && people
                .iter()
                .all(|e| e["cv_properties"]["person_detected"] == true)
    );
    let (_, b) = sim.get(&format!("{dev}&state=missed")).await;
    assert!(
        b["events"]
            .as_array()
            .expect("e")
            .iter()
            .all(|e| e["kind"] == "ding" && e["state"] == "timed_out")
    );

    // The Cabin camera is not in Home; bad keys and locations are clear errors.
    let wrong = format!("/clients_api/locations/{HOME_LOCATION_ID}/devices/10006/events");
    assert_eq!(sim.get(&wrong).await.0, 404);
    assert_eq!(
        sim.get("/clients_api/locations/nowhere/events").await.0,
        404
    );
    let bad = format!("/clients_api/locations/{HOME_LOCATION_ID}/events?pagination_key=%21%21");
    let (s, b) = sim.get(&bad).await;
    assert_eq!((s, b["error"].is_string()), (StatusCode::BAD_REQUEST, true));
    sim.stop().await;
}

#[tokio::test]
async fn evm_timeline_pages_and_serves_real_mp4s() {
    let sim = TestSim::start().await;
    let mut items = Vec::new();
    let mut key: Option<String> = None;
    loop {
        let mut path =
            "/evm/v2/history/devices/10002?capabilities=offline_event&limit=12".to_string();
        if let Some(k) = &key {
            path.push_str(&format!("&pagination_key={k}"));
        }
        let (s, b) = sim.get(&path).await;
        assert_eq!(s, 200, "{b}");
        items.extend(b["items"].as_array().expect("items").iter().cloned());
        match b["pagination_key"].as_str() {
            Some(k) => key = Some(k.to_string()),
            None => break,
        }
    }
    assert_eq!(items.len(), 30);
    let ids: Vec<u64> = items
        .iter()
        .map(|i| {
            i["event_id"]
                .as_str()
                .expect("string id")
                .parse()
                .expect("num")
        })
        .collect();
    check_ids(&ids);
    assert!(items.iter().all(|i| i["source_id"] == "10002"));
    let ready = items
        .iter()
        .find(|i| i["recording_status"] == "ready")
        .expect("a ready item");
    let media = ready["visualizations"]["cloud_media_visualization"]["media"]
        .as_array()
        .expect("media");
    let url_of = |t: &str| {
        media
            .iter()
            .find(|m| m["file_type"] == t)
            .and_then(|m| m["url"].as_str())
            .map(str::to_string)
    };
    let video = url_of("VIDEO").expect("VIDEO url");
    let thumb = url_of("THUMBNAIL").expect("THUMBNAIL url");
    assert!(
        video.starts_with(&sim.base)
            && video.contains("X-Amz-Expires=3600")
            && video.contains("X-Amz-Date=")
    );
    let mp4 = sim.http.get(&video).send().await.expect("send");
    assert_eq!(mp4.status(), 200);
    assert_eq!(mp4.headers()["content-type"], "video/mp4");
    let bytes = mp4.bytes().await.expect("bytes");
    let boxes = mp4_boxes(&bytes);
    assert_eq!(boxes[0], "ftyp");
    assert!(
        boxes.contains(&"moov".to_string()) && boxes.contains(&"mdat".to_string()),
        "{boxes:?}"
    );
    let jpg = sim
        .http
        .get(&thumb)
        .send()
        .await
        .expect("send")
        .bytes()
        .await
        .expect("bytes");
    assert!(is_jpeg(&jpg));
    let pending = items
        .iter()
        .find(|i| i["recording_status"] == "pending")
        .expect("pending item");
    let pm = pending["visualizations"]["cloud_media_visualization"]["media"]
        .as_array()
        .expect("media");
    assert!(pm.iter().all(|m| m["file_type"] != "VIDEO"));

    // Several cameras at once, filtered by type.
    let (_, b) = sim
        .get("/evm/v2/history/devices?source_ids=10001%2C10006&event_types=ding&limit=100")
        .await;
    let items = b["items"].as_array().expect("items");
    let sources: HashSet<&str> = items
        .iter()
        .filter_map(|i| i["source_id"].as_str())
        .collect();
    assert_eq!(sources, HashSet::from(["10001", "10006"]));
    assert!(items.iter().all(|i| i["event_type"] == "ding"));
    assert_eq!(
        sim.get("/evm/v2/history/devices?source_ids=1,x").await.0,
        400
    );
    assert_eq!(sim.get("/evm/v2/history/devices").await.0, 400);
    assert_eq!(sim.get("/evm/v2/history/devices/31337").await.0, 404);
    sim.stop().await;
}

#[tokio::test]
async fn recording_urls_redirects_and_errors() {
    let sim = TestSim::start().await;
    let (_, hist) = sim
        .get("/clients_api/doorbots/10001/history?limit=30")
        .await;
    let hist = hist.as_array().expect("arr").clone();
    let with = |status: Value| {
        hist.iter()
            .find(|e| e["recording"]["status"] == status)
            .map(|e| e["id"].as_u64().unwrap_or(0))
    };
    let ready = with(json!("ready")).expect("ready");
    let pending = with(json!("pending")).expect("pending");
    let none = with(Value::Null).expect("not recorded");

    for form in ["share/play", "recording"] {
        let (s, b) = sim
            .get(&format!(
                "/clients_api/dings/{ready}/{form}?disable_redirect=true"
            ))
            .await;
        assert_eq!(s, 200, "{form}");
        let url = b["url"].as_str().expect("url").to_string();
        assert!(
            url.starts_with(&format!("{}/_sim/media/recordings/{ready}.mp4?", sim.base)),
            "{url}"
        );
        let resp = sim
            .fetch(&format!("/clients_api/dings/{ready}/{form}"))
            .await;
        // Without disable_redirect, `recording` redirects and `share/play`
        // still answers JSON (python-ring-doorbell reads `url` from it).
        let loc = if form == "recording" {
            assert_eq!(resp.status(), 302);
            resp.headers()["location"]
                .to_str()
                .expect("ascii")
                .to_string()
        } else {
            assert_eq!(resp.status(), 200);
            let b: Value = resp.json().await.expect("json");
            b["url"].as_str().expect("url").to_string()
        };
        let bytes = sim
            .http
            .get(&loc)
            .send()
            .await
            .expect("send")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(&bytes[4..8], b"ftyp");

        // Range requests (players seek).
        let part = sim
            .http
            .get(&loc)
            .header("range", "bytes=0-15")
            .send()
            .await
            .expect("send");
        assert_eq!(part.status(), 206);
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes 0-15/{}", bytes.len())
        );
        assert_eq!(part.bytes().await.expect("b").as_ref(), &bytes[..16]);

        // A tampered signature is refused like S3 does.
        let bad = loc.replace("X-Amz-Signature=", "X-Amz-Signature=0");
        assert_eq!(sim.http.get(&bad).send().await.expect("send").status(), 403);
    }
    for id in [pending, none, 7_100_000_000_000_000_001] {
        let (s, b) = sim
            .get(&format!(
                "/clients_api/dings/{id}/recording?disable_redirect=true"
            ))
            .await;
        assert_eq!(s, 404, "{id}");
        assert!(b["error"].is_string());
    }
    assert_eq!(
        sim.get("/clients_api/dings/abc/recording?disable_redirect=true")
            .await
            .0,
        400
    );
    // The Living Room camera has no Ring Protect: nothing is recorded.
    let (_, lr) = sim
        .get("/clients_api/doorbots/10004/history?limit=30")
        .await;
    assert!(
        lr.as_array()
            .expect("arr")
            .iter()
            .all(|e| e["recording"]["status"].is_null())
    );
    let lr_id = lr[0]["id"].as_u64().expect("id");
    assert_eq!(
        sim.get(&format!(
            "/clients_api/dings/{lr_id}/share/play?disable_redirect=true"
        ))
        .await
        .0,
        404
    );
    sim.stop().await;
}

#[tokio::test]
async fn snapshots_current_and_legacy() {
    let sim = TestSim::start().await;
    let resp = sim
        .http
        .get(sim.url("/snapshots/next/10001?extras=force"))
        .bearer_auth(&sim.token)
        .header("accept", "image/jpeg")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let ts: i64 = resp.headers()["x-time-millis"]
        .to_str()
        .expect("a")
        .parse()
        .expect("ms");
    assert!((clock::now_ms() - ts).abs() < 5_000);
    assert!(is_jpeg(&resp.bytes().await.expect("bytes")));

    let after = sim
        .fetch(&format!("/snapshots/next/10002?after-ms={ts}&uuid="))
        .await;
    assert_eq!(after.status(), 200);
    let ts2: i64 = after.headers()["x-time-millis"]
        .to_str()
        .expect("a")
        .parse()
        .expect("ms");
    assert!(ts2 >= ts);

    // Offline camera; motion detection off.
    assert_eq!(sim.get("/snapshots/next/10005").await.0, 404);
    let off = json!({"motion_settings": {"motion_detection_enabled": false}});
    sim.call(
        reqwest::Method::PATCH,
        "/devices/v1/devices/10003/settings",
        Some(off),
    )
    .await;
    let (s, b) = sim.get("/snapshots/next/10003").await;
    assert_eq!(s, 404);
    assert!(
        b["error"]
            .as_str()
            .is_some_and(|e| e.contains("motion detection"))
    );
    assert_eq!(
        sim.get("/snapshots/next/10007").await.0,
        400,
        "the chime is no camera"
    );

    // Legacy (python): update_all, timestamps, image.
    let ids = json!({"doorbot_ids": [10001, 10004], "refresh": true});
    assert_eq!(
        sim.call(
            reqwest::Method::PUT,
            "/clients_api/snapshots/update_all",
            Some(ids)
        )
        .await
        .0,
        204
    );
    let (s, b) = sim
        .call(
            reqwest::Method::POST,
            "/clients_api/snapshots/timestamps",
            Some(json!({"doorbot_ids": [10004]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["timestamps"][0]["doorbot_id"], 10004);
    assert!(b["timestamps"][0]["timestamp"].as_i64() >= Some(ts));
    let bad = json!({"doorbot_ids": "x"});
    assert_eq!(
        sim.call(
            reqwest::Method::POST,
            "/clients_api/snapshots/timestamps",
            Some(bad)
        )
        .await
        .0,
        400
    );
    let img = sim.fetch("/clients_api/snapshots/image/10004").await;
    assert_eq!(img.status(), 200);
    assert!(is_jpeg(&img.bytes().await.expect("bytes")));

    // Push snapshot uuids.
    let (_, ev) = sim
        .control(reqwest::Method::POST, "/_sim/cameras/10001/motion", None)
        .await;
    let uuid = ev["snapshot_uuid"].as_str().expect("uuid").to_string();
    let by_uuid = sim
        .fetch(&format!("/clients_api/snapshots/uuid?uuid={uuid}:1234"))
        .await;
    assert_eq!(by_uuid.status(), 200);
    assert!(is_jpeg(&by_uuid.bytes().await.expect("bytes")));
    assert_eq!(
        sim.get(&format!("/snapshots/next/10001?uuid={uuid}"))
            .await
            .0,
        200
    );
    assert_eq!(
        sim.get("/clients_api/snapshots/uuid?uuid=nope").await.0,
        404
    );
    assert_eq!(
        sim.sim_state().await["requests"]["snapshot"].as_u64(),
        Some(12)
    );
    sim.stop().await;
}

#[tokio::test]
async fn media_dir_files_become_cameras() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mp4 = tokio::task::spawn_blocking(|| {
        crate::sim::media_gen::generate_mp4("USER", "snow", crate::sim::media_gen::SECONDS)
    })
    .await
    .expect("join")
    .expect("mp4");
    std::fs::write(dir.path().join("back_yard.mp4"), &mp4).expect("write");
    std::fs::write(dir.path().join("notes.txt"), b"ignored").expect("write");
    let opts = SimOptions {
        media_dir: Some(dir.path().to_path_buf()),
        ..SimOptions::default()
    };
    let sim = TestSim::start_with(opts).await;
    let cam = sim.camera(MEDIA_DIR_FIRST_ID).await;
    assert_eq!(cam["description"], "back yard");
    assert!(
        sim.handle
            .state
            .camera(MEDIA_DIR_FIRST_ID)
            .and_then(|c| c.media_file)
            .is_some()
    );
    let (_, b) = sim
        .get(&format!(
            "/evm/v2/history/devices/{MEDIA_DIR_FIRST_ID}?limit=5"
        ))
        .await;
    let item = b["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["recording_status"] == "ready")
        .cloned()
        .expect("ready item");
    let url = item["visualizations"]["cloud_media_visualization"]["media"][0]["url"]
        .as_str()
        .expect("url");
    let got = sim
        .http
        .get(url)
        .send()
        .await
        .expect("send")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(
        got.as_ref(),
        mp4.as_slice(),
        "the user's own file is served"
    );
    let snap = sim
        .fetch(&format!("/snapshots/next/{MEDIA_DIR_FIRST_ID}"))
        .await;
    assert!(is_jpeg(&snap.bytes().await.expect("bytes")));
    sim.stop().await;
}
