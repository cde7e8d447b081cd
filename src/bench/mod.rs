//! `ring-bridge bench`: the benchmark harness (see `docs/PERFORMANCE.md`).
//!
//! It runs the simulator (`sim --stamp-frames --cameras N`) and the daemon
//! (`run`) as separate processes on loopback, spawned from this executable,
//! and drives real consumers from its own process: Retina RTSP clients and
//! webrtc-rs WHEP clients. Every video access unit the simulator sends carries
//! an SEI stamp (frame counter + CLOCK_REALTIME send time,
//! [`crate::sim::live::stamp`]); viewers read it back, so forwarding latency
//! and lost frames are measured per frame, not guessed. The daemon's CPU
//! (utime + stime) and memory (VmRSS, VmHWM) come from `/proc/<pid>`.
//!
//! A run is one scenario ([`scenario`]): cold and warm time-to-first-frame
//! rounds, the load phase (N cameras × (K RTSP + M WebRTC) viewers for a fixed
//! window), then the seed design's `ffmpeg` re-encode of one stream as the CPU
//! baseline and, with one camera, the host's floor (a bare relay of the same
//! traffic, [`floor`]). `--sweep` adds the scale sweep and its plot. Output: `bench.json`
//! and `bench.md` (plus `sweep.png`) in `--out`; the binary prints the Markdown.
//!
//! ```text
//! ring-bridge bench --cameras 1 --rtsp 1 --webrtc 1 --duration 20s
//! ring-bridge bench --sweep --out docs/bench
//! ```
//!
//! With `--h265` the cameras stream H.265 (stamps in prefix SEI NAL units) to
//! RTSP and WebRTC viewers (the WHEP viewer offers H.265), to show passthrough
//! for H.265 too.
//!
//! When the daemon has no WHEP endpoint (404), WebRTC viewers are skipped and
//! the report says so. This is a tool at the binary's edge: it uses `anyhow`.

mod baseline;
mod fleet;
mod floor;
mod procs;
mod procstat;
mod report;
mod rtsp;
mod scenario;
mod stats;
mod sweep;
mod tally;
mod ttff;
mod viewer;
mod whep;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use report::{Machine, Report};
use scenario::{Env, Scenario};

/// Options of `ring-bridge bench`, parsed straight from its command line (flags
/// and defaults documented in `docs/PERFORMANCE.md`).
#[derive(Clone, Debug, clap::Args)]
pub struct BenchOptions {
    /// Cameras streamed at once (extra simulator cameras, ids from 10301).
    #[arg(long, default_value_t = 1)]
    pub cameras: usize,
    /// RTSP viewers (Retina) per camera.
    #[arg(long, default_value_t = 1)]
    pub rtsp: usize,
    /// WebRTC viewers (WHEP, webrtc-rs) per camera.
    #[arg(long, default_value_t = 1)]
    pub webrtc: usize,
    /// Measured window of the load phase.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Settling time after the last viewer's first frame, before the window.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Cold/warm time-to-first-frame rounds (each starts a new Ring session).
    #[arg(long, default_value_t = 10)]
    pub ttff_rounds: usize,
    /// Skip the ffmpeg re-encode baseline (and the floor measured after it).
    #[arg(long)]
    pub no_baseline: bool,
    /// Measure the ratio to the baseline this many times: a load window and
    /// ffmpeg's window back to back (ffmpeg's first in every second pair); the
    /// ratio reported and judged is the median pair's (the host's speed drifts
    /// between minutes).
    #[arg(long, default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub ratio_rounds: u32,
    /// Stream H.265: the bench cameras stream H.265 only (simulator mode
    /// `hevc_only`) and the daemon offers it (`stream.h265`). The WHEP viewers
    /// offer H.265 and get it.
    #[arg(long)]
    pub h265: bool,
    /// After the main scenario's load phase and baseline rounds, measure the
    /// daemon's CPU this long with no viewer and no session (`0s`: skip).
    /// Sweep points skip it.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle: Duration,
    /// Also run the scale sweep (cameras × viewers per camera) and plot it.
    #[arg(long)]
    pub sweep: bool,
    /// Camera counts of the sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    pub sweep_cameras: Vec<usize>,
    /// Viewers per camera of the sweep (half RTSP, half WebRTC when WHEP exists).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    pub sweep_viewers: Vec<usize>,
    /// Measured window of each sweep point.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub sweep_duration: Duration,
    /// A frame later than this counts as late.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub late: Duration,
    /// Longest wait for a quiet machine (other processes under 25 % of all cores)
    /// before each scenario.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    pub quiet_wait: Duration,
    /// Output directory for bench.json, bench.md, sweep.png and the logs.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// The ring-bridge executable run as simulator and daemon (default: this one).
    #[arg(long)]
    pub exe: Option<PathBuf>,
    /// An experiment, not a measurement of the targets: the simulated cameras
    /// send N Opus packets back to back every N × 20 ms (0: no audio) instead
    /// of Ring's one every 20 ms (`sim --audio-per-send`), to see what the daemon
    /// pays per received burst rather than per packet. The targets are not
    /// judged then. Needs an `--exe` that knows the flag when N ≠ 1.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    pub sim_audio_per_send: u32,
}

