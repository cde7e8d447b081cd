//! Hostile RTSP clients against the real binary and the simulator: a client
//! guessing passwords is backed off while the right password from others still
//! works; at most `limits.rtsp_describe_waiters` DESCRIBEs wait for a camera
//! that cannot start, the rest are refused at once, and a waiting client that
//! hangs up frees its place.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Daemon, Sim, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONFIG: &str = "[rtsp]\nusername = \"viewer\"\npassword = \"s3cret\"\n\
describe_timeout = \"5s\"\n\n[stream]\nlinger = \"1s\"\n\n[limits]\nrtsp_describe_waiters = 3\n";

fn basic(pass: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("viewer:{pass}"));
    format!("Basic {b}")
}

/// One DESCRIBE over a fresh connection from `local`; the status code.
async fn describe(server: SocketAddr, path: &str, auth: Option<&str>, local: IpAddr) -> u16 {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(local, 0)).unwrap();
    let mut s = sock.connect(server).await.unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "DESCRIBE rtsp://{server}/{path} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n{auth}\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Sends a DESCRIBE and returns the open connection without reading the answer.
async fn send_describe(server: SocketAddr, path: &str, auth: &str) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    let req = format!(
        "DESCRIBE rtsp://{server}/{path} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\nAuthorization: {auth}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn password_guessing_backs_off_and_stuck_describes_drain() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d: Daemon = common::daemon_on(&sim, state.path(), CONFIG, &[]).await;
    let log = d.log_text();
    let port: u16 = log
        .split("rtsp_addr=")
        .nth(1)
        .and_then(|r| r.split(|c: char| c.is_whitespace() || c == ',').next())
        .and_then(|a| a.trim_matches('"').parse::<SocketAddr>().ok())
        .map(|a| a.port())
        .unwrap_or_else(|| panic!("no rtsp_addr in the log:\n{log}"));
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let guesser = IpAddr::from([127, 0, 1, 1]);
    let owner = IpAddr::from([127, 0, 1, 2]);

    // Row 8: 30 wrong passwords, then even the right one from that address waits.
    for _ in 0..30 {
        assert_eq!(
            describe(server, "front-door", Some(&basic("guess")), guesser).await,
            401
        );
    }
    assert_eq!(
        describe(server, "front-door", Some(&basic("s3cret")), guesser).await,
        401,
        "backed off"
    );
    assert!(d.wait_log("too many wrong passwords", Duration::from_secs(5)));
    // No credentials at all (a player's first try) is not a failure.
    assert_eq!(describe(server, "front-door", None, owner).await, 401);
    let ok = wait_for(Duration::from_secs(30), || async {
        (describe(server, "front-door", Some(&basic("s3cret")), owner).await == 200).then_some(())
    })
    .await;
    assert!(ok.is_some(), "the right password works:\n{}", d.log_text());

    // Row 9: a camera whose live call hangs. Three clients wait for it...
    sim.post(
        "faults",
        serde_json::json!({"endpoint": "ticket", "latency_ms": 8000}),
    )
    .await;
    let good = basic("s3cret");
    let count = |needle: &str| d.log_text().matches(needle).count();
    let waiting = "DESCRIBE waits for the camera to start";
    let before = count(waiting);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(send_describe(server, "living-room", &good).await);
    }
    let admitted = wait_for(Duration::from_secs(10), || async {
        (count(waiting) >= before + 3).then_some(())
    })
    .await;
    assert!(admitted.is_some(), "three waiters:\n{}", d.log_text());
    // ... so eight more are refused at once, not queued.
    let t = Instant::now();
    let queued = (0..8).map(|_| describe(server, "living-room", Some(good.as_str()), owner));
    let codes = futures::future::join_all(queued).await;
    let took = t.elapsed();
    assert!(codes.iter().all(|c| *c == 503), "{codes:?}");
    assert!(took < Duration::from_secs(3), "refusals took {took:?}");
    // The waiters hang up: their places are free again.
    let gone = "DESCRIBE client hung up while waiting";
    let before_gone = count(gone);
    drop(held);
    let freed = wait_for(Duration::from_secs(10), || async {
        (count(gone) >= before_gone + 3).then_some(())
    })
    .await;
    assert!(freed.is_some(), "hung-up waiters freed:\n{}", d.log_text());
    let t = Instant::now();
    let code = describe(server, "living-room", Some(good.as_str()), owner).await;
    let took = t.elapsed();
    assert_ne!(code, 200);
    assert!(
        took >= Duration::from_secs(2),
        "a free place waits for the camera (answered {code} after {took:?})"
    );
    // Once the camera can start again, DESCRIBE works again.
    let r = reqwest::Client::new()
        .delete(format!("{}_sim/faults", sim.url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let ok = wait_for(Duration::from_secs(40), || async {
        (describe(server, "living-room", Some(&basic("s3cret")), owner).await == 200).then_some(())
    })
    .await;
    assert!(ok.is_some(), "{}", d.log_text());
}
