//! Access control of the console and API, end to end against the real binary:
//! an open non-loopback listener is refused at start-up; with a password and a
//! token every request but `/healthz` must authenticate (REST, console, WHEP,
//! log stream), and repeated wrong credentials are throttled per client; a
//! trusted ingress proxy passes only with `X-Ingress-Path`.

mod common;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{Daemon, Sim, base_env, bin};

const PASSWORD: &str = "c0rrect-h0rse-battery";
const TOKEN: &str = "api-token-5f2e9c";

fn basic(user: &str, pass: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b}")
}

async fn status(url: &str, auth: Option<&str>, headers: &[(&str, &str)]) -> u16 {
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

#[test]
fn open_lan_listener_is_refused_with_a_clear_error() {
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("run")
        .env_remove("RING_REFRESH_TOKEN")
        .env_remove("RING_BRIDGE_CONFIG")
        .env_remove("HTTP_PASSWORD")
        .env_remove("HTTP_API_TOKEN")
        .env_remove("ALLOW_UNAUTHENTICATED")
        .env("LISTEN_IP", "0.0.0.0")
        .env("HTTP_PORT", "0")
        .env("RING_BRIDGE_STATE_DIR", state.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("0.0.0.0") && err.contains("HTTP_PASSWORD") && err.contains("LISTEN_IP"),
        "{err}"
    );
    // check-config warns but still prints the configuration.
    let out = Command::new(bin())
        .arg("check-config")
        .env_remove("RING_BRIDGE_CONFIG")
        .env("LISTEN_IP", "0.0.0.0")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("would refuse to start"));
}

#[tokio::test(flavor = "multi_thread")]
async fn password_and_token_guard_every_route() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("HTTP_PASSWORD".into(), PASSWORD.into()));
    env.push(("HTTP_API_TOKEN".into(), TOKEN.into()));
    // An ingress proxy elsewhere: a local X-Ingress-Path must not pass.
    env.push(("INGRESS_PROXY_IP".into(), "10.9.9.9".into()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let good = basic("admin", PASSWORD);
    let bearer = format!("Bearer {TOKEN}");

    assert_eq!(status(&d.url("/healthz"), None, &[]).await, 200);
    for path in [
        "/",
        "/index.html",
        "/api/ring/cameras",
        "/api/ring/auth",
        "/api/logs",
        "/api/logs/stream",
        "/metrics",
        "/api/ring/cameras/10001/snapshot",
    ] {
        let url = d.url(path);
        assert_eq!(
            status(&url, None, &[]).await,
            401,
            "{path} without credentials"
        );
        assert_eq!(
            status(&url, None, &[("x-ingress-path", "/api/hassio_ingress/x")]).await,
            401,
            "{path} spoofed ingress header"
        );
    }
    // Wrong credentials: 401, and after 10 of them this client gets 429 for a
    // while, even with the right password; other clients are not affected.
    let url = d.url("/api/ring/cameras");
    let wrong = [
        basic("admin", "wrong"),
        basic("root", PASSWORD),
        "Bearer nope".to_owned(),
        "Digest x".to_owned(),
    ];
    let from_other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    for i in 0..10 {
        let r = from_other
            .get(&url)
            .header("authorization", &wrong[i % wrong.len()])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "wrong credentials #{i}");
    }
    let r = from_other
        .get(&url)
        .header("authorization", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "{wait}");

    let r = reqwest::get(d.url("/api/ring/cameras")).await.unwrap();
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"ring-bridge\", charset=\"UTF-8\""
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    // WHEP offers are refused before any session is made.
    let r = reqwest::Client::new()
        .post(d.url("/api/webrtc/front-door/whep"))
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // With credentials everything works.
    assert!(d.wait_log("camera list loaded", Duration::from_secs(30)));
    for auth in [&good, &bearer] {
        let r = reqwest::Client::new()
            .get(d.url("/api/ring/cameras"))
            .header("authorization", auth.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let cams: serde_json::Value = r.json().await.unwrap();
        assert_eq!(cams.as_array().unwrap().len(), 6);
        assert_eq!(status(&d.url("/"), Some(auth), &[]).await, 200);
    }

    let log = d.log_text();
    assert!(log.contains("password (HTTP Basic)"), "{log}");
    assert!(
        !log.contains(PASSWORD) && !log.contains(TOKEN),
        "secret in the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ingress_proxy_passes_and_others_are_sent_to_home_assistant() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    // As in the add-on: all interfaces, no password, the proxy trusted. Here the
    // proxy is this machine.
    env.retain(|(k, _)| k != "LISTEN_IP");
    env.push(("LISTEN_IP".into(), "0.0.0.0".into()));
    env.push(("INGRESS_PROXY_IP".into(), "127.0.0.1".into()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let url = d.url("/api/ring/auth");
    let ingress = [("x-ingress-path", "/api/hassio_ingress/t0k3n")];
    assert_eq!(status(&url, None, &ingress).await, 200);
    assert_eq!(status(&url, None, &[]).await, 403);
    let r = reqwest::get(&url).await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("Home Assistant"),
        "{body}"
    );
    assert_eq!(status(&d.url("/healthz"), None, &[]).await, 200);
}