/// Runs the bench; writes `bench.json` and `bench.md` and returns the
/// Markdown (the binary prints it).
pub async fn run(args: BenchOptions, cancel: CancellationToken) -> anyhow::Result<String> {
    let exe = match &args.exe {
        Some(e) => e.clone(),
        None => std::env::current_exe().context("finding this executable")?,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let env = Env {
        exe,
        out: args.out.clone(),
        late_after: args.late,
        quiet_wait: args.quiet_wait,
        sim_audio_per_send: args.sim_audio_per_send,
    };
    let before = procstat::MachineWindow::start()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let busy_before_start = stats::r3(before.finish()?);
    let main_sc = Scenario {
        cameras: args.cameras.max(1),
        rtsp: args.rtsp,
        webrtc: args.webrtc,
        duration: args.duration,
        warmup: args.warmup,
        ttff_rounds: args.ttff_rounds,
        baseline: !args.no_baseline,
        ratio_rounds: args.ratio_rounds as usize,
        h265: args.h265,
        idle: args.idle,
    };
    tracing::info!(scenario = %main_sc.label(), "bench: main scenario");
    let main = scenario::run(&env, &main_sc, &cancel).await?;
    let whep = main.webrtc_per_camera > 0 || main_sc.webrtc == 0;
    let (sweep, skipped) = if args.sweep {
        let base = Scenario {
            duration: args.sweep_duration,
            ..main_sc.clone()
        };
        let (done, skipped) = sweep::run(
            &env,
            &base,
            &args.sweep_cameras,
            &args.sweep_viewers,
            whep && main_sc.webrtc > 0,
            &cancel,
        )
        .await;
        (done, skipped)
    } else {
        (Vec::new(), Vec::new())
    };
    // Another audio schedule than Ring's is not the issue's stream.
    let targets = if args.sim_audio_per_send == 1 {
        report::judge(Some(&main), &sweep)
    } else {
        Vec::new()
    };
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        date: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        machine: Machine {
            cores: procstat::cores(),
            cpu_model: procstat::cpu_model(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            busy_before_start,
        },
        late_threshold_ms: args.late.as_secs_f64() * 1000.0,
        sim_audio_per_send: args.sim_audio_per_send,
        main: Some(main),
        sweep,
        skipped,
        targets,
    };
    let mut md = report::markdown(&report);
    if !report.sweep.is_empty() {
        match sweep::plot(&report.sweep, &args.out) {
            Ok(png) => md += &format!("\nPlot: `{}`\n", png.display()),
            Err(e) => md += &format!("\nPlot not made: {e:#}\n"),
        }
    }
    let json = serde_json::to_string_pretty(&report).context("serializing the report")?;
    std::fs::write(args.out.join("bench.json"), json).context("writing bench.json")?;
    std::fs::write(args.out.join("bench.md"), &md).context("writing bench.md")?;
    Ok(md)
}
