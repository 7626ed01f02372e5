//! Load from oha (crates.io): constant rate with latency correction
//! (latency counted from when a request was due, so a stalled proxy cannot
//! hide its queue), or closed loop for the maximum rate. One run is one oha
//! process; its JSON report is read back.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// What to drive one path with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Load {
    /// Requests per second; None: closed loop, as fast as answers come.
    pub rate: Option<u32>,
    pub connections: usize,
    pub duration: Duration,
}

impl Load {
    /// oha's arguments for this load against `port` on 127.0.0.1.
    pub fn args(&self, port: u16) -> Vec<String> {
        let mut args = vec![
            "--no-tui".to_string(),
            "--output-format".to_string(),
            "json".to_string(),
            "-z".to_string(),
            format!("{}ms", self.duration.as_millis()),
            "-c".to_string(),
            self.connections.to_string(),
        ];
        if let Some(rate) = self.rate {
            args.extend([
                "-q".to_string(),
                rate.to_string(),
                "--latency-correction".to_string(),
            ]);
        }
        args.push(format!("http://127.0.0.1:{port}/"));
        args
    }
}

/// What one run measured at the client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    pub requests: u64,
    pub ok: u64,
    pub rps: f64,
    /// Milliseconds.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    summary: Summary,
    latency_percentiles: Percentiles,
    #[serde(default)]
    status_code_distribution: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    error_distribution: std::collections::BTreeMap<String, u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    slowest: Option<f64>,
    requests_per_sec: f64,
}

#[derive(Deserialize)]
struct Percentiles {
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
}

/// oha's name for the requests it cut at the end of a timed run.
const DEADLINE: &str = "aborted due to deadline";

/// Reads oha's JSON report (seconds) into milliseconds and counts.
pub fn parse_report(json: &str) -> Result<Measured> {
    let report: Report = serde_json::from_str(json).context("oha's JSON report")?;
    let ok = report
        .status_code_distribution
        .get("200")
        .copied()
        .unwrap_or(0);
    let answered: u64 = report.status_code_distribution.values().sum();
    // oha cuts the requests in flight when the duration is up: not failures.
    let failed: u64 = report
        .error_distribution
        .iter()
        .filter(|(error, _)| error.as_str() != DEADLINE)
        .map(|(_, n)| n)
        .sum();
    let ms = |s: Option<f64>| s.map_or(f64::NAN, |s| s * 1000.0);
    Ok(Measured {
        requests: answered + failed,
        ok,
        rps: report.summary.requests_per_sec,
        p50: ms(report.latency_percentiles.p50),
        p90: ms(report.latency_percentiles.p90),
        p99: ms(report.latency_percentiles.p99),
        max: ms(report.summary.slowest),
    })
}

/// Runs oha once and returns its measurement.
pub fn run(oha: &Path, load: &Load, port: u16) -> Result<Measured> {
    let output = Command::new(oha)
        .args(load.args(port))
        .output()
        .with_context(|| {
            format!(
                "running {} (install oha with `cargo install oha --locked`; bench/run does)",
                oha.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "oha failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_report(&String::from_utf8_lossy(&output.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_runs_ask_for_latency_correction() {
        let load = Load {
            rate: Some(1000),
            connections: 16,
            duration: Duration::from_secs(10),
        };
        let args = load.args(8080).join(" ");
        assert_eq!(
            args,
            "--no-tui --output-format json -z 10000ms -c 16 -q 1000 --latency-correction http://127.0.0.1:8080/"
        );
        let closed = Load { rate: None, ..load };
        assert!(!closed.args(1).join(" ").contains("-q"));
    }

    #[test]
    fn a_report_is_read_in_milliseconds_with_failures_counted() {
        let json = r#"{
            "summary": {"successRate": 0.99, "total": 10.0, "slowest": 0.0123,
                        "fastest": 0.0001, "average": 0.0002, "requestsPerSec": 999.5},
            "latencyPercentiles": {"p10": 0.0001, "p50": 0.00025, "p90": 0.0004, "p99": 0.0009},
            "statusCodeDistribution": {"200": 9900, "403": 50},
            "errorDistribution": {"connection closed": 50, "aborted due to deadline": 16}
        }"#;
        let m = parse_report(json).unwrap();
        assert_eq!((m.requests, m.ok), (10_000, 9900));
        assert!((m.p50 - 0.25).abs() < 1e-9 && (m.p99 - 0.9).abs() < 1e-9);
        assert!((m.max - 12.3).abs() < 1e-9 && (m.rps - 999.5).abs() < 1e-9);
        assert!(parse_report("not json").is_err());
    }
}
