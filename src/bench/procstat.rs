//! Process and machine counters from `/proc`: CPU time of a process
//! (`/proc/<pid>/stat` utime + stime), its memory (`/proc/<pid>/status` VmRSS,
//! VmHWM) and the machine's busy time (`/proc/stat`), plus a sampler that
//! records RSS once per interval.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`, 100 on Linux).
pub fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system, all threads) a process has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; here (from field 3) 11 and 12.
    let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) else {
        bail!("short /proc/{pid}/stat");
    };
    let ticks: u64 = u.parse::<u64>()? + s.parse::<u64>()?;
    Ok(ticks as f64 / clk_tck())
}

/// Context switches of a process so far: voluntary and involuntary, summed over
/// its live threads (`/proc/<pid>/task/*/status`). Each voluntary one is a
/// thread going to sleep, so over a window this counts the daemon's wake-ups.
pub fn context_switches(pid: u32) -> anyhow::Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0;
    for task in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        // A thread that exited since the listing is simply not counted.
        let Ok(text) = std::fs::read_to_string(task?.path().join("status")) else {
            continue;
        };
        total += text
            .lines()
            .filter_map(|l| {
                let v = l
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))?;
                v.trim().parse::<u64>().ok()
            })
            .sum::<u64>();
    }
    Ok(total)
}

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Mem {
    /// VmRSS: resident now.
    pub rss_kib: u64,
    /// VmHWM: the peak resident size since the process started.
    pub hwm_kib: u64,
}

/// Reads VmRSS and VmHWM of `pid`.
pub fn mem(pid: u32) -> anyhow::Result<Mem> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Ok(Mem {
        rss_kib: field("VmRSS:").unwrap_or(0),
        hwm_kib: field("VmHWM:").unwrap_or(0),
    })
}

/// The machine's (busy, total) jiffies from the `cpu` line of `/proc/stat`.
pub fn machine_jiffies() -> anyhow::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Ok((total.saturating_sub(idle), total))
}

/// Number of online CPUs.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU model name from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// CPU of one process over a window: start it, then [`CpuWindow::finish`].
#[derive(Clone, Copy, Debug)]
pub struct CpuWindow {
    pid: u32,
    cpu0: f64,
    t0: Instant,
}

impl CpuWindow {
    /// Starts measuring `pid` now.
    pub fn start(pid: u32) -> anyhow::Result<Self> {
        Ok(CpuWindow {
            pid,
            cpu0: cpu_seconds(pid)?,
            t0: Instant::now(),
        })
    }

    /// CPU seconds per wall second since [`CpuWindow::start`] (1.0 = one core).
    pub fn finish(&self) -> anyhow::Result<f64> {
        let cpu = cpu_seconds(self.pid)? - self.cpu0;
        let wall = self.t0.elapsed().as_secs_f64();
        Ok(if wall > 0.0 { cpu / wall } else { 0.0 })
    }
}

/// Busy fraction of the whole machine (0..=1 over all cores) over a window.
#[derive(Clone, Copy, Debug)]
pub struct MachineWindow {
    busy0: u64,
    total0: u64,
}

impl MachineWindow {
    /// Starts measuring now.
    pub fn start() -> anyhow::Result<Self> {
        let (busy0, total0) = machine_jiffies()?;
        Ok(MachineWindow { busy0, total0 })
    }

    /// Busy fraction since [`MachineWindow::start`].
    pub fn finish(&self) -> anyhow::Result<f64> {
        let (busy, total) = machine_jiffies()?;
        let dt = total.saturating_sub(self.total0);
        Ok(if dt == 0 {
            0.0
        } else {
            busy.saturating_sub(self.busy0) as f64 / dt as f64
        })
    }
}

/// Records VmRSS of a process every `every` until cancelled.
pub struct RssSampler {
    samples: Arc<Mutex<Vec<u64>>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32, every: Duration) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let task = {
            let (samples, cancel) = (samples.clone(), cancel.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    if let (Ok(m), Ok(mut s)) = (mem(pid), samples.lock()) {
                        s.push(m.rss_kib);
                    }
                }
            })
        };
        RssSampler {
            samples,
            cancel,
            task,
        }
    }

    /// Stops and returns the samples (KiB).
    pub async fn stop(self) -> Vec<u64> {
        self.cancel.cancel();
        let _ = self.task.await;
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Waits until `pids` together use less than `max_cores` of CPU over a
/// `probe` window, at most `limit` (start-up work such as clip encoding done).
/// Returns the last measured use.
pub async fn wait_quiet(pids: &[u32], max_cores: f64, probe: Duration, limit: Duration) -> f64 {
    let end = Instant::now() + limit;
    loop {
        let windows: Vec<CpuWindow> = pids
            .iter()
            .filter_map(|p| CpuWindow::start(*p).ok())
            .collect();
        tokio::time::sleep(probe).await;
        let used: f64 = windows.iter().filter_map(|w| w.finish().ok()).sum();
        if used < max_cores || Instant::now() >= end {
            return used;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        let m = mem(pid).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        let (busy, total) = machine_jiffies().unwrap();
        assert!(total > 0 && busy <= total);
        assert!(cores() >= 1);
    }
}
