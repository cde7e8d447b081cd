//! A small Prometheus text-format registry for `/metrics`.
//!
//! Counters are kept per (name, labels) in a mutex-guarded map; gauges are
//! computed at scrape time by the caller. Good enough for a handful of series.
//! [`render_live`] adds the live stream statistics, labelled by camera id and
//! viewer kind only (bounded).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::base::CameraId;
use crate::media::{LiveStats, ViewerKind};

/// Counters keyed by metric name and label string.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Metrics {
    /// Adds 1 to counter `name{labels}`. `labels` is already formatted,
    /// e.g. `route="/api/ring/cameras",status="200"`.
    pub fn inc(&self, name: &'static str, labels: String) {
        if let Ok(mut m) = self.counters.lock() {
            *m.entry((name, labels)).or_default() += 1;
        }
    }

    /// Renders all counters, then `gauges` (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        if let Ok(m) = self.counters.lock() {
            let mut last = "";
            for ((name, labels), v) in m.iter() {
                if *name != last {
                    let _ = writeln!(out, "# TYPE {name} counter");
                    last = name;
                }
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        }
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

/// One per-camera live series: name, type, help, value of a camera's stats.
type LiveSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&LiveStats) -> Option<f64>,
);

/// One per-(camera, viewer kind) live series: name, help, value.
type KindSeries = (
    &'static str,
    &'static str,
    fn(&LiveStats, ViewerKind) -> f64,
);

const LIVE_SERIES: &[LiveSeries] = &[
    (
        "ringbridge_live_streaming",
        "gauge",
        "1 while a live session is current",
        |s| Some(f64::from(u8::from(s.streaming))),
    ),
    (
        "ringbridge_live_bitrate_bps",
        "gauge",
        "Ingress bits per second (video and audio payload)",
        |s| Some(s.bitrate_bps),
    ),
    (
        "ringbridge_live_fps",
        "gauge",
        "Ingress video frames per second",
        |s| Some(s.fps),
    ),
    (
        "ringbridge_live_keyframe_interval_seconds",
        "gauge",
        "Mean seconds between key frames since streaming started",
        |s| s.keyframe_interval_s,
    ),
    (
        "ringbridge_live_session_age_seconds",
        "gauge",
        "Age of the current live session",
        |s| s.session_age_s,
    ),
    (
        "ringbridge_live_video_frames_total",
        "counter",
        "Video frames received",
        |s| Some(s.video_frames as f64),
    ),
    (
        "ringbridge_live_video_bytes_total",
        "counter",
        "Video payload bytes received",
        |s| Some(s.video_bytes as f64),
    ),
    (
        "ringbridge_live_audio_bytes_total",
        "counter",
        "Audio payload bytes received",
        |s| Some(s.audio_bytes as f64),
    ),
    (
        "ringbridge_live_keyframes_total",
        "counter",
        "Key frames received",
        |s| Some(s.keyframes as f64),
    ),
    (
        "ringbridge_live_packets_received_total",
        "counter",
        "Video RTP packets received",
        |s| Some(s.packets_received as f64),
    ),
    (
        "ringbridge_live_packets_lost_total",
        "counter",
        "Video RTP packets lost (sequence gaps)",
        |s| Some(s.packets_lost as f64),
    ),
    (
        "ringbridge_live_nacks_sent_total",
        "counter",
        "RTCP NACK messages sent to the camera",
        |s| Some(s.nacks_sent as f64),
    ),
    (
        "ringbridge_live_plis_sent_total",
        "counter",
        "RTCP PLI messages sent to the camera",
        |s| Some(s.plis_sent as f64),
    ),
    (
        "ringbridge_live_sessions_total",
        "counter",
        "Live sessions that became current",
        |s| Some(s.sessions as f64),
    ),
    (
        "ringbridge_live_renewals_total",
        "counter",
        "Seamless renewals before the session cap",
        |s| Some(s.renewals as f64),
    ),
];

