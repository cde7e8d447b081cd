//! The seed design's cost for one stream: `ffmpeg` reading the same simulated
//! stream (from the daemon's RTSP), re-encoding it with libx264 and sending
//! RTP to a local UDP port that the bench drains. Its CPU comes from `/proc`.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::fleet::Target;
use super::procstat::{CpuWindow, mem};
use super::stats::r3;

/// What the baseline cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Baseline {
    /// The exact command line.
    pub command: String,
    /// ffmpeg CPU seconds per wall second (1.0 = one core).
    pub cpu_cores: f64,
    /// ffmpeg resident memory at the end, MiB.
    pub rss_mib: f64,
    /// RTP packets ffmpeg sent in the window (proves it kept encoding).
    pub rtp_packets: u64,
    /// Measured window, seconds.
    pub duration_s: f64,
}

/// One back-to-back pair behind the ratio: the daemon's load window and
/// ffmpeg's window on the same stream, one right after the other (ffmpeg's
/// first in every second pair).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RatioRound {
    /// The daemon's CPU in its load window (cores).
    pub daemon_cpu_cores: f64,
    /// ffmpeg's CPU in the window next to it (cores).
    pub baseline_cpu_cores: f64,
    /// `daemon_cpu_cores / baseline_cpu_cores`.
    pub ratio: f64,
}

impl RatioRound {
    /// The pair, unless ffmpeg measured no CPU (no ratio then).
    pub fn new(daemon_cpu_cores: f64, baseline_cpu_cores: f64) -> Option<Self> {
        (baseline_cpu_cores > 0.0).then(|| Self {
            daemon_cpu_cores,
            baseline_cpu_cores,
            ratio: r3(daemon_cpu_cores / baseline_cpu_cores),
        })
    }
}

/// The median of the pairs' ratios (the mean of the middle two for an even
/// count): the host's speed drifts over minutes, each pair is measured back to
/// back, and the median keeps one pair caught in a drift from deciding.
pub fn median_ratio(rounds: &[RatioRound]) -> Option<f64> {
    let mut r: Vec<f64> = rounds.iter().map(|p| p.ratio).collect();
    r.sort_unstable_by(f64::total_cmp);
    let n = r.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(r[n / 2]),
        _ => Some(r3((r[n / 2 - 1] + r[n / 2]) / 2.0)),
    }
}

/// Runs the baseline on `camera` for `warmup` + `duration`.
pub async fn run(
    t: &Target,
    camera: &str,
    warmup: Duration,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<Baseline> {
    let sink = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .context("binding the RTP sink")?;
    let port = sink.local_addr()?.port();
    let packets = Arc::new(AtomicU64::new(0));
    let drain = {
        let packets = packets.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while sink.recv(&mut buf).await.is_ok() {
                packets.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let input = format!("rtsp://{}/{camera}", t.rtsp);
    let output = format!("rtp://127.0.0.1:{port}?pkt_size=1200");
    let args: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-rtsp_transport",
        "tcp",
        "-i",
        &input,
        "-map",
        "0:v:0",
        "-an",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-profile:v",
        "baseline",
        "-b:v",
        "2M",
        "-maxrate",
        "2M",
        "-bufsize",
        "2M",
        "-g",
        "30",
        "-f",
        "rtp",
        &output,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let command = format!("ffmpeg {}", args.join(" "));
    let log = std::fs::File::create(dir.join("ffmpeg.log")).context("creating ffmpeg.log")?;
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .context("spawning ffmpeg (Debian package ffmpeg)")?;
    let pid = child.id().context("ffmpeg has no pid")?;
    let result = async {
        // Wait for output, then settle.
        let end = tokio::time::Instant::now() + Duration::from_secs(30);
        while packets.load(Ordering::Relaxed) == 0 {
            if let Ok(Some(st)) = child.try_wait() {
                bail!(
                    "ffmpeg exited ({st}); see {}",
                    dir.join("ffmpeg.log").display()
                );
            }
            if tokio::time::Instant::now() >= end {
                bail!("ffmpeg sent no RTP within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(warmup).await;
        let cpu = CpuWindow::start(pid)?;
        let p0 = packets.load(Ordering::Relaxed);
        tokio::time::sleep(duration).await;
        let cores = cpu.finish()?;
        if let Ok(Some(st)) = child.try_wait() {
            bail!("ffmpeg exited during the window ({st})");
        }
        Ok(Baseline {
            command: command.clone(),
            cpu_cores: r3(cores),
            rss_mib: r3(mem(pid).map(|m| m.rss_kib).unwrap_or(0) as f64 / 1024.0),
            rtp_packets: packets.load(Ordering::Relaxed) - p0,
            duration_s: duration.as_secs_f64(),
        })
    }
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    drain.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(ratios: &[(f64, f64)]) -> Vec<RatioRound> {
        ratios
            .iter()
            .filter_map(|&(d, b)| RatioRound::new(d, b))
            .collect()
    }

    #[test]
    fn the_ratio_is_the_median_pair() {
        assert_eq!(median_ratio(&[]), None);
        assert_eq!(median_ratio(&rounds(&[(0.01, 0.2)])), Some(0.05));
        // One pair caught in a slow phase of the host does not decide.
        let three = rounds(&[(0.012, 0.2), (0.03, 0.2), (0.011, 0.2)]);
        assert_eq!(median_ratio(&three), Some(0.06));
        let two = rounds(&[(0.01, 0.2), (0.02, 0.2)]);
        assert_eq!(median_ratio(&two), Some(0.075));
    }

    #[test]
    fn a_baseline_without_cpu_gives_no_pair() {
        assert_eq!(RatioRound::new(0.01, 0.0), None);
        assert_eq!(RatioRound::new(0.01, 0.25).map(|r| r.ratio), Some(0.04));
    }
}
