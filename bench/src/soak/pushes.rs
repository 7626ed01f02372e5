//! The controller's config pushes over a soak: how many batches it sent
//! and how long each took from the change it carries to the send
//! (`osm_controller_updates_pushed_total`, `osm_controller_push_latency_ms`),
//! read from its `/metrics` with every sample. Counters start afresh in
//! each controller process (the soak kills it), so totals are summed per
//! process (pure, from the scrapes).

use std::collections::BTreeMap;

use serde::Serialize;

const PUSHED: &str = "osm_controller_updates_pushed_total";
const LATENCY_BUCKET: &str = "osm_controller_push_latency_ms_bucket";

/// One scrape of the controller's counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushScrape {
    pub at_ms: u64,
    pub pid: i32,
    pub pushed: u64,
    /// Cumulative (upper bound in ms, batches at most that late);
    /// `+Inf` as `f64::INFINITY`.
    pub latency_buckets: Vec<(f64, u64)>,
}

/// The pushed count and latency buckets in a Prometheus text exposition
/// (pure); None when the controller has no such counter.
pub fn parse(text: &str) -> Option<(u64, Vec<(f64, u64)>)> {
    let value = |line: &str| line.rsplit(' ').next()?.parse::<f64>().ok();
    let pushed = text
        .lines()
        .find(|l| l.starts_with(PUSHED) && !l.starts_with('#'))
        .and_then(value)?;
    let buckets = text
        .lines()
        .filter(|l| l.starts_with(LATENCY_BUCKET))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, value(l)? as u64))
        })
        .collect();
    Some((pushed as u64, buckets))
}

/// Pushes over the run and their latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pushes {
    pub batches: u64,
    /// Controller processes scraped.
    pub processes: usize,
    /// Upper bounds of the buckets holding the median and the 99th
    /// percentile of the batches that carried a change (ms).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Sums each controller process's last scrape (pure).
pub fn summarize(scrapes: &[PushScrape]) -> Pushes {
    let mut last: BTreeMap<i32, &PushScrape> = BTreeMap::new();
    for s in scrapes {
        last.insert(s.pid, s);
    }
    let mut buckets: BTreeMap<u64, (f64, u64)> = BTreeMap::new();
    for s in last.values() {
        for &(le, n) in &s.latency_buckets {
            buckets.entry(le.to_bits()).or_insert((le, 0)).1 += n;
        }
    }
    let mut cumulative: Vec<(f64, u64)> = buckets.into_values().collect();
    cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
    let count = cumulative.last().map_or(0, |b| b.1);
    let quantile = |q: f64| {
        let rank = (q * count as f64).ceil().max(1.0) as u64;
        cumulative
            .iter()
            .find(|(_, n)| *n >= rank)
            .map(|(le, _)| *le)
            .filter(|_| count > 0)
    };
    Pushes {
        batches: last.values().map(|s| s.pushed).sum(),
        processes: last.len(),
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
    }
}

/// The report's section on config pushes.
pub fn markdown(p: &Pushes) -> String {
    let ms = |v: Option<f64>| match v {
        Some(v) if v.is_finite() => format!("<= {v} ms"),
        Some(_) => "over the largest bucket".into(),
        None => "-".into(),
    };
    format!(
        "\n## Config pushes (the controller's counters, summed over its {} processes)\n\n\
| batches sent | change to send, p50 | p99 |\n|---|---|---|\n| {} | {} | {} |\n",
        p.processes,
        p.batches,
        ms(p.p50_ms),
        ms(p.p99_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE osm_controller_updates_pushed_total counter\n\
osm_controller_updates_pushed_total 12\n\
osm_controller_push_latency_ms_bucket{le=\"1\"} 2\n\
osm_controller_push_latency_ms_bucket{le=\"5\"} 8\n\
osm_controller_push_latency_ms_bucket{le=\"+Inf\"} 10\n\
osm_controller_push_latency_ms_sum 40\n";

    #[test]
    fn reads_the_pushed_count_and_latency_buckets() {
        let (pushed, buckets) = parse(TEXT).unwrap();
        assert_eq!(pushed, 12);
        assert_eq!(buckets, vec![(1.0, 2), (5.0, 8), (f64::INFINITY, 10)]);
        assert_eq!(parse("# nothing\n"), None);
    }

    #[test]
    fn sums_the_last_scrape_of_each_controller_process() {
        let scrape = |at_ms, pid, pushed, b: &[(f64, u64)]| PushScrape {
            at_ms,
            pid,
            pushed,
            latency_buckets: b.to_vec(),
        };
        let scrapes = [
            scrape(0, 10, 3, &[(1.0, 1), (5.0, 2), (f64::INFINITY, 2)]),
            scrape(5, 10, 7, &[(1.0, 3), (5.0, 5), (f64::INFINITY, 5)]),
            // Killed; a new process counts from zero.
            scrape(10, 11, 4, &[(1.0, 0), (5.0, 4), (f64::INFINITY, 5)]),
        ];
        let p = summarize(&scrapes);
        assert_eq!((p.batches, p.processes), (11, 2));
        // 10 batches with a change: 3 within 1 ms, 9 within 5 ms.
        assert_eq!(p.p50_ms, Some(5.0));
        assert_eq!(p.p99_ms, Some(f64::INFINITY));
        assert_eq!(summarize(&[]), Pushes::default());
    }
}
