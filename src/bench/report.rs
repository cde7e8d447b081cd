//! The report: result types (serialized as JSON), the targets judged
//! against them, and the Markdown rendering.

use serde::Serialize;

use super::baseline::{Baseline, RatioRound};
use super::floor::Floor;
use super::stats::{LatencyMs, TtffMs, fmt_opt, r3};
use super::viewer::ViewerKind;

/// One viewer's figures.
#[derive(Clone, Debug, Serialize)]
pub struct ViewerSummary {
    /// RTSP or WebRTC.
    pub kind: ViewerKind,
    /// Camera slug.
    pub camera: String,
    /// Time to its first key frame (load phase join).
    pub first_keyframe_ms: Option<f64>,
    /// The video encoding it negotiated (`h264`, `h265`; RTSP viewers).
    pub codec: Option<String>,
    /// Video frames received in the window.
    pub frames: u64,
    /// Of those, with an intact stamp.
    pub stamped: u64,
    /// Missing frames (stamp counter gaps).
    pub lost: u64,
    /// Frames later than the late threshold.
    pub late: u64,
    /// Counter restarts (new Ring session).
    pub resets: u64,
    /// Its forwarding latency.
    pub latency_ms: LatencyMs,
    /// The error that ended it, if any.
    pub error: Option<String>,
}

/// Frame accounting over all viewers of a scenario.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Frames {
    /// Frames one viewer should receive in the window (duration × 15 fps).
    pub expected_per_viewer: u64,
    /// Average video bit rate one viewer received, kbit/s.
    pub video_kbps_per_viewer: f64,
    /// Received video frames, all viewers.
    pub received: u64,
    /// Of those, with our SEI stamp intact.
    pub stamped: u64,
    /// `stamped / received`: 1.0 means every access unit arrived bit-for-bit
    /// with the simulator's SEI (passthrough, no transcoding).
    pub stamp_ratio: f64,
    /// Lost frames (counter gaps), all viewers.
    pub lost: u64,
    /// Late frames (latency above the threshold), all viewers.
    pub late: u64,
    /// Counter restarts, all viewers.
    pub resets: u64,
    /// Viewers that played.
    pub viewers_ok: usize,
    /// Viewers that failed or never got a key frame.
    pub viewers_failed: usize,
    /// Viewers that received under 90 % of the expected frames.
    pub viewers_short: usize,
}

/// The daemon's resource use in the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DaemonUse {
    /// Its process id.
    pub pid: u32,
    /// CPU seconds per wall second (utime + stime; 1.0 = one core).
    pub cpu_cores: f64,
    /// The same in percent of one core.
    pub cpu_percent_of_one_core: f64,
    /// Median VmRSS over the window, MiB.
    pub rss_steady_mib: f64,
    /// VmHWM at the end (peak since start), MiB.
    pub rss_peak_mib: f64,
    /// Context switches per second over the window, all its threads (each
    /// voluntary one is a thread going to sleep: about its wake-ups).
    pub context_switches_per_s: f64,
}

/// The daemon's CPU while idle (no viewer, no hold, no Ring session).
#[derive(Clone, Debug, Default, Serialize)]
pub struct IdleUse {
    /// Length of the measurement, seconds.
    pub seconds: f64,
    /// CPU over it, % of one core.
    pub cpu_percent_of_one_core: f64,
}

/// Time to first key frame, cold and warm, all and per kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TtffResult {
    /// First viewer, no Ring session running.
    pub cold: TtffMs,
    /// Cold, RTSP viewers.
    pub cold_rtsp: TtffMs,
    /// Cold, WebRTC viewers.
    pub cold_webrtc: TtffMs,
    /// Another viewer while the session runs.
    pub warm: TtffMs,
    /// Warm, RTSP.
    pub warm_rtsp: TtffMs,
    /// Warm, WebRTC.
    pub warm_webrtc: TtffMs,
}

