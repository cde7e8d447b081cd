//! Console login (`/api/auth`) against the real daemon binary and the Ring
//! simulator: unlink, password + 2FA login, the in-process restart that
//! follows, rate limiting, refusals, and that neither the password nor the
//! code ever reaches the daemon's log. The last test drives the same flow
//! through the console's sign-in page in Chromium (`tests/browser/`).

mod browser;
mod common;

use std::time::Duration;

use common::proxy::IngressProxy;
use common::{Daemon, Sim, base_env, get_json, wait_for};
use ring_bridge::ring::state::TokenStore;
use ring_bridge::sim::{DEMO_2FA_CODE, DEMO_EMAIL, DEMO_PASSWORD};
use serde_json::{Value, json};

const WRONG_PASSWORD: &str = "wrong-pass-5521";
const WRONG_CODE: &str = "918273";

fn token_saved(dir: &std::path::Path) -> bool {
    TokenStore::open(dir)
        .and_then(|s| s.load_token())
        .map(|t| t.is_some())
        .unwrap_or(false)
}

fn spawn(env: &[(String, String)]) -> Daemon {
    let d = Daemon::spawn(env);
    assert!(
        d.wait_log("camera list", Duration::from_secs(30)),
        "{}",
        d.log_text()
    );
    d
}

/// The simulator, a state dir and the daemon on the simulator with `extra`
/// environment (`RING_REFRESH_TOKEN` = `BOOTSTRAP` gets the simulator's
/// bootstrap token), camera list tried.
async fn start(extra: &[(&str, &str)]) -> (Sim, tempfile::TempDir, Daemon) {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    for (k, v) in extra {
        let v = match *v {
            "BOOTSTRAP" => sim.handle.bootstrap_refresh_token(),
            v => v.to_owned(),
        };
        env.push(((*k).to_owned(), v));
    }
    let d = tokio::task::block_in_place(|| spawn(&env));
    (sim, state, d)
}

