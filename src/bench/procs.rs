//! The simulator and the daemon as child processes of the bench: spawned from
//! the current executable, their logs written to files, their addresses read
//! from those logs (`sim_url=`, `http_addr=`, `rtsp_addr=`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};

/// Log filter of the children: the production default (`info`), so logging
/// costs what it costs in production.
const CHILD_LOG: &str = "info,rumqttd=warn,webrtc=error,webrtc_ice=error,webrtc_srtp=error,webrtc_dtls=error,webrtc_sctp=error";

/// A running child process (killed when dropped).
pub struct Proc {
    /// What it is ("sim", "daemon").
    pub name: &'static str,
    /// Its process id.
    pub pid: u32,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Where its stderr goes.
    pub log_path: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, log_path: PathBuf) -> anyhow::Result<Proc> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env("RINGBRIDGE_LOG", CHILD_LOG)
            .env("RINGBRIDGE_FORMAT", "pretty")
            .env("NO_COLOR", "1")
            .env_remove("RING_DEBUG")
            .env_remove("RING_REFRESH_TOKEN")
            .env_remove("RING_BRIDGE_CONFIG")
            .env_remove("MQTT_URL");
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning the {name}"))?;
        let pid = child.id().context("child has no pid")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let outs: [Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>; 2] = [
            child.stderr.take().map(|s| Box::new(s) as _),
            child.stdout.take().map(|s| Box::new(s) as _),
        ];
        let file = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let file = Arc::new(tokio::sync::Mutex::new(tokio::fs::File::from_std(file)));
        for out in outs.into_iter().flatten() {
            let (lines, file) = (lines.clone(), file.clone());
            tokio::spawn(async move {
                let mut rd = BufReader::new(out).lines();
                while let Ok(Some(line)) = rd.next_line().await {
                    {
                        let mut f = file.lock().await;
                        let _ = f.write_all(line.as_bytes()).await;
                        let _ = f.write_all(b"\n").await;
                    }
                    if let Ok(mut l) = lines.lock() {
                        // Keep only what address parsing and error reports need.
                        if l.len() < 400 {
                            l.push(line);
                        }
                    }
                }
                let _ = file.lock().await.flush().await;
            });
        }
        Ok(Proc {
            name,
            pid,
            child,
            lines,
            log_path,
        })
    }

    /// Waits until a log line contains `key=VALUE`; returns VALUE.
    pub async fn wait_value(&mut self, key: &str, timeout: Duration) -> anyhow::Result<String> {
        let needle = format!("{key}=");
        let end = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = self.find_value(&needle) {
                return Ok(v);
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                bail!(
                    "the {} exited ({st}) before logging {key}; log: {}",
                    self.name,
                    self.log_path.display()
                );
            }
            if tokio::time::Instant::now() >= end {
                bail!(
                    "the {} did not log {key} within {timeout:?}; log: {}",
                    self.name,
                    self.log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn find_value(&self, needle: &str) -> Option<String> {
        let lines = self.lines.lock().ok()?;
        lines.iter().find_map(|l| {
            let i = l.find(needle)? + needle.len();
            let v: String = l[i..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ',')
                .collect();
            Some(v.trim_matches('"').to_string())
        })
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

/// `ring-bridge sim --listen 127.0.0.1:0 --stamp-frames --cameras N` (with
/// `--audio-per-send` when `audio_per_send` is not Ring's 1, so an older `--exe`
/// still runs the default); returns it and its base URL.
pub async fn spawn_sim(
    exe: &Path,
    cameras: usize,
    audio_per_send: u32,
    dir: &Path,
) -> anyhow::Result<(Proc, String)> {
    let mut cmd = Command::new(exe);
    cmd.args(["sim", "--listen", "127.0.0.1:0", "--stamp-frames"])
        .arg("--cameras")
        .arg(cameras.to_string());
    if audio_per_send != 1 {
        cmd.arg("--audio-per-send").arg(audio_per_send.to_string());
    }
    let mut p = Proc::spawn("sim", cmd, dir.join("sim.log"))?;
    let url = p.wait_value("sim_url", Duration::from_secs(60)).await?;
    Ok((p, url))
}

/// Puts the simulator's `n` extra cameras (ids from [`crate::sim::EXTRA_FIRST_ID`])
/// into video mode `hevc_only`: H.265 to an offer that lists it, refusal otherwise
/// (`POST /_sim/cameras/{id}/video`).
pub async fn sim_cameras_h265_only(sim_url: &str, n: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for i in 0..n {
        let id = crate::sim::EXTRA_FIRST_ID + i as u64;
        let url = format!("{}/_sim/cameras/{id}/video", sim_url.trim_end_matches('/'));
        client
            .post(&url)
            .json(&serde_json::json!({"mode": "hevc_only"}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("switching simulator camera {id} to H.265"))?;
    }
    Ok(())
}

/// The daemon's addresses.
pub struct DaemonAddrs {
    /// HTTP API.
    pub http: SocketAddr,
    /// RTSP server.
    pub rtsp: SocketAddr,
}

/// `ring-bridge run` against the simulator at `sim_url`, on loopback with
/// OS-picked ports, MQTT off, state in `dir/state`, `config` as its TOML file.
pub async fn spawn_daemon(
    exe: &Path,
    sim_url: &str,
    dir: &Path,
    config: &str,
) -> anyhow::Result<(Proc, DaemonAddrs)> {
    let state = dir.join("state");
    // A token saved by an earlier run belongs to another simulator: start clean.
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).context("creating the daemon's state dir")?;
    let cfg = dir.join("ring-bridge.toml");
    std::fs::write(&cfg, config).context("writing the daemon's config")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("RING_SIMULATOR_URL", sim_url)
        .env("LISTEN_IP", "127.0.0.1")
        .env("HTTP_PORT", "0")
        .env("RTSP_PORT", "0")
        .env("MQTT_ENABLED", "false")
        .env("RING_BRIDGE_STATE_DIR", &state);
    let mut p = Proc::spawn("daemon", cmd, dir.join("daemon.log"))?;
    let http = p.wait_value("http_addr", Duration::from_secs(60)).await?;
    let rtsp = p.wait_value("rtsp_addr", Duration::from_secs(60)).await?;
    let addrs = DaemonAddrs {
        http: http.parse().context("parsing http_addr")?,
        rtsp: rtsp.parse().context("parsing rtsp_addr")?,
    };
    Ok((p, addrs))
}
