//! Token life cycle of the real daemon binary: rotation persisted across
//! restarts, kill -9 right after a rotation, `ring-bridge auth` with piped
//! stdin, demo mode, and configuration errors.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Daemon, Sim, base_env, bin, get_json};
use ring_bridge::ring::state::TokenStore;

fn stored_token(dir: &std::path::Path) -> Option<String> {
    let t = TokenStore::open(dir).ok()?.load_token().ok()??;
    Some(t.refresh_token.expose().clone())
}

async fn refresh_works(sim: &Sim, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}oauth/token", sim.url()))
        .header("hardware_id", "test")
        .json(&serde_json::json!({
            "client_id": "ring_official_android", "scope": "client",
            "grant_type": "refresh_token", "refresh_token": token
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn cameras_load(d: &Daemon) -> bool {
    common::wait_for(Duration::from_secs(30), || async {
        let (st, _) = get_json(&d.url("/api/ring/cameras")).await;
        (st == 200).then_some(())
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_survives_restart_and_old_token_is_dead() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let token0 = sim.handle.bootstrap_refresh_token();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("RING_REFRESH_TOKEN".into(), token0.clone()));

    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    assert!(cameras_load(&d).await, "{}", d.log_text());
    let token1 = stored_token(state.path()).expect("token stored");
    assert_ne!(token1, token0, "rotated token persisted");
    assert!(
        !d.log_text().contains(&token0) && !d.log_text().contains(&token1),
        "secrets in log"
    );
    tokio::task::block_in_place(|| d.terminate()).expect("clean exit on SIGTERM");

    // The used token is dead at Ring.
    assert_eq!(refresh_works(&sim, &token0).await, 401);
    // File mode 0600.
    use std::os::unix::fs::PermissionsExt;
    let path = TokenStore::open(state.path()).unwrap().token_path();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Same environment (the old env token) and state dir: the state dir wins.
    let d2 = tokio::task::block_in_place(|| Daemon::spawn(&env));
    assert!(
        cameras_load(&d2).await,
        "restart with the rotated token:\n{}",
        d2.log_text()
    );
    let (_, auth) = get_json(&d2.url("/api/ring/auth")).await;
    assert_eq!(auth["state"], "authenticated");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_right_after_rotation_never_loses_the_token() {
    // Access tokens that need renewing at every call make rotations frequent.
    let sim = Sim::start_with(ring_bridge::sim::SimOptions {
        access_token_ttl: Duration::from_secs(61),
        ..Default::default()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push((
        "RING_REFRESH_TOKEN".into(),
        sim.handle.bootstrap_refresh_token(),
    ));

    for round in 0..3 {
        let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
        assert!(cameras_load(&d).await, "round {round}:\n{}", d.log_text());
        let before = stored_token(state.path()).unwrap();
        let gen0 = sim.state().await["token_generation"].as_u64().unwrap();
        // Trigger calls until a rotation lands on disk, then kill at once.
        let rotated = common::wait_for(Duration::from_secs(30), || async {
            let _ = reqwest::get(d.url("/api/ring/cameras/10001/history?limit=1")).await;
            let generation = sim.state().await["token_generation"].as_u64().unwrap();
            let now = stored_token(state.path());
            (generation > gen0 && now.as_deref() != Some(before.as_str())).then_some(())
        })
        .await;
        assert!(rotated.is_some(), "round {round}: no rotation observed");
        d.kill9();
        // No temp file is mistaken for the token, and the next process works.
        let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
        assert!(
            cameras_load(&d).await,
            "round {round} after kill -9:\n{}",
            d.log_text()
        );
        d.kill9();
    }
}

fn run_auth(sim: &Sim, state: &std::path::Path, stdin: &str) -> std::process::Output {
    let mut child = Command::new(bin())
        .arg("auth")
        .env("RING_SIMULATOR_URL", sim.url())
        .env("RING_BRIDGE_STATE_DIR", state)
        .env_remove("RING_REFRESH_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_with_2fa_through_piped_stdin() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    use ring_bridge::sim::{DEMO_2FA_CODE, DEMO_EMAIL, DEMO_PASSWORD};

    // Wrong code: clear error, nothing stored.
    let out = tokio::task::block_in_place(|| {
        run_auth(
            &sim,
            state.path(),
            &format!("{DEMO_EMAIL}\n{DEMO_PASSWORD}\n000000\n"),
        )
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.to_lowercase().contains("code"), "{err}");
    assert!(stored_token(state.path()).is_none());

    // Wrong password: clear error.
    let out = tokio::task::block_in_place(|| {
        run_auth(&sim, state.path(), &format!("{DEMO_EMAIL}\nnope\n"))
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("nope"), "password echoed: {err}");

    // Right code.
    let out = tokio::task::block_in_place(|| {
        run_auth(
            &sim,
            state.path(),
            &format!("{DEMO_EMAIL}\n{DEMO_PASSWORD}\n{DEMO_2FA_CODE}\n"),
        )
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Verification code"),
        "prompted for the code: {err}"
    );
    assert!(!err.contains(DEMO_PASSWORD), "password echoed: {err}");
    assert!(stored_token(state.path()).is_some());

    // The daemon runs on the stored token with no env token.
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    assert!(cameras_load(&d).await, "{}", d.log_text());
    let s = sim.state().await;
    assert!(s["requests"]["oauth"].as_u64().unwrap() >= 4, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_mode_without_any_token() {
    let state = tempfile::tempdir().unwrap();
    let d = tokio::task::block_in_place(|| Daemon::spawn(&base_env(state.path())));
    assert!(
        d.wait_log("demo mode", Duration::from_secs(10)),
        "{}",
        d.log_text()
    );
    assert_eq!(
        d.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("demo mode"))
            .count(),
        1,
        "one clear line"
    );
    assert!(cameras_load(&d).await, "{}", d.log_text());
    let (_, cams) = get_json(&d.url("/api/ring/cameras")).await;
    assert_eq!(cams.as_array().unwrap().len(), 6);
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[http]\nprot = 1\n").unwrap();
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml") && err.contains("prot") && err.contains("port"),
        "{err}"
    );

    let out = Command::new(bin())
        .arg("run")
        .env("HTTP_PORT", "eighty")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("HTTP_PORT") && err.contains("65535"), "{err}");
}

#[test]
fn check_config_prints_effective_config_redacted() {
    let out = Command::new(bin())
        .arg("check-config")
        .env("RING_REFRESH_TOKEN", "very-secret-token")
        .env("HTTP_PORT", "3100")
        .env_remove("RING_BRIDGE_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("port = 3100"), "{text}");
    assert!(
        text.contains("<redacted>") && !text.contains("very-secret-token"),
        "{text}"
    );
}
