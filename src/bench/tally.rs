//! What the viewers of one load window received, summed up from their logs:
//! frame counts, the latency distributions (all, RTSP, WebRTC) and one summary
//! per viewer.

use std::time::Duration;

use super::report::{Frames, ViewerSummary};
use super::stats::{LatencyMs, ms, r3};
use super::viewer::{SharedLog, ViewerKind};

/// Simulator frame rate (frames per second), for expected-frame counts.
pub const SIM_FPS: f64 = 15.0;

/// The viewers' figures of one window.
pub(super) struct Tally {
    /// Frames received, lost, late, … over all viewers.
    pub frames: Frames,
    /// Forwarding latency over every viewer.
    pub latency: LatencyMs,
    /// Forwarding latency of the RTSP viewers.
    pub latency_rtsp: LatencyMs,
    /// Forwarding latency of the WebRTC viewers.
    pub latency_webrtc: LatencyMs,
    /// One entry per viewer.
    pub per_viewer: Vec<ViewerSummary>,
}

/// Sums up `logs` of viewers that watched a `window` long.
pub(super) fn viewers(logs: &[SharedLog], window: Duration) -> Tally {
    let expected = (window.as_secs_f64() * SIM_FPS).round() as u64;
    let mut all_lat = Vec::new();
    let mut by_kind: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let mut frames = Frames {
        expected_per_viewer: expected,
        ..Default::default()
    };
    let mut summaries = Vec::new();
    let mut bytes = 0u64;
    for log in logs {
        let Ok(mut l) = log.lock() else { continue };
        frames.received += l.frames;
        bytes += l.bytes;
        frames.stamped += l.stamped;
        frames.lost += l.lost;
        frames.late += l.late;
        frames.resets += l.resets;
        if l.first_keyframe.is_some() && l.error.is_none() {
            frames.viewers_ok += 1;
        } else {
            frames.viewers_failed += 1;
        }
        if l.frames < expected * 9 / 10 {
            frames.viewers_short += 1;
        }
        all_lat.extend_from_slice(&l.latencies_us);
        by_kind[usize::from(l.kind == ViewerKind::Webrtc)].extend_from_slice(&l.latencies_us);
        let lat = LatencyMs::from_us(&mut l.latencies_us);
        summaries.push(ViewerSummary {
            kind: l.kind,
            camera: l.camera.clone(),
            first_keyframe_ms: l.first_keyframe.map(|d| r3(ms(d))),
            codec: l.codec.clone(),
            frames: l.frames,
            stamped: l.stamped,
            lost: l.lost,
            late: l.late,
            resets: l.resets,
            latency_ms: lat,
            error: l.error.clone(),
        });
    }
    if !summaries.is_empty() {
        frames.video_kbps_per_viewer =
            r3(bytes as f64 * 8.0 / 1000.0 / window.as_secs_f64() / summaries.len() as f64);
    }
    frames.stamp_ratio = if frames.received > 0 {
        r3(frames.stamped as f64 / frames.received as f64)
    } else {
        0.0
    };
    let [mut rtsp_lat, mut webrtc_lat] = by_kind;
    Tally {
        frames,
        latency: LatencyMs::from_us(&mut all_lat),
        latency_rtsp: LatencyMs::from_us(&mut rtsp_lat),
        latency_webrtc: LatencyMs::from_us(&mut webrtc_lat),
        per_viewer: summaries,
    }
}
