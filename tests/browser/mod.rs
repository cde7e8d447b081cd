//! Rust side of the browser tests: checks that Chromium and the pinned
//! playwright-core are there (installing the npm package with `npm ci` when it
//! is missing), runs one scenario from `tests/browser/scenarios/` with Node
//! under a deadline, and fails the test with the scenario's output.
//!
//! Screenshots go to `<target>/artifacts/`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest a scenario may run (Node enforces a slightly shorter one itself).
const SCENARIO_DEADLINE: Duration = Duration::from_secs(150);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `<target>/artifacts`, created.
pub fn artifacts_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp
        .parent()
        .map(|p| p.join("artifacts"))
        .unwrap_or_else(|| root().join("target/artifacts"));
    std::fs::create_dir_all(&dir).expect("create target/artifacts");
    dir
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Makes sure Chromium, Node and playwright-core are available; runs
/// `npm ci --prefix tests/browser` once if the package is missing.
pub fn ensure_driver() {
    static READY: Mutex<bool> = Mutex::new(false);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if *ready {
        return;
    }
    assert!(
        chromium().exists(),
        "{} not found: the browser tests need Debian's chromium (`bash scripts/setup-deps.sh test`)",
        chromium().display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node not found: the browser tests need Node.js 20+ (`apt-get install nodejs npm`)"
    );
    let dir = root().join("tests/browser");
    if !dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        eprintln!("installing the browser test driver: npm ci --prefix tests/browser");
        let status = run_bounded(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir),
            Duration::from_secs(240),
        );
        assert!(
            status.0 == Some(0),
            "npm ci --prefix tests/browser failed:\n{}",
            status.1
        );
    }
    *ready = true;
}

/// Runs `cmd` with a deadline, killing it on expiry. Returns (exit code, output).
fn run_bounded(cmd: &mut Command, deadline: Duration) -> (Option<i32>, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut readers = Vec::new();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let out = out.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("[browser] {line}");
                out.lock().unwrap().push(line);
            }
        }));
    }
    let end = Instant::now() + deadline;
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code(),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                out.lock()
                    .unwrap()
                    .push(format!("killed after {deadline:?}"));
                break None;
            }
        }
    };
    for r in readers {
        let _ = r.join();
    }
    let text = out.lock().unwrap().join("\n");
    (code, text)
}

/// Runs scenario `name` against the console at `console_url` (ending in `/`)
/// and the simulator at `sim_url`; panics with the output unless it passed.
/// Returns the scenario's `details` JSON.
pub fn run_scenario(name: &str, console_url: &str, sim_url: &str) -> serde_json::Value {
    ensure_driver();
    let dir = root().join("tests/browser");
    let (code, out) = run_bounded(
        Command::new("node")
            .arg(dir.join("run.mjs"))
            .arg(name)
            .current_dir(&dir)
            .env("CONSOLE_URL", console_url)
            .env("SIM_URL", sim_url)
            .env("ARTIFACTS_DIR", artifacts_dir())
            .env("CHROMIUM_PATH", chromium())
            .env(
                "SCENARIO_TIMEOUT_MS",
                (SCENARIO_DEADLINE.as_millis() - 10_000).to_string(),
            ),
        SCENARIO_DEADLINE,
    );
    let result = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok());
    match result {
        Some(r) if code == Some(0) && r["ok"] == true => r["details"].clone(),
        Some(r) => panic!(
            "browser scenario {name} failed: {}\n--- output ---\n{out}",
            r["error"].as_str().unwrap_or("?")
        ),
        None => {
            panic!("browser scenario {name} gave no result (exit {code:?})\n--- output ---\n{out}")
        }
    }
}

/// Whether `path` exists relative to the crate root (used to detect features
/// that are not merged yet).
pub fn source_exists(path: &str) -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).exists()
}
