//! What a missing GStreamer plugin does to the real binary. The plugin is
//! hidden for real: the daemon gets a plugin directory holding every system
//! plugin but one, and a registry of its own, so GStreamer cannot find the
//! plugin's elements.
//!
//! - demo mode without the pango overlays refuses to start, naming the
//!   element and the package (`gstreamer1.0-x`);
//! - `ring-bridge doctor` lists it with ✗ and exits 1;
//! - a daemon on an account (here the simulator) without the JPEG encoder
//!   starts, logs the degraded part once and reports it in `/healthz` and in
//!   the console's banner (Chromium).

mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Daemon, Sim, base_env, bin, get_json, wait_for};
use gstreamer as gst;
use gstreamer::prelude::*;

/// A plugin directory with every system plugin except the one that
/// provides `element`, plus the environment that makes GStreamer use it.
struct HiddenPlugin {
    _dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

fn hide_plugin_of(element: &str) -> HiddenPlugin {
    gst::init().unwrap();
    let file: PathBuf = gst::ElementFactory::find(element)
        .and_then(|f| f.plugin())
        .and_then(|p| p.filename())
        .unwrap_or_else(|| panic!("{element} is installed here"));
    let system = file.parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for e in std::fs::read_dir(system).unwrap().flatten() {
        let p = e.path();
        if p != file && p.extension().is_some_and(|x| x == "so") {
            std::os::unix::fs::symlink(&p, plugins.join(p.file_name().unwrap())).unwrap();
        }
    }
    let env = vec![
        (
            "GST_PLUGIN_SYSTEM_PATH_1_0".to_string(),
            plugins.display().to_string(),
        ),
        ("GST_PLUGIN_PATH_1_0".into(), String::new()),
        (
            "GST_REGISTRY_1_0".into(),
            dir.path().join("registry.bin").display().to_string(),
        ),
    ];
    HiddenPlugin { _dir: dir, env }
}

fn run_cli(args: &[&str], state: &Path, extra: &[(String, String)]) -> (bool, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("RING_REFRESH_TOKEN")
        .env_remove("RING_SIMULATOR_URL")
        .env_remove("RING_BRIDGE_CONFIG")
        .stdin(Stdio::null());
    for (k, v) in base_env(state).iter().chain(extra) {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ring-bridge");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn demo_mode_refuses_without_the_text_overlays() {
    let hidden = hide_plugin_of("textoverlay");
    let state = tempfile::tempdir().unwrap();
    let (ok, out) = run_cli(&["run"], state.path(), &hidden.env);
    assert!(!ok, "demo mode started without textoverlay:\n{out}");
    assert!(
        out.contains("`textoverlay` is missing") && out.contains("gstreamer1.0-x"),
        "{out}"
    );
    assert!(
        !out.contains("HTTP API listening"),
        "it should refuse before serving:\n{out}"
    );

    let (ok, out) = run_cli(
        &["sim", "--listen", "127.0.0.1:0"],
        state.path(),
        &hidden.env,
    );
    assert!(!ok && out.contains("gstreamer1.0-x"), "{out}");
}

#[test]
fn doctor_lists_the_missing_element_and_its_package() {
    let state = tempfile::tempdir().unwrap();
    let (ok, out) = run_cli(&["doctor"], state.path(), &[]);
    assert!(ok, "doctor on a complete machine:\n{out}");
    assert!(out.contains("✓ textoverlay (gstreamer1.0-x"), "{out}");
    assert!(!out.contains("✗"), "{out}");

    let hidden = hide_plugin_of("textoverlay");
    let (ok, out) = run_cli(&["doctor"], state.path(), &hidden.env);
    assert!(!ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("✗ textoverlay"))
        .unwrap_or_else(|| panic!("no ✗ textoverlay line:\n{out}"));
    assert!(
        line.contains("install the Debian package gstreamer1.0-x"),
        "{line}"
    );
    assert!(out.contains("✓ rtph264pay"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_daemon_without_jpegenc_starts_degraded() {
    let hidden = hide_plugin_of("jpegenc");
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut env = base_env(state.path());
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.extend(hidden.env.iter().cloned());
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let health = wait_for(Duration::from_secs(30), || async {
        let (status, body) = get_json(&d.url("/healthz")).await;
        (status == 200).then_some(body)
    })
    .await
    .expect("healthz answers");
    let degraded = health["degraded"].as_array().expect("degraded list");
    let snapshot = degraded
        .iter()
        .find(|p| p["part"] == "snapshot")
        .unwrap_or_else(|| panic!("{health}"));
    assert_eq!(
        snapshot["missing"],
        serde_json::json!([{"element": "jpegenc", "package": "gstreamer1.0-plugins-good"}])
    );
    assert!(
        degraded.iter().all(|p| p["part"] != "rtsp"),
        "RTSP needs no JPEG: {health}"
    );
    let log = d.log_text();
    let warns: Vec<_> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("`jpegenc` is missing"))
        .collect();
    assert!(!warns.is_empty(), "{log}");
    assert!(
        warns[0].contains("gstreamer1.0-plugins-good"),
        "{}",
        warns[0]
    );

    let details =
        tokio::task::block_in_place(|| browser::run_scenario("degraded", &d.url("/"), &sim.url()));
    assert!(
        details["banner"]
            .as_str()
            .is_some_and(|b| b.contains("jpegenc"))
    );
}
