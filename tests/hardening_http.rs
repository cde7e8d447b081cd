//! Hostile HTTP input against the real binary (the simulator behind it), each a
//! scaled-down replay of a finding: invented methods must not grow `/metrics`;
//! huge or oddly shaped WHEP offers are refused in milliseconds while `/healthz`
//! keeps answering; the WHEP session cap holds under concurrent offers; DNS
//! rebinding and cross-site writes are refused; every error is the JSON error
//! shape; slow-header and idle connections are closed; guesses from many
//! addresses never lock the owner out; unauthenticated `/healthz` shows no
//! details.

mod common;
mod whep_support;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Daemon, Sim, base_env, wait_for};

const PASSWORD: &str = "c0rrect-h0rse-battery";
const TOKEN: &str = "api-token-5f2e9c";

const CONFIG: &str = "[rtsp]\nenabled = false\n\n[webrtc]\nmax_sessions = 2\n\n\
[limits]\nhttp_header_timeout = \"1s\"\nhttp_idle_timeout = \"2s\"\n";

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn basic(pass: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("admin:{pass}"));
    format!("Basic {b}")
}

/// The daemon with a password and a token, once the camera list answers.
async fn daemon(sim: &Sim, state: &std::path::Path, config: &str) -> Daemon {
    let cfg = state.join("ring-bridge.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut env = base_env(state);
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    env.push(("HTTP_PASSWORD".into(), PASSWORD.into()));
    env.push(("HTTP_API_TOKEN".into(), TOKEN.into()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let loaded = wait_for(Duration::from_secs(30), || async {
        let r = reqwest::Client::new()
            .get(d.url("/api/ring/cameras"))
            .header("authorization", bearer())
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(loaded.is_some(), "{}", d.log_text());
    d
}

/// Asserts the `{error, message}` JSON error shape; returns `error`.
async fn json_error(r: reqwest::Response) -> String {
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(ct.starts_with("application/json"), "{status} {ct}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v["error"].as_str().unwrap().to_owned()
}

/// Sends `raw` on a new connection and reads until the server closes it.
async fn raw_request(addr: std::net::SocketAddr, raw: Vec<u8>) -> String {
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The server may answer (and close) before it read everything.
        let _ = s.write_all(&raw);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    })
    .await
    .unwrap()
}

async fn healthz_ms(d: &Daemon) -> u128 {
    let t = Instant::now();
    let r = reqwest::get(d.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    t.elapsed().as_millis()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_are_bounded_and_refused_cleanly() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path(), CONFIG).await;
    // The daemon closes connections idle for 2 s here: like any well-behaved
    // keep-alive client, drop pooled connections before the server does, so a
    // request never races the server's close.
    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_millis(500))
        .build()
        .unwrap();

    // Row 1: invented methods never become metric labels.
    for i in 0..200 {
        let method = format!("X{i}{}", "A".repeat(2000));
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = client
            .request(m, d.url("/api/ring/cameras"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let metrics = client
        .get(d.url("/metrics"))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("AAAA"),
        "raw methods leaked into /metrics"
    );
    assert!(metrics.len() < 20_000, "{} bytes", metrics.len());
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(
        metrics
            .lines()
            .filter(|l| l.starts_with("ringbridge_http_requests_total"))
            .count()
            < 20,
        "{metrics}"
    );

    // Row 2: a huge offer and a hostile shape are refused fast, 3 at once, while
    // /healthz answers within a second.
    let pts = " 96".repeat(200_000);
    let fmtp = "a=fmtp:97 x\r\n".repeat(60_000);
    let huge = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF{pts}\r\n{fmtp}"
    );
    let shaped = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF{}\r\n",
        " 96".repeat(300)
    );
    let post = |body: String| {
        let client = client.clone();
        let url = d.url("/api/webrtc/front-door/whep");
        async move {
            let t = Instant::now();
            let r = client
                .post(url)
                .header("authorization", bearer())
                .header("content-type", "application/sdp")
                .body(body)
                .send()
                .await
                .unwrap();
            (r, t.elapsed())
        }
    };
    let attack =
        futures::future::join_all([post(huge.clone()), post(huge.clone()), post(shaped.clone())]);
    let (answers, health) = tokio::join!(attack, healthz_ms(&d));
    assert!(health < 1000, "/healthz took {health} ms during the attack");
    for (r, took) in answers {
        assert_eq!(r.status(), 413);
        assert!(took < Duration::from_secs(2), "refused after {took:?}");
        let error = json_error(r).await;
        assert!(
            error == "invalid_argument" || error == "payload_too_large",
            "{error}"
        );
    }
    // Over the HTTP body limit: the JSON shape too.
    let (r, _) = post("v".repeat(3 * 1024 * 1024)).await;
    assert_eq!(r.status(), 413);
    assert_eq!(json_error(r).await, "payload_too_large");

    // Row 12: axum's own rejections in the JSON shape.
    let r = client
        .request(reqwest::Method::OPTIONS, d.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(json_error(r).await, "method_not_allowed");

    // Row 12: requests hyper refuses before routing get the JSON shape too.
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1024 * 1024)
    );
    for (raw, status) in [
        (big_header, 431),
        (
            format!(
                "GET healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\r\n",
                bearer()
            ),
            404,
        ),
        ("\x01\x02 nonsense\r\n\r\n".to_string(), 400),
    ] {
        let answer = raw_request(d.http, raw.into_bytes()).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer:.300}"
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).expect(&answer);
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
    // A keep-alive connection answered normally, then sent garbage: same shape.
    let answer = raw_request(
        d.http,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nBAD\x01 x\r\n\r\n".to_vec(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("HTTP/1.1 400"), "{answer}");
    assert!(answer.ends_with('}'), "{answer}");

    // Row 3: the session cap holds under concurrent valid offers.
    let (pc, _talk) = whep_support::new_peer().await;
    let offer = whep_support::make_offer(&pc).await;
    let offers = (0..10).map(|_| post(offer.clone()));
    let answers = futures::future::join_all(offers).await;
    let mut created = Vec::new();
    let mut refused = 0;
    for (r, _) in answers {
        match r.status().as_u16() {
            201 => created.push(r.headers()["location"].to_str().unwrap().to_owned()),
            429 => {
                assert_eq!(json_error(r).await, "resource_exhausted");
                refused += 1;
            }
            s => panic!("unexpected {s}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!((created.len(), refused), (2, 8), "cap 2 of 10");
    for loc in created {
        let r = client
            .delete(d.url(&loc))
            .header("authorization", bearer())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    pc.close().await.unwrap();

    // Row 6: DNS rebinding and cross-site writes. (The WHEP sessions above
    // opened a Ring session for front-door: count from here, on another camera.)
    let sessions_before = sim.state().await["live_sessions_total"].as_u64();
    let r = client
        .get(d.url("/api/ring/cameras/10001/snapshot"))
        .header("authorization", bearer())
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(json_error(r).await, "permission_denied");
    let start = d.url("/api/ring/cameras/10003/live/start");
    let r = client
        .post(&start)
        .header("authorization", bearer())
        .header("content-type", "text/plain")
        .body("{\"duration_s\": 3599}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .post(&start)
        .header("authorization", bearer())
        .header("origin", "http://attacker.example")
        .json(&serde_json::json!({"duration_s": 3599}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        sim.state().await["live_sessions_total"].as_u64(),
        sessions_before,
        "no refused request reached Ring"
    );

    // Row 11: a client dribbling header bytes is cut off; so is an idle one.
    let addr = d.http;
    let slow = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"G").unwrap();
        let t = Instant::now();
        let mut buf = [0u8; 512];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        t.elapsed()
    });
    let idle = tokio::spawn(async move {
        let t = Instant::now();
        let answer = raw_request(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
        )
        .await;
        (answer, t.elapsed())
    });
    let slow = slow.await.unwrap();
    assert!(slow < Duration::from_secs(5), "slow header held {slow:?}");
    let (answer, idle) = idle.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        idle >= Duration::from_millis(500) && idle < Duration::from_secs(8),
        "idle connection held {idle:?}"
    );
    assert!(healthz_ms(&d).await < 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_guessers_never_lock_out_the_owner_and_health_hides_details() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path(), "[rtsp]\nenabled = false\n").await;

    // Row 5: 10 wrong passwords from each of 101 loopback addresses: more than
    // the daemon-wide 1000.
    let guesses = (0..101u8).map(|i| {
        let url = d.url("/api/ring/cameras");
        async move {
            let c = reqwest::Client::builder()
                .local_address(IpAddr::from([127, 0, 1, i]))
                .build()
                .unwrap();
            let mut statuses = Vec::new();
            for _ in 0..10 {
                let r = c
                    .get(&url)
                    .header("authorization", basic("guess"))
                    .send()
                    .await
                    .unwrap();
                statuses.push(r.status().as_u16());
            }
            statuses
        }
    });
    let all: Vec<u16> = futures::future::join_all(guesses)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(all.iter().all(|s| *s == 401 || *s == 429), "{all:?}");
    assert!(all.contains(&429), "the daemon-wide limit was reached");
    let owner = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 2, 1]))
        .build()
        .unwrap();
    for auth in [basic(PASSWORD), bearer()] {
        let r = owner
            .get(d.url("/api/ring/cameras"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the owner gets in");
    }

    // Row 14: details only with credentials.
    let open: serde_json::Value = reqwest::get(d.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open["status"], "ok");
    assert!(open["ring"].get("last_error").is_none(), "{open}");
    assert!(open["ring"]["auth"].get("reason").is_none(), "{open}");
    let full: serde_json::Value = owner
        .get(d.url("/healthz"))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(full["ring"].get("last_error").is_some(), "{full}");
}

/// Row 14 with the reported case: a corrupt token file.
#[tokio::test(flavor = "multi_thread")]
async fn corrupt_token_file_is_not_shown_to_strangers() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("ring_token.json"), "{ not json").unwrap();
    let mut env = base_env(state.path());
    env.push(("HTTP_PASSWORD".into(), PASSWORD.into()));
    env.push(("RING_SIMULATOR_URL".into(), "http://127.0.0.1:9/".into()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let dir = state.path().display().to_string();
    let full = wait_for(Duration::from_secs(20), || async {
        let r = reqwest::Client::new()
            .get(d.url("/healthz"))
            .header("authorization", basic(PASSWORD))
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        (v["ring"]["auth"]["state"] == "reauth_required").then_some(v)
    })
    .await
    .unwrap_or_else(|| panic!("{}", d.log_text()));
    assert!(full.to_string().contains("ring_token.json"), "{full}");
    let open = reqwest::get(d.url("/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(open.contains("reauth_required"), "{open}");
    assert!(
        !open.contains(&dir) && !open.contains("ring_token"),
        "{open}"
    );
}

/// Row 10: the demo's live call works when the HTTP side listens on another
/// loopback address.
#[tokio::test(flavor = "multi_thread")]
async fn demo_live_call_works_on_any_loopback_listen_address() {
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.retain(|(k, _)| k != "LISTEN_IP");
    env.push(("LISTEN_IP".into(), "127.0.0.2".into()));
    env.push(("RTSP_PORT".into(), "0".into()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    assert_eq!(d.http.ip().to_string(), "127.0.0.2");
    let loaded = wait_for(Duration::from_secs(30), || async {
        (common::get_json(&d.url("/api/ring/cameras")).await.0 == 200).then_some(())
    })
    .await;
    assert!(loaded.is_some(), "{}", d.log_text());
    let r = reqwest::Client::new()
        .post(d.url("/api/ring/cameras/10001/live/start"))
        .json(&serde_json::json!({"duration_s": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let active = wait_for(Duration::from_secs(20), || async {
        let (_, b) = common::get_json(&d.url("/api/ring/cameras/10001/live")).await;
        (b["status"] == "active").then_some(())
    })
    .await;
    assert!(active.is_some(), "{}", d.log_text());
}
