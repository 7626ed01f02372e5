//! `osm_request_duration_ms`: a histogram counted straight into its fixed
//! buckets. The Prometheus exporter's histograms keep every sample in a
//! buffer until its upkeep folds them (8 bytes a request, every 5 s): at
//! 26,000 requests/s that held about 1 MB of the outbound proxy's peak
//! memory (bench/README.md, "Request durations counted in place"). Here a
//! sample is one atomic increment and one addition; memory does not grow
//! with the rate.
//!
//! The series expire as the exporter's do: a series whose count a render
//! (or upkeep) saw unchanged for the idle time is dropped, and its handles
//! no longer reach a scrape; [`super::endpoint_series`] looks a cached
//! handle up again before that can happen.

use std::{
    collections::HashMap,
    fmt::Write,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use metrics::{HistogramFn, Label};
use metrics_exporter_prometheus::formatting::{sanitize_label_key, sanitize_label_value};

/// Upper bounds of the buckets, in milliseconds (`+Inf` follows).
pub const BUCKETS_MS: [f64; 14] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// The index of the bucket `value` is counted in (pure): the first whose
/// bound is at least `value`, else `+Inf`'s. NaN goes to `+Inf`.
pub fn bucket_of(value: f64) -> usize {
    if value.is_nan() {
        return BUCKETS_MS.len();
    }
    BUCKETS_MS.partition_point(|bound| *bound < value)
}

/// One series' counts: per bucket (not cumulative), and the sum.
#[derive(Debug, Default)]
pub struct BucketCounts {
    counts: [AtomicU64; BUCKETS_MS.len() + 1],
    /// The sum of the samples, an `f64`'s bits.
    sum_bits: AtomicU64,
}

impl HistogramFn for BucketCounts {
    fn record(&self, value: f64) {
        self.counts[bucket_of(value)].fetch_add(1, Ordering::Relaxed);
        // One worker records at a time in practice; the loop is for others.
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

impl BucketCounts {
    fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

#[derive(Debug)]
struct Series {
    counts: Arc<BucketCounts>,
    /// `k="v",...`, escaped once.
    labels: String,
    /// The count a render last saw, and when it last saw it change.
    seen: (u64, Instant),
}

/// The family's series, by their labels.
#[derive(Debug)]
pub struct DurationHistograms {
    name: &'static str,
    help: &'static str,
    idle: Duration,
    series: Mutex<HashMap<Vec<Label>, Series>>,
}

impl DurationHistograms {
    pub fn new(name: &'static str, help: &'static str, idle: Duration) -> Self {
        Self {
            name,
            help,
            idle,
            series: Mutex::default(),
        }
    }

    /// The counts of the series with `labels`, made when missing.
    pub fn register(&self, labels: Vec<Label>) -> Arc<BucketCounts> {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = series.get(&labels) {
            return found.counts.clone();
        }
        let counts = Arc::new(BucketCounts::default());
        let rendered = render_labels(&labels);
        series.insert(
            labels,
            Series {
                counts: counts.clone(),
                labels: rendered,
                seen: (0, Instant::now()),
            },
        );
        counts
    }

    /// Drops the series unchanged for the idle time, as of `now`.
    pub fn expire(&self, now: Instant) {
        drop(self.expired(now));
    }

    /// [`Self::expire`], keeping the lock for what follows.
    fn expired(&self, now: Instant) -> MutexGuard<'_, HashMap<Vec<Label>, Series>> {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series.retain(|_, s| {
            let total = s.counts.total();
            if total != s.seen.0 {
                s.seen = (total, now);
            }
            now.saturating_duration_since(s.seen.1) < self.idle
        });
        series
    }

    /// The family in the Prometheus text format (nothing when it has no
    /// series), after dropping the idle ones.
    pub fn render(&self, text: &mut String) {
        let series = self.expired(Instant::now());
        if series.is_empty() {
            return;
        }
        let name = self.name;
        let _ = writeln!(text, "# HELP {name} {}", self.help);
        let _ = writeln!(text, "# TYPE {name} histogram");
        for s in series.values() {
            let (labels, comma) = (&s.labels, if s.labels.is_empty() { "" } else { "," });
            let mut cumulative = 0;
            for (i, count) in s.counts.counts.iter().enumerate() {
                cumulative += count.load(Ordering::Relaxed);
                let le = BUCKETS_MS
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), f64::to_string);
                let _ = writeln!(
                    text,
                    "{name}_bucket{{{labels}{comma}le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = f64::from_bits(s.counts.sum_bits.load(Ordering::Relaxed));
            let braced = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            };
            let _ = writeln!(text, "{name}_sum{braced} {sum}");
            let _ = writeln!(text, "{name}_count{braced} {cumulative}");
        }
        text.push('\n');
    }
}

/// `k="v",...` with the exporter's escaping.
fn render_labels(labels: &[Label]) -> String {
    labels
        .iter()
        .map(|l| {
            format!(
                "{}=\"{}\"",
                sanitize_label_key(l.key()),
                sanitize_label_value(l.value())
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
#[path = "duration_histogram_tests.rs"]
mod tests;
