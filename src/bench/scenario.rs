//! One benchmark scenario: a fresh simulator and daemon, cold/warm
//! time-to-first-frame rounds, the load phase (N cameras × viewers for a fixed
//! window, with CPU and memory of the daemon from `/proc`), then optionally the
//! ffmpeg baseline on the same stream (`ratio_rounds` pairs of a load window and
//! a baseline window) and the idle measurement.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

use super::baseline;
use super::fleet::{Target, Viewer};
use super::floor;
use super::procs::{self, Proc};
use super::procstat::{self, CpuWindow, MachineWindow, RssSampler, mem, wait_quiet};
use super::report::{DaemonUse, IdleUse, ScenarioResult};
use super::stats::r3;
use super::tally::{self, SIM_FPS};
use super::ttff;
use super::viewer::{ViewerKind, Window};

/// Where and how to run.
#[derive(Clone, Debug)]
pub struct Env {
    /// The `ring-bridge` executable run as simulator and daemon.
    pub exe: PathBuf,
    /// Output directory (logs under `runs/`).
    pub out: PathBuf,
    /// Frames later than this count as late.
    pub late_after: Duration,
    /// Longest wait for a quiet machine before each scenario.
    pub quiet_wait: Duration,
    /// Opus packets per audio send of the simulated cameras (1: Ring's schedule).
    pub sim_audio_per_send: u32,
}

/// What one scenario runs.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Cameras streamed at once.
    pub cameras: usize,
    /// RTSP viewers per camera.
    pub rtsp: usize,
    /// WebRTC (WHEP) viewers per camera.
    pub webrtc: usize,
    /// Measured window.
    pub duration: Duration,
    /// Settling time between the last viewer's first frame and the window.
    pub warmup: Duration,
    /// Cold/warm time-to-first-frame rounds before the load phase.
    pub ttff_rounds: usize,
    /// Run the ffmpeg baseline after the load phase.
    pub baseline: bool,
    /// Load and baseline windows back to back this many times (with the
    /// baseline; every second pair in the other order); the ratio is the
    /// median pair's.
    pub ratio_rounds: usize,
    /// The cameras stream H.265 (simulator `hevc_only`, daemon `stream.h265`).
    pub h265: bool,
    /// After the load phase, measure the daemon's CPU this long with no viewer
    /// and no session (zero: skip).
    pub idle: Duration,
}

impl Scenario {
    /// `4cam-2rtsp-2webrtc` (`-h265` appended for H.265 cameras).
    pub fn label(&self) -> String {
        format!(
            "{}cam-{}rtsp-{}webrtc{}",
            self.cameras,
            self.rtsp,
            self.webrtc,
            if self.h265 { "-h265" } else { "" }
        )
    }

    /// The codec the cameras stream: `h264` or `h265`.
    pub fn video_codec(&self) -> &'static str {
        if self.h265 { "h265" } else { "h264" }
    }
}

/// The running pair of processes.
struct Rig {
    sim: Proc,
    daemon: Proc,
    target: Target,
    cameras: Vec<String>,
}

async fn start_rig(env: &Env, sc: &Scenario, dir: &std::path::Path) -> anyhow::Result<Rig> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (sim, sim_url) =
        procs::spawn_sim(&env.exe, sc.cameras, env.sim_audio_per_send, dir).await?;
    if sc.h265 {
        procs::sim_cameras_h265_only(&sim_url, sc.cameras).await?;
    }
    let config = daemon_config(sc);
    let (daemon, addrs) = procs::spawn_daemon(&env.exe, &sim_url, dir, &config).await?;
    let target = Target::new(addrs.http, addrs.rtsp)?;
    let cameras = wait_cameras(&target, sc.cameras).await?;
    tracing::info!(sim = sim.pid, daemon = daemon.pid, http = %addrs.http, rtsp = %addrs.rtsp, "bench: processes up");
    // Let start-up work (clip encoding, snapshots, recordings) finish first.
    let used = wait_quiet(
        &[sim.pid, daemon.pid],
        0.05,
        Duration::from_secs(1),
        Duration::from_secs(40),
    )
    .await;
    tracing::info!(cpu = r3(used), "bench: processes quiet");
    Ok(Rig {
        sim,
        daemon,
        target,
        cameras,
    })
}

