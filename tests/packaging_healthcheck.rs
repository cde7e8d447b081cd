//! `ring-bridge healthcheck` against the real daemon: it follows the port of
//! the effective configuration (a TOML `http.port` without `HTTP_PORT`, as
//! the Docker HEALTHCHECK sees it), and fails when nothing answers there.

mod common;

use std::process::{Command, Output};

use common::{Daemon, Sim, base_env, bin};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `ring-bridge healthcheck` with exactly `env` (plus PATH).
fn healthcheck(env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["healthcheck", "--timeout", "5s"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ring-bridge healthcheck")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_follows_the_port_of_the_config_file() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = state.path().join("ring-bridge.toml");
    std::fs::write(&cfg, format!("[http]\nport = {port}\n")).unwrap();
    let mut env = base_env(state.path());
    env.retain(|(k, _)| k != "HTTP_PORT");
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    assert_eq!(d.http.port(), port, "the daemon listens on http.port");

    // The container's view: the config file, loopback, no HTTP_PORT.
    let cfg_env = ("RING_BRIDGE_CONFIG", cfg.display().to_string());
    let listen = ("LISTEN_IP", "127.0.0.1".to_string());
    let out = tokio::task::block_in_place(|| healthcheck(&[cfg_env.clone(), listen.clone()]));
    assert!(out.status.success(), "{}", text(&out));

    // The default listen address 0.0.0.0 is checked on 127.0.0.1.
    let out = tokio::task::block_in_place(|| healthcheck(std::slice::from_ref(&cfg_env)));
    assert!(out.status.success(), "{}", text(&out));

    // HTTP_PORT overrides the file, exactly as for `run`: nothing there.
    let elsewhere = ("HTTP_PORT", free_port().to_string());
    let out =
        tokio::task::block_in_place(|| healthcheck(&[cfg_env.clone(), listen.clone(), elsewhere]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no answer from"), "{}", text(&out));

    // A port picked at start-up cannot be checked: a clear error.
    let out = tokio::task::block_in_place(|| {
        healthcheck(&[listen.clone(), ("HTTP_PORT", "0".to_string())])
    });
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("http.port is 0"), "{}", text(&out));

    // Daemon gone: unhealthy.
    let st = tokio::task::block_in_place(|| d.terminate());
    assert!(st.is_some(), "daemon stops on SIGTERM");
    let out = tokio::task::block_in_place(|| healthcheck(&[cfg_env, listen]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