/// POST a JSON body; returns (status, Retry-After, body).
async fn post(d: &Daemon, path: &str, body: Value) -> (u16, Option<String>, Value) {
    let r = reqwest::Client::new()
        .post(d.url(path))
        .json(&body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `GET /api/auth` satisfies `pred`; returns that answer. A
/// connection the old run accepted just as it stopped is closed unanswered (as
/// at any graceful shutdown): that counts as "not yet", like a browser retry.
async fn auth_until(d: &Daemon, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let got = wait_for(Duration::from_secs(60), || async {
        let r = reqwest::get(d.url("/api/auth")).await.ok()?;
        let ok = r.status() == 200;
        let v: Value = r.json().await.ok()?;
        (ok && pred(&v)).then_some(v)
    })
    .await;
    got.unwrap_or_else(|| panic!("GET /api/auth never showed {what}\n{}", d.log_text()))
}

async fn login(d: &Daemon, password: &str, code: Option<&str>) -> (u16, Option<String>, Value) {
    let mut body = json!({ "email": DEMO_EMAIL, "password": password });
    if let Some(c) = code {
        body["code"] = c.into();
    }
    post(d, "/api/auth/login", body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn console_login_unlink_2fa_restart_and_rate_limit() {
    let (_sim, state, d) = start(&[]).await;

    // Against a simulator without a token the daemon logs into the demo account.
    let st = auth_until(&d, "the demo account", |v| {
        v["account"]["email"] == DEMO_EMAIL
    })
    .await;
    assert_eq!(st["mode"], "simulator");
    assert_eq!(st["login_target"], "simulator");
    assert_eq!(st["linked"], true);
    assert_eq!(st["token_source"], "state_dir");
    assert_eq!(st["can_unlink"], true);
    assert_eq!(st["account"]["name"], "Demo User");

    // Bad bodies: clear JSON errors, the daemon keeps running.
    let http = reqwest::Client::new();
    let r = http
        .post(d.url("/api/auth/login"))
        .body(r#"{"email":"a","password":"p"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"], "invalid_argument");
    for body in [r#"{"email": "a""#, r#"{"email":"a"}"#, "[]"] {
        let r = http
            .post(d.url("/api/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let b: Value = r.json().await.unwrap();
        assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()), "{b}");
    }

    // Unlink: token deleted, restart, stays unlinked (no demo auto-login).
    let (s, _, b) = post(&d, "/api/auth/logout", json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "unlinked");
    assert!(!token_saved(state.path()), "token file deleted");
    let st = auth_until(&d, "unlinked", |v| v["linked"] == false).await;
    assert_eq!(st["state"], "reauth_required");
    assert!(st["account"].is_null());
    assert!(
        d.wait_log(
            "restarting with the new Ring account",
            Duration::from_secs(30)
        ),
        "{}",
        d.log_text()
    );
    let cams = wait_for(Duration::from_secs(30), || async {
        let (s, _) = get_json(&d.url("/api/ring/cameras")).await;
        (s == 401).then_some(())
    })
    .await;
    assert!(cams.is_some(), "no cameras once unlinked\n{}", d.log_text());
    let (s, _, b) = post(&d, "/api/auth/logout", json!({})).await;
    assert_eq!((s, b["error"].as_str()), (409, Some("failed_precondition")));

    // Login: wrong password, then the 2FA prompt, a wrong code, the right code.
    let (s, _, b) = login(&d, WRONG_PASSWORD, None).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (401, Some("unauthenticated")),
        "{b}"
    );
    let (s, _, b) = login(&d, DEMO_PASSWORD, None).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (200, Some("2fa_required")),
        "{b}"
    );
    assert!(b["message"].as_str().unwrap().contains("+1xxxxxx89"), "{b}");
    assert_eq!(b["tsv_state"], "sms");
    let (s, _, b) = login(&d, DEMO_PASSWORD, Some(WRONG_CODE)).await;
    assert_eq!(s, 401, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("verification code"),
        "{b}"
    );
    assert!(!token_saved(state.path()));
    let (s, _, b) = login(&d, DEMO_PASSWORD, Some(DEMO_2FA_CODE)).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("linked")), "{b}");
    assert_eq!(b["account"]["email"], DEMO_EMAIL);
    assert!(token_saved(state.path()), "token file written");

    // After the in-process restart the bridge uses the account.
    let st = auth_until(&d, "linked again", |v| {
        v["linked"] == true && v["state"] == "authenticated" && v["account"]["email"] == DEMO_EMAIL
    })
    .await;
    assert_eq!(st["can_unlink"], true);
    let cams = wait_for(Duration::from_secs(30), || async {
        let (s, v) = get_json(&d.url("/api/ring/cameras")).await;
        (s == 200).then_some(v)
    })
    .await
    .unwrap_or_else(|| panic!("cameras after login\n{}", d.log_text()));
    assert_eq!(cams.as_array().map(Vec::len), Some(6));

    // Four attempts so far: one more is allowed, then 429 with Retry-After.
    let (s, _, _) = login(&d, WRONG_PASSWORD, None).await;
    assert_eq!(s, 401);
    let (s, retry, b) = login(&d, DEMO_PASSWORD, None).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (429, Some("resource_exhausted")),
        "{b}"
    );
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=300).contains(&secs), "{secs}");

    // Neither the password nor the code reached the log (the timestamp, the
    // first field of a line, is skipped: its fraction could hold any digits).
    let log = d.log_text();
    for line in log.lines() {
        let rest = line.split_once(' ').map_or(line, |(_, r)| r);
        for secret in [DEMO_PASSWORD, WRONG_PASSWORD, DEMO_2FA_CODE, WRONG_CODE] {
            assert!(!rest.contains(secret), "{secret:?} in the log: {line}");
        }
    }
    assert!(
        tokio::task::block_in_place(|| d.terminate()).is_some_and(|s| s.success()),
        "clean exit after restarts"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unlink_is_refused_when_the_token_comes_from_the_environment() {
    let (_sim, state, d) = start(&[("RING_REFRESH_TOKEN", "BOOTSTRAP")]).await;
    let st = auth_until(&d, "the env token", |v| v["linked"] == true).await;
    assert_eq!(st["token_source"], "environment");
    assert_eq!(st["can_unlink"], false);
    let (s, _, b) = post(&d, "/api/auth/logout", json!({})).await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("RING_REFRESH_TOKEN"),
        "{b}"
    );
    assert!(token_saved(state.path()), "token kept");
    // A cross-site form post cannot unlink either.
    let r = reqwest::Client::new()
        .post(d.url("/api/auth/logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Demo mode: nothing linked, a login would go to the real Ring (not called
/// here), nothing to unlink.
#[tokio::test(flavor = "multi_thread")]
async fn demo_mode_status_and_unlink_refused() {
    let state = tempfile::tempdir().unwrap();
    let d = tokio::task::block_in_place(|| spawn(&base_env(state.path())));
    let st = auth_until(&d, "demo mode", |v| v["mode"] == "demo").await;
    assert_eq!(st["linked"], false);
    assert_eq!(st["login_target"], "ring");
    assert_eq!(st["can_unlink"], false);
    assert!(
        st["token_source"].is_null() && st["account"].is_null(),
        "{st}"
    );
    let (s, _, b) = post(&d, "/api/auth/logout", json!({})).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (409, Some("failed_precondition")),
        "{b}"
    );
    assert!(!token_saved(state.path()), "nothing saved outside demo/");
}

#[tokio::test(flavor = "multi_thread")]
async fn login_reports_an_unreachable_ring_as_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), url));
    let d = tokio::task::block_in_place(|| spawn(&env));
    let (s, _, b) = login(&d, DEMO_PASSWORD, None).await;
    assert_eq!((s, b["error"].as_str()), (502, Some("unavailable")), "{b}");
    let (s, _) = get_json(&d.url("/api/auth")).await;
    assert_eq!(s, 200, "still running");
}

