//! The resources of the mesh's processes over time: resident memory, open
//! file descriptors and threads of every proxy and of the controller, read
//! from /proc; and the slope of a series (growth per hour).

use std::path::Path;

use serde::Serialize;

use crate::pairs::procs::parse_status_kib;

/// One process at one time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Since the load started.
    pub at_ms: u64,
    /// `controller` or `proxy <namespace>/<pod>`.
    pub who: String,
    pub pid: i32,
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
}

/// VmRSS (KiB) and Threads from /proc/PID/status (pure; the fields read
/// as the pairs harness reads them).
pub fn rss_and_threads(status: &str) -> Option<(u64, u64)> {
    Some((
        parse_status_kib(status, "VmRSS")?,
        parse_status_kib(status, "Threads")?,
    ))
}

/// A process's sample now, if it runs.
pub fn sample(at_ms: u64, who: String, pid: i32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (rss_kib, threads) = rss_and_threads(&status)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        at_ms,
        who,
        pid,
        rss_kib,
        fds,
        threads,
    })
}

/// The mesh's processes now: (who, pid) for the controller and each
/// proxy of `namespace`, from local mode's state directory.
pub fn processes(state: &Path, namespace: &str) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let controller = std::fs::read_to_string(state.join("run/osm-controller.pid"))
        .ok()
        .and_then(|t| t.trim().parse().ok());
    if let Some(pid) = controller {
        out.push(("controller".to_string(), pid));
    }
    let pods = std::fs::read_dir(state.join("pods").join(namespace))
        .into_iter()
        .flatten()
        .flatten();
    for pod in pods {
        let record = std::fs::read_to_string(pod.path().join("osm-proxy.process")).ok();
        if let Some(pid) = record
            .as_deref()
            .and_then(|t| t.split_whitespace().next())
            .and_then(|p| p.parse().ok())
        {
            let name = pod.file_name().to_string_lossy().into_owned();
            out.push((format!("proxy {namespace}/{name}"), pid));
        }
    }
    out
}

/// Least-squares slope of (milliseconds, value) points, per hour; None
/// under two points or a span under a minute (too short to say).
pub fn slope_per_hour(points: &[(u64, f64)]) -> Option<f64> {
    let (first, last) = (points.first()?.0, points.last()?.0);
    if points.len() < 2 || last.saturating_sub(first) < 60_000 {
        return None;
    }
    let n = points.len() as f64;
    let hours: Vec<f64> = points.iter().map(|(t, _)| *t as f64 / 3.6e6).collect();
    let mean_x = hours.iter().sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (x, (_, y)) in hours.iter().zip(points) {
        num += (x - mean_x) * (y - mean_y);
        den += (x - mean_x) * (x - mean_x);
    }
    (den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_files_give_rss_and_threads() {
        let status = "Name:\tosm-proxy\nVmPeak:\t  20000 kB\nVmRSS:\t   7421 kB\nThreads:\t3\n";
        assert_eq!(rss_and_threads(status), Some((7421, 3)));
        assert_eq!(rss_and_threads("Name:\tx\n"), None);
    }

    #[test]
    fn slopes_are_per_hour_and_need_a_minute() {
        // 10 MiB more every 30 minutes = 20 per hour.
        let points: Vec<(u64, f64)> = (0..=6)
            .map(|i| (i * 300_000, 100.0 + i as f64 * (10.0 / 6.0)))
            .collect();
        let slope = slope_per_hour(&points).unwrap();
        assert!((slope - 20.0).abs() < 1e-9, "{slope}");
        let flat: Vec<(u64, f64)> = (0..10).map(|i| (i * 10_000, 50.0)).collect();
        assert_eq!(slope_per_hour(&flat), Some(0.0));
        assert_eq!(slope_per_hour(&[(0, 1.0), (30_000, 2.0)]), None);
        assert_eq!(slope_per_hour(&[]), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = sample(5, "test".into(), std::process::id() as i32).unwrap();
        assert!(me.rss_kib > 0 && me.fds > 0 && me.threads > 0, "{me:?}");
    }
}