/// Appends the live stream statistics of `cameras` (camera id, stats) to `out`.
pub fn render_live(out: &mut String, cameras: &[(CameraId, LiveStats)]) {
    for (name, typ, help, value) in LIVE_SERIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {typ}");
        for (camera, s) in cameras {
            if let Some(v) = value(s) {
                let _ = writeln!(out, "{name}{{camera=\"{camera}\"}} {v}");
            }
        }
    }
    let by_kind: [KindSeries; 3] = [
        (
            "ringbridge_live_viewers",
            "Leases held, by viewer kind",
            |s, k| s.viewers.get(k) as f64,
        ),
        (
            "ringbridge_live_viewer_bitrate_bps",
            "Bits per second delivered to current viewers, by kind",
            |s, k| {
                s.viewer_streams
                    .iter()
                    .filter(|v| v.kind == k)
                    .map(|v| v.bitrate_bps)
                    .sum()
            },
        ),
        (
            "ringbridge_live_viewer_dropped_frames",
            "Frames current viewers missed by falling behind, by kind",
            |s, k| {
                s.viewer_streams
                    .iter()
                    .filter(|v| v.kind == k)
                    .map(|v| v.drops as f64)
                    .sum()
            },
        ),
    ];
    for (name, help, value) in by_kind {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (camera, s) in cameras {
            for k in ViewerKind::ALL {
                let v = value(s, k);
                let _ = writeln!(
                    out,
                    "{name}{{camera=\"{camera}\",kind=\"{}\"}} {v}",
                    k.as_str()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.inc("http_requests_total", r#"status="200""#.into());
        m.inc("http_requests_total", r#"status="200""#.into());
        let s = m.render(&[("cameras", "Cameras known", 3.0)]);
        assert!(s.contains(
            "# TYPE http_requests_total counter\nhttp_requests_total{status=\"200\"} 2\n"
        ));
        assert!(s.contains("cameras 3"));
    }

    #[test]
    fn live_series_are_labelled_by_camera_and_kind_only() {
        use crate::media::{ViewerCounts, ViewerStats};
        let stats = LiveStats {
            streaming: true,
            codec: Some("h264"),
            codec_string: Some("avc1.640029".into()),
            width: Some(1920),
            height: Some(1080),
            bitrate_bps: 2_000_000.0,
            fps: 15.0,
            keyframe_interval_s: None,
            video_frames: 150,
            video_bytes: 1000,
            audio_bytes: 10,
            keyframes: 3,
            packets_received: 400,
            packets_lost: 2,
            nacks_sent: 1,
            plis_sent: 4,
            session_age_s: Some(10.0),
            sessions: 1,
            renewals: 0,
            viewers: ViewerCounts {
                rtsp: 1,
                ..ViewerCounts::default()
            },
            viewer_streams: vec![ViewerStats {
                kind: ViewerKind::Rtsp,
                age_s: 5.0,
                bitrate_bps: 1500.0,
                fps: 16.0,
                frames: 80,
                bytes: 900,
                drops: 3,
            }],
        };
        let mut out = String::new();
        render_live(&mut out, &[(CameraId::new(10001), stats)]);
        for line in [
            "# TYPE ringbridge_live_fps gauge\nringbridge_live_fps{camera=\"10001\"} 15\n",
            "ringbridge_live_plis_sent_total{camera=\"10001\"} 4\n",
            "ringbridge_live_viewers{camera=\"10001\",kind=\"rtsp\"} 1\n",
            "ringbridge_live_viewers{camera=\"10001\",kind=\"whep\"} 0\n",
            "ringbridge_live_viewer_bitrate_bps{camera=\"10001\",kind=\"rtsp\"} 1500\n",
            "ringbridge_live_viewer_dropped_frames{camera=\"10001\",kind=\"rtsp\"} 3\n",
        ] {
            assert!(out.contains(line), "{line} missing in:\n{out}");
        }
        // Unknown values are left out rather than reported as 0.
        assert!(
            !out.contains("ringbridge_live_keyframe_interval_seconds{"),
            "{out}"
        );
    }
}