/// The sign-in page under a Home Assistant ingress prefix (the daemon has a
/// password and trusts only the proxy, so a request that bypassed the prefix
/// would fail): unlink, wrong password, 2FA prompt, wrong code, right code,
/// then the cameras of the linked account and live video. The shared WebRTC
/// UDP port is bound once and kept across the two restarts.
#[tokio::test(flavor = "multi_thread")]
async fn console_sign_in_page_with_2fa_under_the_ingress_prefix() {
    let (sim, state, d) = start(&[
        ("HTTP_PASSWORD", "only-the-proxy-gets-in"),
        ("INGRESS_PROXY_IP", "127.0.0.1"),
        ("RTC_UDP_PORT", "0"),
    ])
    .await;
    let proxy = IngressProxy::start(&d.url("")).await;
    let details = tokio::task::block_in_place(|| {
        browser::run_scenario("login", &proxy.console_url(), &sim.url())
    });
    assert_eq!(details["account"], DEMO_EMAIL);
    assert_eq!(details["cameras"], 6);
    assert!(token_saved(state.path()));
    // Live video over the UDP port kept across the restarts.
    let live = tokio::task::block_in_place(|| {
        browser::run_scenario("live", &proxy.console_url(), &sim.url())
    });
    assert!(live["frames"].as_u64().unwrap() > 20, "{live}");
    let seen = proxy.seen();
    for want in [
        "GET /api/auth",
        "POST /api/auth/logout",
        "POST /api/auth/login",
    ] {
        assert!(seen.iter().any(|s| s == want), "{want} not seen: {seen:#?}");
    }
    let log = d.log_text();
    assert!(!log.contains(DEMO_PASSWORD) && !log.contains(WRONG_PASSWORD));
    assert_eq!(
        log.matches("browser WebRTC uses one UDP port").count(),
        1,
        "UDP port bound once\n{log}"
    );
    assert_eq!(
        log.matches("restarting with the new Ring account").count(),
        2
    );
}
