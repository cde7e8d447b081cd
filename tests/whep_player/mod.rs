//! Rust side of the WHEP players next to this file: `aiortc_player.py` (run with
//! the venv that `scripts/setup-deps.sh test` installs in
//! `target/whep-player-venv`) and `gst_player.py` (GStreamer's `webrtcbin`, run
//! with the system Python). Sends commands on stdin and reads JSON events from
//! stdout. The child is killed when the [`Player`] is dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's Python (`RING_BRIDGE_WHEP_PLAYER_PYTHON` overrides it).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("RING_BRIDGE_WHEP_PLAYER_PYTHON") {
        return PathBuf::from(p);
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp
        .parent()
        .map(PathBuf::from)
        .unwrap_or(root().join("target"));
    target.join("whep-player-venv/bin/python")
}

/// A running player.
pub struct Player {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
    /// Every event so far, for failure messages.
    pub seen: Vec<Value>,
}

impl Player {
    /// Starts the aiortc player against `whep_url`
    /// (`http://127.0.0.1:PORT/api/webrtc/CAM/whep`) with extra command-line `args`.
    pub fn start(whep_url: &str, args: &[&str]) -> Player {
        let py = python();
        assert!(
            py.exists(),
            "{} not found: the aiortc player needs `bash scripts/setup-deps.sh test`",
            py.display()
        );
        Player::spawn("aiortc", &py, "aiortc_player.py", whep_url, args)
    }

    /// Starts the GStreamer `webrtcbin` player (`gst_player.py`, the system
    /// Python with its GObject bindings) against `whep_url`.
    pub fn start_gst(whep_url: &str) -> Player {
        Player::spawn(
            "webrtcbin",
            std::path::Path::new("/usr/bin/python3"),
            "gst_player.py",
            whep_url,
            &[],
        )
    }

    /// Runs `script` (in this directory) with `python`; `label` prefixes its
    /// stderr and unparsed stdout lines.
    fn spawn(
        label: &'static str,
        python: &std::path::Path,
        script: &str,
        whep_url: &str,
        args: &[&str],
    ) -> Player {
        let mut child = Command::new(python)
            .arg(root().join("tests/whep_player").join(script))
            .arg("--url")
            .arg(whep_url)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start the {label} player: {e}"));
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                    Err(_) => eprintln!("[{label}] {line}"),
                }
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{label}] {line}");
            }
        });
        let stdin = child.stdin.take();
        Player {
            child,
            stdin,
            events,
            seen: Vec::new(),
        }
    }

    /// Sends one command (`tone`, `silence`, `stats`, `quit`).
    pub fn send(&mut self, cmd: &str) {
        let stdin = self.stdin.as_mut().expect("player stdin open");
        writeln!(stdin, "{cmd}").expect("write to the player");
        stdin.flush().expect("flush the player's stdin");
    }

    /// The next event named `name` (others are kept in `seen`), within `timeout`.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    assert_ne!(v["event"], "error", "player error: {v}");
                    if v["event"] == name {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "no {name:?} event within {timeout:?}; seen: {:?}",
                    self.seen
                ),
            }
        }
    }

    /// A fresh stats event.
    pub fn stats(&mut self) -> Value {
        self.send("stats");
        self.wait_event("stats", Duration::from_secs(10))
    }

    /// Polls stats until `ok` holds, within `timeout`; returns the last stats.
    pub fn wait_stats(&mut self, timeout: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let s = self.stats();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < end, "stats never matched: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `quit`: the player DELETEs its session and exits; returns the DELETE status.
    pub fn quit(mut self) -> u64 {
        self.send("quit");
        let closed = self.wait_event("closed", Duration::from_secs(20));
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "player exited with {st}");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        closed["delete_status"].as_u64().unwrap_or(0)
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `profile-level-id` of the H.264 format in an answer SDP.
pub fn answer_profile_level_id(sdp: &str) -> Option<String> {
    let pt = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=rtpmap:")?.strip_suffix(" H264/90000"))?;
    let fmtp = sdp
        .lines()
        .find_map(|l| l.strip_prefix(&format!("a=fmtp:{pt} ")))?;
    fmtp.split(';')
        .find_map(|kv| kv.trim().strip_prefix("profile-level-id="))
        .map(|v| v.to_ascii_lowercase())
}