/// Everything one scenario measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScenarioResult {
    /// `Ncam-Krtsp-Mwebrtc` (`-h265` for H.265 cameras).
    pub label: String,
    /// The codec the cameras streamed (`h264`, `h265`); stamps ride in SEI either way.
    pub video_codec: String,
    /// Cameras.
    pub cameras: usize,
    /// RTSP viewers per camera.
    pub rtsp_per_camera: usize,
    /// WebRTC viewers per camera that ran.
    pub webrtc_per_camera: usize,
    /// WebRTC viewers per camera asked for.
    pub webrtc_requested_per_camera: usize,
    /// Viewers that ran in the load phase.
    pub viewers: usize,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Forwarding latency simulator send → viewer receive, all viewers.
    pub latency_ms: LatencyMs,
    /// The same, RTSP viewers.
    pub latency_rtsp_ms: LatencyMs,
    /// The same, WebRTC viewers.
    pub latency_webrtc_ms: LatencyMs,
    /// Frames lost / late.
    pub frames: Frames,
    /// Time to first key frame.
    pub ttff: TtffResult,
    /// The daemon's CPU and memory.
    pub daemon: DaemonUse,
    /// Video RTP packets the daemon received from Ring in the window (all cameras).
    pub ring_video_packets: u64,
    /// Video bytes (access units) the daemon received from Ring in the window.
    pub ring_video_bytes: u64,
    /// The daemon's CPU time in the window divided by `ring_video_packets`, µs:
    /// everything it did (audio, every viewer) per video packet in.
    pub cpu_us_per_ring_packet: Option<f64>,
    /// The daemon's CPU with no viewer and no session, after the load phase.
    pub idle: Option<IdleUse>,
    /// Simulator CPU (cores) in the window, for context.
    pub sim_cpu_cores: f64,
    /// The bench process's own CPU (its viewers), for context.
    pub bench_cpu_cores: f64,
    /// Busy fraction of the whole machine (all cores) in the window.
    pub machine_busy: f64,
    /// Busy fraction of the machine (other processes) just before the scenario.
    pub machine_busy_before: f64,
    /// The ffmpeg re-encode baseline, when run.
    pub baseline: Option<Baseline>,
    /// Daemon CPU / baseline CPU: the median of `ratio_rounds`.
    pub cpu_ratio_vs_baseline: Option<f64>,
    /// Each back-to-back pair of a load window and a baseline window.
    pub ratio_rounds: Vec<RatioRound>,
    /// A bare relay of the same traffic on this host (1-camera scenarios with
    /// the baseline).
    pub floor: Option<Floor>,
    /// Daemon CPU / bare relay CPU.
    pub cpu_ratio_vs_floor: Option<f64>,
    /// Skips, failures, WHEP availability.
    pub notes: Vec<String>,
    /// The daemon's log file.
    pub daemon_log: String,
    /// Per-viewer figures.
    pub per_viewer: Vec<ViewerSummary>,
}

/// `3 pairs: 1.1 % vs 21.0 % (0.052), …`: each ratio round's CPU figures.
fn rounds_text(rounds: &[RatioRound]) -> String {
    let pairs: Vec<String> = rounds
        .iter()
        .map(|p| {
            format!(
                "{:.2} % vs {:.1} % ({:.3})",
                p.daemon_cpu_cores * 100.0,
                p.baseline_cpu_cores * 100.0,
                p.ratio
            )
        })
        .collect();
    let n = rounds.len();
    format!(
        "{n} pair{}: {}",
        if n == 1 { "" } else { "s" },
        pairs.join(", ")
    )
}

/// A sweep point that was not run, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// Cameras.
    pub cameras: usize,
    /// Viewers per camera.
    pub viewers_per_camera: usize,
    /// Why.
    pub reason: String,
}

/// One target of the issue, judged.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// What is wanted.
    pub target: String,
    /// The measured figure.
    pub measured: String,
    /// `met`, `not met` or `not measured`.
    pub status: String,
    /// The scenario it comes from.
    pub scenario: Option<String>,
}

/// The machine the bench ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// Online CPUs.
    pub cores: usize,
    /// From `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `uname -r`.
    pub kernel: String,
    /// Busy fraction of the machine (all cores) in the 3 s before the bench
    /// started anything: load from other processes.
    pub busy_before_start: f64,
}

/// The whole report (`bench.json`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// RFC 3339 UTC.
    pub date: String,
    /// Where.
    pub machine: Machine,
    /// Frames later than this many ms count as late.
    pub late_threshold_ms: f64,
    /// Opus packets the simulated cameras sent per audio burst (1: Ring's
    /// schedule; anything else is an experiment and the targets are not judged).
    pub sim_audio_per_send: u32,
    /// The main scenario (cold/warm, baseline).
    pub main: Option<ScenarioResult>,
    /// The scale sweep, when run.
    pub sweep: Vec<ScenarioResult>,
    /// Sweep points not run.
    pub skipped: Vec<Skipped>,
    /// The targets.
    pub targets: Vec<Target>,
}