/// First UDP port of the daemon's WHEP ICE range in the bench (clear of the
/// default 40000–40100, which tests on the same machine may use).
const BENCH_RTC_MIN_PORT: usize = 47_000;

/// The daemon's config file for `sc`: a short linger so cold rounds do not wait
/// 10 s for sessions to end, and room for every WebRTC viewer of the scenario
/// (plus the time-to-first-frame viewers) in the WHEP session cap and ICE ports.
fn daemon_config(sc: &Scenario) -> String {
    let sessions = sc.cameras * sc.webrtc + 8;
    let max_port = (BENCH_RTC_MIN_PORT + 2 * sessions + 64).min(usize::from(u16::MAX));
    format!(
        "[stream]\nlinger = \"1s\"\nh265 = {}\n\n[webrtc]\nmax_sessions = {}\nmin_port = {BENCH_RTC_MIN_PORT}\nmax_port = {max_port}\n",
        sc.h265,
        sessions.max(32)
    )
}

/// The slugs of the simulator's extra cameras (`sim --cameras N`), in id order.
async fn wait_cameras(t: &Target, n: usize) -> anyhow::Result<Vec<String>> {
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list: Option<Vec<serde_json::Value>> = async {
            let r = t
                .client
                .get(format!("{}/api/ring/cameras", t.http_base))
                .send()
                .await
                .ok()?;
            r.json().await.ok()
        }
        .await;
        let mut cams: Vec<(u64, String)> = list
            .unwrap_or_default()
            .iter()
            .filter_map(|c| Some((c["id"].as_u64()?, c["slug"].as_str()?.to_string())))
            .filter(|(id, _)| *id >= crate::sim::EXTRA_FIRST_ID)
            .collect();
        cams.sort();
        if cams.len() >= n {
            return Ok(cams.into_iter().take(n).map(|(_, s)| s).collect());
        }
        if tokio::time::Instant::now() >= end {
            bail!("the daemon did not list {n} bench cameras within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `sc` from start to end; the processes are stopped in every case.
pub async fn run(
    env: &Env,
    sc: &Scenario,
    cancel: &CancellationToken,
) -> anyhow::Result<ScenarioResult> {
    let dir = env.out.join("runs").join(sc.label());
    let (busy_before, quiet) = wait_machine_quiet(env.quiet_wait).await?;
    let rig = start_rig(env, sc, &dir).await?;
    let result = tokio::select! {
        r = measure(env, sc, &rig, &dir) => r,
        _ = cancel.cancelled() => Err(anyhow::anyhow!("interrupted")),
    };
    rig.daemon.stop(Duration::from_secs(10)).await;
    rig.sim.stop(Duration::from_secs(10)).await;
    result.map(|mut r| {
        r.machine_busy_before = busy_before;
        if !quiet {
            r.notes.push(format!(
                "the machine stayed busy with other processes ({:.0} % of all cores before the \
                 start, after waiting {} s); figures include that contention",
                busy_before * 100.0,
                env.quiet_wait.as_secs()
            ));
        }
        r
    })
}

/// Other processes may use at most this share of all cores when a scenario starts.
const QUIET_BUSY: f64 = 0.25;
/// Waits (up to `limit`; the scenario runs anyway afterwards) until the machine
/// is less than [`QUIET_BUSY`] busy over 2 s. Returns the last busy share and
/// whether it got quiet.
async fn wait_machine_quiet(limit: Duration) -> anyhow::Result<(f64, bool)> {
    let end = tokio::time::Instant::now() + limit;
    loop {
        let w = MachineWindow::start()?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let busy = r3(w.finish()?);
        if busy < QUIET_BUSY {
            return Ok((busy, true));
        }
        if tokio::time::Instant::now() >= end {
            return Ok((busy, false));
        }
        tracing::info!(busy, "bench: waiting for a quiet machine");
    }
}

async fn measure(
    env: &Env,
    sc: &Scenario,
    rig: &Rig,
    dir: &std::path::Path,
) -> anyhow::Result<ScenarioResult> {
    let t = &rig.target;
    let mut notes = Vec::new();
    if sc.webrtc > 0 && !t.probe_whep(&rig.cameras[0]).await {
        notes.push(whep_note());
    }
    let ttff = ttff::rounds(
        t,
        &rig.cameras,
        sc.ttff_rounds,
        sc.webrtc > 0,
        env.late_after,
        &mut notes,
    )
    .await?;
    let mut res = load(env, sc, rig, &mut notes).await?;
    res.ttff = ttff;
    if sc.baseline {
        let mut rounds = Vec::new();
        let run_baseline = || baseline::run(t, &rig.cameras[0], sc.warmup, sc.duration, dir);
        for round in 0..sc.ratio_rounds.max(1) {
            // Every second pair measures ffmpeg first, so that a host getting
            // steadily faster or slower biases the pairs both ways, not one.
            let (daemon, base) = match round {
                0 => (Some(res.daemon.cpu_cores), run_baseline().await),
                r if r % 2 == 1 => {
                    let base = run_baseline().await;
                    (load_again(env, sc, rig, r, &mut notes).await, base)
                }
                r => (
                    load_again(env, sc, rig, r, &mut notes).await,
                    run_baseline().await,
                ),
            };
            match base {
                Ok(b) => {
                    rounds.extend(daemon.and_then(|d| baseline::RatioRound::new(d, b.cpu_cores)));
                    res.baseline.get_or_insert(b);
                }
                Err(e) => notes.push(format!("baseline failed: {e:#}")),
            }
        }
        res.cpu_ratio_vs_baseline = baseline::median_ratio(&rounds);
        res.ratio_rounds = rounds;
        if sc.cameras == 1 {
            match relay_floor(sc, &res).await {
                Ok(f) => {
                    res.cpu_ratio_vs_floor =
                        (f.cpu_cores > 0.0).then(|| r3(res.daemon.cpu_cores / f.cpu_cores));
                    res.floor = Some(f);
                }
                Err(e) => notes.push(format!("relay floor failed: {e:#}")),
            }
        }
    }
    // After the ratio rounds, so that the first pair is back to back too.
    if !sc.idle.is_zero() {
        match idle(sc, rig).await {
            Ok(i) => res.idle = Some(i),
            Err(e) => notes.push(format!("idle measurement failed: {e:#}")),
        }
    }
    if !t.whep_available() && !notes.iter().any(|n| n.starts_with("WHEP unavailable")) {
        notes.push(whep_note());
    }
    res.notes = notes;
    res.daemon_log = rig.daemon.log_path.display().to_string();
    Ok(res)
}

/// A further load window for ratio round `round` (counted from 0): the
/// daemon's CPU, or `None` (with a note) when a viewer failed or fell short —
/// a window that served less would understate the daemon's cost.
async fn load_again(
    env: &Env,
    sc: &Scenario,
    rig: &Rig,
    round: usize,
    notes: &mut Vec<String>,
) -> Option<f64> {
    let mut round_notes = Vec::new();
    let r = load(env, sc, rig, &mut round_notes).await;
    let n = round + 1;
    notes.extend(
        round_notes
            .into_iter()
            .map(|m| format!("ratio round {n}: {m}")),
    );
    match r {
        Ok(r) if r.frames.viewers_failed == 0 && r.frames.viewers_short == 0 => {
            Some(r.daemon.cpu_cores)
        }
        Ok(r) => {
            notes.push(format!(
                "ratio round {n} left out: {} viewers failed, {} received under 90 % of the frames",
                r.frames.viewers_failed, r.frames.viewers_short
            ));
            None
        }
        Err(e) => {
            notes.push(format!("ratio round {n} failed: {e:#}"));
            None
        }
    }
}

/// The bare relay ([`floor`]) at the rate the load phase measured: the
/// daemon's video packets per second in, the viewers' bytes per packet.
async fn relay_floor(sc: &Scenario, res: &ScenarioResult) -> anyhow::Result<floor::Floor> {
    let secs = sc.duration.as_secs_f64();
    let video_pps = res.ring_video_packets as f64 / secs;
    if video_pps < 1.0 {
        bail!("no video packets measured in the load phase");
    }
    let bytes_per_s = if res.viewers == 0 {
        // No viewer (a held session): the size of what Ring sent.
        res.ring_video_bytes as f64 / secs
    } else {
        res.frames.video_kbps_per_viewer * 1000.0 / 8.0
    };
    let spec = floor::Spec {
        video_fps: SIM_FPS,
        video_pps,
        video_bytes: ((bytes_per_s / video_pps) as usize).clamp(200, 1400),
        rtsp: sc.rtsp,
        webrtc: res.webrtc_per_camera,
        warmup: Duration::from_secs(2),
        window: sc.duration,
    };
    tokio::task::spawn_blocking(move || floor::measure(&spec))
        .await
        .context("the relay floor's thread")?
}

/// The daemon's CPU over `sc.idle` once every camera's session has ended (no
/// viewer, no hold): what the daemon costs while nobody watches.
async fn idle(sc: &Scenario, rig: &Rig) -> anyhow::Result<IdleUse> {
    for cam in &rig.cameras {
        rig.target
            .wait_inactive(cam, Duration::from_secs(30))
            .await?;
    }
    let cpu = CpuWindow::start(rig.daemon.pid)?;
    tokio::time::sleep(sc.idle).await;
    let cores = cpu.finish()?;
    Ok(IdleUse {
        seconds: sc.idle.as_secs_f64(),
        cpu_percent_of_one_core: r3(cores * 100.0),
    })
}

/// Sums of the video packets and bytes received from Ring over `cameras`.
async fn ring_received(t: &Target, cameras: &[String]) -> anyhow::Result<(u64, u64)> {
    let (mut packets, mut bytes) = (0, 0);
    for cam in cameras {
        let (p, b) = t.ring_video_received(cam).await?;
        packets += p;
        bytes += b;
    }
    Ok((packets, bytes))
}

/// A scenario without viewers holds each camera's session open (`live/start`),
/// so it measures the Ring call and the hub alone; waits (at most 60 s) until
/// every camera receives video.
async fn hold_cameras(
    t: &Target,
    cameras: &[String],
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    for cam in cameras {
        t.hold(cam)
            .await
            .with_context(|| format!("holding {cam}'s live session"))?;
    }
    notes.push(
        "no viewers: each camera's live session was held open (`live/start`), so the figures \
         are the Ring call and the hub alone"
            .into(),
    );
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    for cam in cameras {
        while t.ring_video_received(cam).await?.0 == 0 {
            if tokio::time::Instant::now() >= end {
                notes.push(format!("{cam} received no video within 60 s of the hold"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

fn whep_note() -> String {
    "WHEP unavailable: the daemon answered 404 at /api/webrtc/<camera>/whep; \
     WebRTC viewers were skipped (RTSP only)"
        .to_string()
}

/// The load phase: every viewer up, warm-up, then the measured window.
async fn load(
    env: &Env,
    sc: &Scenario,
    rig: &Rig,
    notes: &mut Vec<String>,
) -> anyhow::Result<ScenarioResult> {
    let t = &rig.target;
    for cam in &rig.cameras {
        // Start from no session, like a fresh day: cold joins under load.
        let _ = t.wait_inactive(cam, Duration::from_secs(30)).await;
    }
    let held = sc.rtsp + sc.webrtc == 0;
    if held {
        hold_cameras(t, &rig.cameras, notes).await?;
    }
    let window = Window::default();
    let mut viewers = Vec::new();
    for cam in &rig.cameras {
        for i in 0..(sc.rtsp + sc.webrtc) {
            let kind = if i < sc.rtsp {
                ViewerKind::Rtsp
            } else if t.whep_available() {
                ViewerKind::Webrtc
            } else {
                continue;
            };
            viewers.push(Viewer::start(t, kind, cam, &window, env.late_after));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Wait for every viewer's first key frame (or its failure).
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let pending = viewers
            .iter()
            .filter(|v| {
                v.log
                    .lock()
                    .map(|l| l.first_keyframe.is_none() && l.error.is_none())
                    .unwrap_or(false)
            })
            .count();
        if pending == 0 || tokio::time::Instant::now() >= end {
            if pending > 0 {
                notes.push(format!("{pending} viewers got no key frame within 60 s"));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(sc.warmup).await;

    let pid = rig.daemon.pid;
    // Read before the CPU windows open: the REST calls are not the daemon's load.
    let ring_before = ring_received(t, &rig.cameras).await;
    let (d_cpu, s_cpu, b_cpu) = (
        CpuWindow::start(pid)?,
        CpuWindow::start(rig.sim.pid)?,
        CpuWindow::start(std::process::id())?,
    );
    let machine = MachineWindow::start()?;
    let switches0 = procstat::context_switches(pid)?;
    let rss = RssSampler::start(pid, Duration::from_millis(500));
    window.set(true);
    tokio::time::sleep(sc.duration).await;
    window.set(false);
    let daemon_cpu = d_cpu.finish()?;
    let switches = procstat::context_switches(pid)?.saturating_sub(switches0);
    let (ring_packets, ring_bytes) = match (ring_before, ring_received(t, &rig.cameras).await) {
        (Ok(a), Ok(b)) => (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1)),
        (Err(e), _) | (_, Err(e)) => {
            notes.push(format!(
                "reading the daemon's packet counters failed: {e:#}"
            ));
            (0, 0)
        }
    };
    if held {
        // The idle phase waits for every session to end.
        if let Err(e) = t.release_holds().await {
            notes.push(format!("ending the holds failed: {e:#}"));
        }
    }
    let (sim_cpu, bench_cpu, busy) = (s_cpu.finish()?, b_cpu.finish()?, machine.finish()?);
    let mut samples = rss.stop().await;
    let peak = mem(pid)?;
    samples.sort_unstable();
    let steady_kib = samples
        .get(samples.len() / 2)
        .copied()
        .unwrap_or(peak.rss_kib);

    let mut logs = Vec::new();
    for v in viewers {
        logs.push(v.stop().await);
    }
    let tally::Tally {
        frames,
        latency,
        latency_rtsp,
        latency_webrtc,
        per_viewer: summaries,
    } = tally::viewers(&logs, sc.duration);
    let webrtc_used = summaries.iter().any(|s| s.kind == ViewerKind::Webrtc);
    Ok(ScenarioResult {
        label: sc.label(),
        video_codec: sc.video_codec().to_owned(),
        cameras: sc.cameras,
        rtsp_per_camera: sc.rtsp,
        webrtc_per_camera: if webrtc_used { sc.webrtc } else { 0 },
        webrtc_requested_per_camera: sc.webrtc,
        viewers: summaries.len(),
        duration_s: sc.duration.as_secs_f64(),
        latency_ms: latency,
        latency_rtsp_ms: latency_rtsp,
        latency_webrtc_ms: latency_webrtc,
        frames,
        daemon: DaemonUse {
            pid,
            cpu_cores: r3(daemon_cpu),
            cpu_percent_of_one_core: r3(daemon_cpu * 100.0),
            rss_steady_mib: r3(steady_kib as f64 / 1024.0),
            rss_peak_mib: r3(peak.hwm_kib as f64 / 1024.0),
            context_switches_per_s: r3(switches as f64 / sc.duration.as_secs_f64()),
        },
        ring_video_packets: ring_packets,
        ring_video_bytes: ring_bytes,
        cpu_us_per_ring_packet: (ring_packets > 0)
            .then(|| r3(daemon_cpu * sc.duration.as_secs_f64() * 1e6 / ring_packets as f64)),
        sim_cpu_cores: r3(sim_cpu),
        bench_cpu_cores: r3(bench_cpu),
        machine_busy: r3(busy),
        per_viewer: summaries,
        ..Default::default()
    })
}
