//! Percentiles and the summaries the report is made of.

use serde::Serialize;

/// Nearest-rank percentile (`p` in 0..=100) of sorted `v`; `None` when empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency distribution in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyMs {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl LatencyMs {
    /// From microsecond samples (sorted in place).
    pub fn from_us(v: &mut [u32]) -> Self {
        v.sort_unstable();
        let to_ms = |x: Option<u32>| x.map(|u| f64::from(u) / 1000.0);
        LatencyMs {
            samples: v.len(),
            p50: to_ms(percentile(v, 50.0)),
            p99: to_ms(percentile(v, 99.0)),
            max: to_ms(v.last().copied()),
        }
    }
}

/// Time-to-first-frame distribution in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TtffMs {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// Every sample, in the order taken.
    pub all: Vec<f64>,
}

impl TtffMs {
    /// From samples in milliseconds.
    pub fn from_ms(all: Vec<f64>) -> Self {
        let mut v = all.clone();
        v.sort_by(f64::total_cmp);
        TtffMs {
            samples: v.len(),
            p50: percentile(&v, 50.0),
            p95: percentile(&v, 95.0),
            all,
        }
    }
}

/// `d` in milliseconds.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Rounds to 3 decimals for readable JSON.
pub fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `Some(x)` formatted with `digits`, or `–`.
pub fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        let mut us = vec![3000, 1000, 2000];
        let l = LatencyMs::from_us(&mut us);
        assert_eq!((l.p50, l.max), (Some(2.0), Some(3.0)));
        let t = TtffMs::from_ms(vec![300.0, 100.0, 200.0]);
        assert_eq!((t.p50, t.p95), (Some(200.0), Some(300.0)));
    }
}