const MB150_IN_MIB: f64 = 150e6 / 1_048_576.0;

/// Judges the targets against `main` and `sweep`.
pub fn judge(main: Option<&ScenarioResult>, sweep: &[ScenarioResult]) -> Vec<Target> {
    let all: Vec<&ScenarioResult> = main.into_iter().chain(sweep).collect();
    let at_16x4 = all
        .iter()
        .find(|s| s.cameras == 16 && s.rtsp_per_camera + s.webrtc_requested_per_camera == 4)
        .copied();
    let mut out = Vec::new();
    let mut push =
        |target: &str, measured: String, ok: Option<bool>, sc: Option<&ScenarioResult>| {
            out.push(Target {
                target: target.into(),
                measured,
                status: match ok {
                    Some(true) => "met",
                    Some(false) => "not met",
                    None => "not measured",
                }
                .into(),
                scenario: sc.map(|s| s.label.clone()),
            });
        };
    // Zero transcoding: every access unit carries the simulator's SEI intact.
    let with_frames: Vec<&&ScenarioResult> = all.iter().filter(|s| s.frames.received > 0).collect();
    let worst = with_frames
        .iter()
        .map(|s| s.frames.stamp_ratio)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.min(r))));
    push(
        "zero video transcoding (every received access unit carries the simulator's SEI stamp)",
        worst.map_or("no frames".into(), |w| {
            format!("stamp ratio ≥ {w:.3} in every scenario")
        }),
        worst.map(|w| w >= 0.999),
        None,
    );
    let p99 = at_16x4.and_then(|s| s.latency_ms.p99);
    push(
        "forwarding latency p99 < 5 ms at 16 cameras × 4 viewers",
        fmt_ms(p99),
        p99.map(|v| v < 5.0),
        at_16x4,
    );
    let base = main.filter(|m| m.baseline.is_some());
    let ratio = base.and_then(|m| m.cpu_ratio_vs_baseline);
    let ratio_text = base.map_or("–".to_string(), |m| {
        format!(
            "{} (median of {}; viewers: {} RTSP + {} WebRTC)",
            fmt_opt(ratio, 3),
            rounds_text(&m.ratio_rounds),
            m.rtsp_per_camera,
            m.webrtc_per_camera
        )
    });
    push(
        "CPU for 1 camera → 1 RTSP + 1 WebRTC viewer ≤ 1/20 of the ffmpeg baseline (ratio ≤ 0.05)",
        ratio_text,
        ratio.map(|r| r <= 0.05),
        base,
    );
    let cpu = at_16x4.map(|s| s.daemon.cpu_cores);
    push(
        "16 cameras × 4 viewers under 50 % of one core",
        cpu.map_or("–".into(), |c| format!("{:.1} % of one core", c * 100.0)),
        cpu.map(|c| c < 0.5),
        at_16x4,
    );
    let rss = at_16x4.map(|s| (s.daemon.rss_steady_mib, s.daemon.rss_peak_mib));
    push(
        "16 cameras × 4 viewers RSS under 150 MB (143.1 MiB)",
        rss.map_or("–".into(), |(s, p)| {
            format!("steady {s:.1} MiB, peak {p:.1} MiB")
        }),
        rss.map(|(s, p)| s < MB150_IN_MIB && p < MB150_IN_MIB),
        at_16x4,
    );
    let with_ttff = all.iter().find(|s| s.ttff.warm.samples > 0).copied();
    let warm = with_ttff.and_then(|s| s.ttff.warm.p50);
    push(
        "warm time to first key frame p50 < 300 ms",
        ttff_text(warm, with_ttff.map(|s| &s.ttff.warm)),
        warm.map(|v| v < 300.0),
        with_ttff,
    );
    let with_cold = all.iter().find(|s| s.ttff.cold.samples > 0).copied();
    let cold = with_cold.and_then(|s| s.ttff.cold.p50);
    push(
        "cold time to first key frame p50 < 1 s",
        ttff_text(cold, with_cold.map(|s| &s.ttff.cold)),
        cold.map(|v| v < 1000.0),
        with_cold,
    );
    out
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2} ms"))
}

