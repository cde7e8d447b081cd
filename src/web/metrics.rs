//! A small Prometheus text-format registry for `/metrics`.
//!
//! Counters are kept per (name, labels) in a mutex-guarded map; gauges are
//! computed at scrape time by the caller. Good enough for a handful of series.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

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
}
