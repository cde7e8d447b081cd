//! The browser console end to end: the real daemon on the in-process Ring
//! simulator, driven by Debian's Chromium through playwright-core
//! (`tests/browser/`). Screenshots land in `target/artifacts/`.
//!
//! Also the HTTP side of the console: asset serving, cache headers, the log
//! endpoints, and that an open log stream never holds up shutdown.

mod browser;
mod common;

use std::time::Duration;

use common::{Daemon, Sim, base_env};

/// The daemon against `sim`, with its camera list loaded.
fn daemon(sim: &Sim, state: &std::path::Path) -> Daemon {
    let mut env = base_env(state);
    env.push(("RING_SIMULATOR_URL".into(), sim.url()));
    let d = Daemon::spawn(&env);
    assert!(
        d.wait_log("camera list loaded", Duration::from_secs(30)),
        "{}",
        d.log_text()
    );
    d
}

async fn start() -> (Sim, tempfile::TempDir, Daemon) {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = tokio::task::block_in_place(|| daemon(&sim, state.path()));
    (sim, state, d)
}

fn scenario(name: &str, d: &Daemon, sim: &Sim) -> serde_json::Value {
    tokio::task::block_in_place(|| browser::run_scenario(name, &d.url("/"), &sim.url()))
}

#[tokio::test(flavor = "multi_thread")]
async fn console_lists_the_cameras_with_their_states() {
    let (sim, _state, d) = start().await;
    let details = scenario("cameras", &d, &sim);
    assert_eq!(details["cameras"], 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn console_history_paginates_and_plays_recordings() {
    let (sim, _state, d) = start().await;
    let details = scenario("history", &d, &sim);
    assert_eq!(details["events"], 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn console_logs_stream_new_lines_and_filter() {
    let (sim, _state, d) = start().await;
    scenario("logs", &d, &sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn console_shows_the_reauth_banner() {
    let (sim, _state, d) = start().await;
    scenario("reauth", &d, &sim);
}

/// Live tiles without a live stream: the WHEP offer's shape, failure + Retry,
/// talk-less cameras and a refused microphone (WHEP answers are faked in the
/// page, so this runs with or without the WHEP endpoint).
#[tokio::test(flavor = "multi_thread")]
async fn console_live_tiles_explain_failures() {
    let (sim, _state, d) = start().await;
    scenario("tiles", &d, &sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn console_assets_have_types_and_cache_headers() {
    let (_sim, _state, d) = start().await;
    let http = reqwest::Client::new();
    for (path, ty) in [
        ("/", "text/html; charset=utf-8"),
        ("/ingest.html", "text/html; charset=utf-8"),
        ("/assets/console.css", "text/css; charset=utf-8"),
        ("/assets/js/main.js", "text/javascript; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let r = http.get(d.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], ty, "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let etag = h["etag"].to_str().unwrap().to_string();
        let again = http
            .get(d.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path} revalidates");
        assert!(r.bytes().await.unwrap().len() > 100, "{path} has a body");
    }
    let index = http.get(d.url("/")).send().await.unwrap();
    assert!(
        index.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let same = http.get(d.url("/ingest.html")).send().await.unwrap();
    assert_eq!(
        same.text().await.unwrap(),
        index.text().await.unwrap(),
        "/ingest.html is the same app"
    );
    let missing = http.get(d.url("/assets/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    // The REST API is untouched: unknown API paths are still JSON 404s.
    let api404 = http.get(d.url("/api/nope")).send().await.unwrap();
    assert_eq!(api404.status(), 404);
    let body: serde_json::Value = api404.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn log_endpoints_filter_and_stream() {
    let (_sim, _state, d) = start().await;
    let http = reqwest::Client::new();
    let all: serde_json::Value = http
        .get(d.url("/api/logs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lines = all["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "HTTP API listening" && l["level"] == "info"),
        "{all}"
    );
    assert!(lines.iter().any(|l| l["level"] == "debug"));
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let info: serde_json::Value = http
        .get(d.url("/api/logs?level=info&limit=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lines = info["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["level"] != "debug"));

    let bad = http
        .get(d.url("/api/logs?level=loud"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // SSE: the backlog after a seq, then a new line caused by an API call.
    let last = *seqs.last().unwrap();
    let mut sse = http
        .get(d.url(&format!("/api/logs/stream?after={last}")))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    http.get(d.url("/api/ring/cameras/10001/history?limit=1"))
        .send()
        .await
        .unwrap();
    let text = read_until(&mut sse, "doorbots/10001/history").await;
    assert!(text.contains("event: log"));
    assert!(
        !text.contains(&format!("-{last}\n")),
        "lines up to `after` are not resent"
    );
    // The event id is `<boot>-<seq>`; sending it back resumes after it.
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an event id")
        .to_string();
    let (_, seq) = id.split_once('-').expect("boot-seq");
    let seq: u64 = seq.parse().unwrap();
    let mut resumed = http
        .get(d.url("/api/logs/stream"))
        .header("last-event-id", &id)
        .send()
        .await
        .unwrap();
    http.get(d.url("/api/ring/cameras/10002/history?limit=1"))
        .send()
        .await
        .unwrap();
    let text2 = read_until(&mut resumed, "doorbots/10002/history").await;
    let first: u64 = text2
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .and_then(|i| i.split_once('-'))
        .and_then(|(_, s)| s.parse().ok())
        .expect("an id in the resumed stream");
    assert_eq!(first, seq + 1, "resumes right after Last-Event-ID");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_log_stream_does_not_block_shutdown() {
    let (_sim, _state, d) = start().await;
    let mut sse = reqwest::get(d.url("/api/logs/stream")).await.unwrap();
    assert!(sse.chunk().await.unwrap().is_some());
    let status = tokio::task::block_in_place(|| d.terminate());
    assert!(
        status.is_some_and(|s| s.success()),
        "daemon exits cleanly within the deadline: {status:?}"
    );
}

/// Reads a streaming response until its text contains `needle` (10 s at most)
/// and returns the text read.
async fn read_until(resp: &mut reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "{needle:?} not in the stream: {text}");
    text
}