fn ttff_text(p50: Option<f64>, t: Option<&TtffMs>) -> String {
    match (p50, t) {
        (Some(p), Some(t)) => format!(
            "p50 {p:.0} ms, p95 {} ms ({} samples)",
            fmt_opt(t.p95, 0),
            t.samples
        ),
        _ => "–".into(),
    }
}

/// The Markdown version of `r`.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    s += "# ring-bridge bench\n\n";
    s += &format!(
        "- command: `{}`\n- date: {}\n- machine: {} cores, {}, Linux {}\n- machine busy before the \
         bench started (other processes): {:.0} %\n- late threshold: {} ms\n\n",
        r.command,
        r.date,
        r.machine.cores,
        r.machine.cpu_model,
        r.machine.kernel,
        r.machine.busy_before_start * 100.0,
        r.late_threshold_ms
    );
    if r.sim_audio_per_send != 1 {
        s += &format!(
            "**Experiment:** the simulated cameras sent {} Opus packets per burst (Ring sends \
             one every 20 ms), so this is not the issue's stream and the targets are not \
             judged.\n\n",
            r.sim_audio_per_send
        );
    }
    s += "## Targets\n\n| target | measured | status | scenario |\n|---|---|---|---|\n";
    for t in &r.targets {
        s += &format!(
            "| {} | {} | **{}** | {} |\n",
            t.target,
            t.measured,
            t.status,
            t.scenario.as_deref().unwrap_or("")
        );
    }
    let scenarios: Vec<&ScenarioResult> = r.main.iter().chain(&r.sweep).collect();
    s += "\n## Load\n\nLatency: simulator send → viewer receive (SEI stamp), ms. CPU: ring-bridge \
          process, % of one core. RSS: MiB (steady = median VmRSS in the window, peak = VmHWM).\n\n";
    s += "| scenario | viewers | latency p50 | p99 | max | CPU % | µs/packet | switches/s | RSS steady | RSS peak | lost | late | stamp ratio | sim CPU % | bench CPU % | machine busy % (before) | kbit/s per viewer |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for sc in &scenarios {
        s += &format!(
            "| {} | {} | {} | {} | {} | {:.1} | {} | {:.0} | {:.1} | {:.1} | {} | {} | {:.3} | {:.1} | {:.1} | {:.1} ({:.0}) | {:.0} |\n",
            sc.label,
            sc.viewers,
            fmt_opt(sc.latency_ms.p50, 2),
            fmt_opt(sc.latency_ms.p99, 2),
            fmt_opt(sc.latency_ms.max, 2),
            sc.daemon.cpu_cores * 100.0,
            fmt_opt(sc.cpu_us_per_ring_packet, 1),
            sc.daemon.context_switches_per_s,
            sc.daemon.rss_steady_mib,
            sc.daemon.rss_peak_mib,
            sc.frames.lost,
            sc.frames.late,
            sc.frames.stamp_ratio,
            sc.sim_cpu_cores * 100.0,
            sc.bench_cpu_cores * 100.0,
            sc.machine_busy * 100.0,
            sc.machine_busy_before * 100.0,
            sc.frames.video_kbps_per_viewer,
        );
    }
    s += "\nµs/packet: the daemon's CPU time in the window divided by the video RTP packets it \
          received from Ring (everything it does, audio and every viewer included, per packet in). \
          switches/s: the daemon's context switches per second, all threads (each voluntary one is \
          a thread going to sleep, so about its wake-ups).\n";
    for sc in scenarios.iter().filter(|s| s.idle.is_some()) {
        if let Some(i) = &sc.idle {
            s += &format!(
                "\nIdle after {}: {:.3} % of one core over {:.0} s (no viewer, no session).\n",
                sc.label, i.cpu_percent_of_one_core, i.seconds
            );
        }
    }
    s += &by_kind_table(&scenarios);
    s += "\n## Time to first key frame (ms)\n\n| scenario | kind | samples | p50 | p95 |\n|---|---|---|---|---|\n";
    for sc in scenarios
        .iter()
        .filter(|s| s.ttff.cold.samples + s.ttff.warm.samples > 0)
    {
        let t = &sc.ttff;
        for (name, v) in [
            ("cold, all", &t.cold),
            ("cold, RTSP", &t.cold_rtsp),
            ("cold, WebRTC", &t.cold_webrtc),
            ("warm, all", &t.warm),
            ("warm, RTSP", &t.warm_rtsp),
            ("warm, WebRTC", &t.warm_webrtc),
        ] {
            s += &format!(
                "| {} | {name} | {} | {} | {} |\n",
                sc.label,
                v.samples,
                fmt_opt(v.p50, 0),
                fmt_opt(v.p95, 0)
            );
        }
    }
    if let Some(m) = &r.main
        && let Some(b) = &m.baseline
    {
        s += &format!(
            "\n## Baseline (seed design: re-encode)\n\n`{}`\n\nffmpeg (first round): {:.1} % of one core, RSS {:.1} MiB, {} RTP packets in {:.0} s. \
             ring-bridge in {} and ffmpeg, back to back: {}. Ratio ring-bridge / baseline (median): {}.\n",
            b.command,
            b.cpu_cores * 100.0,
            b.rss_mib,
            b.rtp_packets,
            b.duration_s,
            m.label,
            rounds_text(&m.ratio_rounds),
            fmt_opt(m.cpu_ratio_vs_baseline, 3)
        );
    }
    if let Some(m) = &r.main
        && let Some(f) = &m.floor
    {
        s += &format!(
            "\n## Floor (bare relay on this host)\n\nOne thread with blocking sockets relaying the same \
             traffic on loopback (video bursts at the simulator's rate, {:.0} audio packets/s; one \
             send per packet and viewer; no crypto, no RTP parsing): {:.2} % of one core, {:.1} µs per \
             video packet over {:.0} s ({} video packets). ring-bridge: {:.1} µs per video packet. \
             Ratio ring-bridge / floor: {}; floor / baseline: {}.\n",
            super::floor::AUDIO_PPS,
            f.cpu_cores * 100.0,
            f.us_per_packet,
            f.duration_s,
            f.video_packets,
            m.cpu_us_per_ring_packet.unwrap_or(0.0),
            fmt_opt(m.cpu_ratio_vs_floor, 1),
            fmt_opt(
                m.baseline
                    .as_ref()
                    .filter(|b| b.cpu_cores > 0.0)
                    .map(|b| r3(f.cpu_cores / b.cpu_cores)),
                3
            )
        );
    }
    if !r.skipped.is_empty() {
        s += "\n## Skipped sweep points\n\n";
        for k in &r.skipped {
            s += &format!(
                "- {} cameras × {} viewers: {}\n",
                k.cameras, k.viewers_per_camera, k.reason
            );
        }
    }
    let notes: Vec<String> = scenarios
        .iter()
        .flat_map(|sc| sc.notes.iter().map(move |n| format!("- {}: {n}", sc.label)))
        .collect();
    if !notes.is_empty() {
        s += "\n## Notes\n\n";
        s += &notes.join("\n");
        s += "\n";
    }
    s
}

