//! Shared harness for integration tests: an in-process simulator, the real
//! `ring-bridge` binary as a child process, and bounded waits.
#![allow(dead_code)]

pub mod proxy;
pub mod rtsp;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The simulator running in this test process on 127.0.0.1:0.
pub struct Sim {
    pub handle: ring_bridge::sim::SimHandle,
    pub cancel: CancellationToken,
}

impl Sim {
    pub async fn start() -> Sim {
        Self::start_with(ring_bridge::sim::SimOptions::default()).await
    }

    pub async fn start_with(opts: ring_bridge::sim::SimOptions) -> Sim {
        let cancel = CancellationToken::new();
        let handle = ring_bridge::sim::Simulator::start(
            opts,
            "127.0.0.1:0".parse().unwrap(),
            cancel.clone(),
        )
        .await
        .expect("simulator starts");
        Sim { handle, cancel }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.handle.addr)
    }

    /// `GET /_sim/state`.
    pub async fn state(&self) -> serde_json::Value {
        reqwest::get(format!("{}_sim/state", self.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /_sim/<path>` with a JSON body.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}_sim/{path}", self.url()))
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The real daemon binary, killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub http: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Path of the built `ring-bridge` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ring-bridge"))
}

/// Environment every test daemon gets: loopback, ports picked by the OS.
pub fn base_env(state_dir: &Path) -> Vec<(String, String)> {
    [
        ("LISTEN_IP", "127.0.0.1".to_string()),
        ("HTTP_PORT", "0".into()),
        ("RTSP_PORT", "0".into()),
        ("RING_BRIDGE_STATE_DIR", state_dir.display().to_string()),
        ("RINGBRIDGE_LOG", "info,ring_bridge=debug".into()),
        ("RINGBRIDGE_FORMAT", "pretty".into()),
        ("NO_COLOR", "1".into()),
        ("MQTT_ENABLED", "false".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl Daemon {
    /// Starts `ring-bridge run` with `env` (on top of a cleared Ring env) and waits
    /// for the HTTP listener to be announced in its log.
    pub fn spawn(env: &[(String, String)]) -> Daemon {
        let mut cmd = Command::new(bin());
        cmd.arg("run")
            .env_remove("RING_REFRESH_TOKEN")
            .env_remove("RING_SIMULATOR_URL")
            .env_remove("MQTT_URL")
            .env_remove("RING_BRIDGE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ring-bridge");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = log.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(addr) = parse_http_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    eprintln!("[daemon] {line}");
                    log.lock().unwrap().push(line);
                }
            });
        }
        let http = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "daemon did not announce its HTTP address; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Daemon { child, http, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_line(|l| l.contains(needle), timeout)
    }

    /// Waits until a log line satisfies `pred`.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log.lock().unwrap().iter().any(|l| pred(l)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns the exit status.
    pub fn terminate(mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id() as i32;
        unsafe_kill(pid, 15);
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: i32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Finds `http_addr=127.0.0.1:PORT` in a log line.
fn parse_http_addr(line: &str) -> Option<SocketAddr> {
    let i = line.find("http_addr=")?;
    let rest = &line[i + "http_addr=".len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ',')
        .unwrap_or(rest.len());
    rest[..end].trim_matches('"').parse().ok()
}

/// Polls `f` until it returns Some, at most `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET and parse JSON, returning (status, body).
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The daemon against `sim` with the TOML `config` and `extra` environment,
/// returned once its camera list answers.
pub async fn daemon_on(sim: &Sim, state: &Path, config: &str, extra: &[(&str, &str)]) -> Daemon {
    let cfg = state.join("ring-bridge.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut env = base_env(state);
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    env.push(("RING_BRIDGE_CONFIG".into(), cfg.display().to_string()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let d = tokio::task::block_in_place(|| Daemon::spawn(&env));
    let loaded = wait_for(Duration::from_secs(30), || async {
        (get_json(&d.url("/api/ring/cameras")).await.0 == 200).then_some(())
    })
    .await;
    assert!(loaded.is_some(), "{}", d.log_text());
    d
}
