//! The scale sweep (cameras × viewers per camera) and its plot (gnuplot, PNG):
//! CPU and p99 latency against viewers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

use super::report::{ScenarioResult, Skipped};
use super::scenario::{self, Env, Scenario};
use super::tally::SIM_FPS;

/// A sweep point cannot fit when the bench's own processes (daemon, simulator
/// and the viewers) use this share of all cores (other processes on the machine
/// do not count: they are reported, not judged)...
const SATURATED_OWN_CPU: f64 = 0.9;
/// ...or this share of the expected frames went missing or came late.
const SATURATED_LOSS: f64 = 0.05;

/// RTSP and WebRTC viewers per camera for `v` viewers: half each (RTSP gets the
/// odd one), all RTSP without WHEP.
pub fn split(v: usize, whep: bool) -> (usize, usize) {
    if whep { (v.div_ceil(2), v / 2) } else { (v, 0) }
}

/// Runs every (cameras, viewers) point, smallest first. A point is skipped
/// when a smaller one (fewer or equal cameras and viewers) already saturated
/// the machine.
pub async fn run(
    env: &Env,
    base: &Scenario,
    cameras: &[usize],
    viewers: &[usize],
    whep: bool,
    cancel: &CancellationToken,
) -> (Vec<ScenarioResult>, Vec<Skipped>) {
    let (mut done, mut skipped) = (Vec::new(), Vec::new());
    let mut saturated: Vec<(usize, usize, String)> = Vec::new();
    for &c in cameras {
        for &v in viewers {
            if cancel.is_cancelled() {
                return (done, skipped);
            }
            if let Some((sc, sv, why)) = saturated.iter().find(|(sc, sv, _)| *sc <= c && *sv <= v) {
                skipped.push(Skipped {
                    cameras: c,
                    viewers_per_camera: v,
                    reason: format!("cannot fit: {sc} cameras × {sv} viewers already {why}"),
                });
                continue;
            }
            let (rtsp, webrtc) = split(v, whep);
            let sc = Scenario {
                cameras: c,
                rtsp,
                webrtc,
                ttff_rounds: 0,
                baseline: false,
                idle: Duration::ZERO,
                ..base.clone()
            };
            tracing::info!(cameras = c, viewers = v, "bench: sweep point");
            match scenario::run(env, &sc, cancel).await {
                Ok(r) => {
                    let expected = (r.viewers as f64) * r.duration_s * SIM_FPS;
                    let bad = if expected > 0.0 {
                        (r.frames.lost + r.frames.late) as f64 / expected
                    } else {
                        0.0
                    };
                    let own = (r.daemon.cpu_cores + r.sim_cpu_cores + r.bench_cpu_cores)
                        / super::procstat::cores() as f64;
                    if own >= SATURATED_OWN_CPU
                        || bad >= SATURATED_LOSS
                        || r.frames.viewers_failed > 0
                    {
                        saturated.push((
                            c,
                            v,
                            format!(
                                "saturated the machine (daemon + simulator + viewers {:.0} % of \
                                 all cores, {:.1} % of frames lost or late, {} viewers failed)",
                                own * 100.0,
                                bad * 100.0,
                                r.frames.viewers_failed
                            ),
                        ));
                    }
                    done.push(r);
                }
                Err(e) => {
                    skipped.push(Skipped {
                        cameras: c,
                        viewers_per_camera: v,
                        reason: format!("failed: {e:#}"),
                    });
                    saturated.push((c, v, "failed".into()));
                }
            }
        }
    }
    (done, skipped)
}

/// Writes `sweep.dat` and `sweep.gp` into `dir` and renders `sweep.png` with
/// gnuplot (Debian `gnuplot-nox`). Returns the PNG's path.
pub fn plot(results: &[ScenarioResult], dir: &Path) -> anyhow::Result<PathBuf> {
    let mut dat = String::from("# cameras viewers_per_camera total_viewers cpu_pct p99_ms\n");
    let mut cams: Vec<usize> = results.iter().map(|r| r.cameras).collect();
    cams.sort_unstable();
    cams.dedup();
    for (i, c) in cams.iter().enumerate() {
        if i > 0 {
            dat += "\n\n"; // gnuplot data block separator (index)
        }
        dat += &format!("# cameras={c}\n");
        let mut rows: Vec<&ScenarioResult> = results.iter().filter(|r| r.cameras == *c).collect();
        rows.sort_by_key(|r| r.rtsp_per_camera + r.webrtc_requested_per_camera);
        for r in rows {
            let v = r.rtsp_per_camera + r.webrtc_requested_per_camera;
            dat += &format!(
                "{} {} {} {:.2} {}\n",
                r.cameras,
                v,
                r.viewers,
                r.daemon.cpu_cores * 100.0,
                r.latency_ms.p99.map_or("NaN".into(), |p| format!("{p:.3}"))
            );
        }
    }
    let dat_path = dir.join("sweep.dat");
    std::fs::write(&dat_path, dat).context("writing sweep.dat")?;
    let png = dir.join("sweep.png");
    let plots = |col: usize| {
        cams.iter()
            .enumerate()
            .map(|(i, c)| {
                format!("'sweep.dat' index {i} using 2:{col} with linespoints lw 2 pt 7 title '{c} camera{}'",
                    if *c == 1 { "" } else { "s" })
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gp = format!(
        "set terminal pngcairo size 1200,480 font 'DejaVu Sans,11'\n\
         set output 'sweep.png'\n\
         set multiplot layout 1,2 title 'ring-bridge bench: scale sweep'\n\
         set logscale x 2\nset xrange [0.8:20]\nset xtics (1,2,4,8,16)\nset grid\nset key top left\n\
         set xlabel 'viewers per camera'\n\
         set ylabel 'ring-bridge CPU (% of one core)'\nset yrange [0:*]\n\
         set title 'CPU'\nplot {cpu}, 50 with lines dt 2 lc rgb 'gray' title '50 % target (16×4)'\n\
         set ylabel 'forwarding latency p99 (ms)'\n\
         set title 'p99 latency, simulator send → viewer receive'\nplot {lat}, 5 with lines dt 2 lc rgb 'gray' title '5 ms target (16×4)'\n\
         unset multiplot\n",
        cpu = plots(4),
        lat = plots(5),
    );
    std::fs::write(dir.join("sweep.gp"), gp).context("writing sweep.gp")?;
    let out = std::process::Command::new("gnuplot")
        .arg("sweep.gp")
        .current_dir(dir)
        .output()
        .context("running gnuplot (Debian package gnuplot-nox)")?;
    if !out.status.success() {
        bail!("gnuplot failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_split_between_kinds() {
        assert_eq!(split(1, true), (1, 0));
        assert_eq!(split(4, true), (2, 2));
        assert_eq!(split(16, false), (16, 0));
    }
}