/// Latency, loss and lateness per viewer kind: one row per scenario and kind
/// that had viewers.
fn by_kind_table(scenarios: &[&ScenarioResult]) -> String {
    let mut s = "\n### By viewer kind\n\n| scenario | kind | viewers | latency p50 | p99 | max | \
                 frames | lost | late | failed |\n|---|---|---|---|---|---|---|---|---|---|\n"
        .to_string();
    for sc in scenarios {
        for (kind, lat) in [
            (ViewerKind::Rtsp, &sc.latency_rtsp_ms),
            (ViewerKind::Webrtc, &sc.latency_webrtc_ms),
        ] {
            let vs: Vec<&ViewerSummary> = sc.per_viewer.iter().filter(|v| v.kind == kind).collect();
            if vs.is_empty() {
                continue;
            }
            let sum = |f: fn(&ViewerSummary) -> u64| vs.iter().map(|v| f(v)).sum::<u64>();
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                sc.label,
                kind.as_str(),
                vs.len(),
                fmt_opt(lat.p50, 2),
                fmt_opt(lat.p99, 2),
                fmt_opt(lat.max, 2),
                sum(|v| v.frames),
                sum(|v| v.lost),
                sum(|v| v.late),
                vs.iter().filter(|v| v.error.is_some()).count(),
            );
        }
    }
    s
}
