//! The interception bench's figures from its samples (pure): per rate and
//! path the medians over repetitions, the meshed path's added latency over
//! the plain one in the same run, each proxy's CPU per 1,000 requests, and
//! the foreign load that says whether a run was disturbed.

use serde::Serialize;

use crate::pairs::{load::Measured, report::median};

/// The two paths: the same pods without and with sidecars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    Plain,
    Meshed,
}

impl Path {
    /// Its namespace in `bench/intercept/mesh.yaml`.
    pub fn namespace(self) -> &'static str {
        match self {
            Path::Plain => "plain",
            Path::Meshed => "meshed",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub rate: u32,
    pub repetition: usize,
    pub path: Path,
    pub measured: Measured,
    /// CPU seconds the load pod's proxy (outbound) and the app pod's proxy
    /// (inbound) used during the run; zero on the plain path.
    pub outbound_cpu_s: f64,
    pub inbound_cpu_s: f64,
    /// The machine's busy cores over the run minus what the run's own
    /// processes (oha, the app, the proxies) used.
    pub foreign_cores: f64,
}

/// The figures of one rate and path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub rate: u32,
    pub path: Path,
    pub runs: usize,
    pub requests: u64,
    pub ok: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Over the plain path's medians at the same rate; None for it.
    pub added_p50_ms: Option<f64>,
    pub added_p99_ms: Option<f64>,
    /// CPU seconds per 1,000 requests (= cores per 1,000 requests/s).
    pub outbound_cpu_per_1k: Option<f64>,
    pub inbound_cpu_per_1k: Option<f64>,
    pub max_foreign_cores: f64,
}

/// CPU seconds per 1,000 requests of one run.
fn per_1k(cpu_s: f64, requests: u64) -> f64 {
    if requests == 0 {
        f64::NAN
    } else {
        cpu_s * 1000.0 / requests as f64
    }
}

/// One row per rate and path, in the order rates were run, plain first.
pub fn rows(samples: &[Sample]) -> Vec<Row> {
    let mut rates: Vec<u32> = Vec::new();
    for s in samples {
        if !rates.contains(&s.rate) {
            rates.push(s.rate);
        }
    }
    let mut out = Vec::new();
    for rate in rates {
        let row = |path: Path| -> Option<Row> {
            let runs: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.rate == rate && s.path == path)
                .collect();
            if runs.is_empty() {
                return None;
            }
            let med = |f: &dyn Fn(&Sample) -> f64| {
                median(&mut runs.iter().map(|s| f(s)).collect::<Vec<_>>())
            };
            let meshed = path == Path::Meshed;
            Some(Row {
                rate,
                path,
                runs: runs.len(),
                requests: runs.iter().map(|s| s.measured.requests).sum(),
                ok: runs.iter().map(|s| s.measured.ok).sum(),
                p50_ms: med(&|s| s.measured.p50),
                p99_ms: med(&|s| s.measured.p99),
                added_p50_ms: None,
                added_p99_ms: None,
                outbound_cpu_per_1k: meshed
                    .then(|| med(&|s| per_1k(s.outbound_cpu_s, s.measured.requests))),
                inbound_cpu_per_1k: meshed
                    .then(|| med(&|s| per_1k(s.inbound_cpu_s, s.measured.requests))),
                max_foreign_cores: runs.iter().map(|s| s.foreign_cores).fold(0.0, f64::max),
            })
        };
        let plain = row(Path::Plain);
        let meshed = row(Path::Meshed).map(|mut m| {
            if let Some(p) = &plain {
                m.added_p50_ms = Some(m.p50_ms - p.p50_ms);
                m.added_p99_ms = Some(m.p99_ms - p.p99_ms);
            }
            m
        });
        out.extend(plain);
        out.extend(meshed);
    }
    out
}

/// The Markdown report.
pub fn markdown(rows: &[Row], context: &str) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:+.3}"));
    let cpu = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    let mut out = String::from(
        "# Under real interception: the pair as users run it\n\n\
         Local mode's pods (network namespaces, osm-init's iptables rules, \
         controller-issued certificates, an SMI policy in force); oha runs in the `load` \
         pod's network namespace against the `app` Service, at a constant rate with latency \
         correction. `plain`: the same pods without sidecars, in the same run.\n\n",
    );
    out.push_str(context);
    out.push_str(
        "\n\n| rate | path | ok / requests | p50 ms | p99 ms | added p50 | added p99 \
         | CPU s per 1k req, outbound / inbound proxy | foreign cores (max) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} / {} | {:.3} | {:.3} | {} | {} | {} / {} | {:.2} |\n",
            r.rate,
            r.path.namespace(),
            r.ok,
            r.requests,
            r.p50_ms,
            r.p99_ms,
            ms(r.added_p50_ms),
            ms(r.added_p99_ms),
            cpu(r.outbound_cpu_per_1k),
            cpu(r.inbound_cpu_per_1k),
            r.max_foreign_cores,
        ));
    }
    out.push_str(
        "\nAdded latency: the meshed path's median minus the plain path's at the same rate. \
         A row whose foreign cores exceed ~0.3 was disturbed by other work: run it again.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(path: Path, repetition: usize, p50: f64, p99: f64, cpu: (f64, f64)) -> Sample {
        Sample {
            rate: 1000,
            repetition,
            path,
            measured: Measured {
                requests: 10_000,
                ok: 10_000,
                rps: 1000.0,
                p50,
                p90: p50,
                p99,
                max: p99,
            },
            outbound_cpu_s: cpu.0,
            inbound_cpu_s: cpu.1,
            foreign_cores: 0.1 * repetition as f64,
        }
    }

    #[test]
    fn added_latency_and_cpu_come_from_medians_of_the_same_run() {
        let samples = [
            sample(Path::Plain, 0, 0.20, 0.40, (0.0, 0.0)),
            sample(Path::Meshed, 0, 0.50, 0.90, (1.0, 0.8)),
            sample(Path::Meshed, 1, 0.60, 1.10, (1.2, 0.9)),
            sample(Path::Plain, 1, 0.30, 0.50, (0.0, 0.0)),
            sample(Path::Plain, 2, 0.25, 0.45, (0.0, 0.0)),
            sample(Path::Meshed, 2, 0.55, 5.00, (0.9, 1.0)),
        ];
        let rows = rows(&samples);
        assert_eq!(rows.len(), 2);
        let (plain, meshed) = (&rows[0], &rows[1]);
        assert_eq!((plain.path, meshed.path), (Path::Plain, Path::Meshed));
        assert_eq!((plain.runs, plain.requests, plain.ok), (3, 30_000, 30_000));
        assert!((plain.p50_ms - 0.25).abs() < 1e-9);
        assert_eq!(plain.added_p50_ms, None);
        assert_eq!(plain.outbound_cpu_per_1k, None);
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(meshed.added_p50_ms, 0.30), "{meshed:?}");
        assert!(close(meshed.added_p99_ms, 0.65), "{meshed:?}");
        // 1.0 CPU s over 10,000 requests: 0.1 s per 1,000 (median of 0.1, 0.12, 0.09).
        assert!(close(meshed.outbound_cpu_per_1k, 0.10), "{meshed:?}");
        assert!(close(meshed.inbound_cpu_per_1k, 0.09), "{meshed:?}");
        assert!((meshed.max_foreign_cores - 0.2).abs() < 1e-9);

        let text = markdown(&rows, "ctx");
        assert!(text.contains("| 1000 | meshed | 30000 / 30000 | 0.550 | 1.100 | +0.300 | +0.650 | 0.100 / 0.090 | 0.20 |"), "{text}");
        assert!(
            text.contains("| 1000 | plain | 30000 / 30000 | 0.250 | 0.450 | - | - | - / - |"),
            "{text}"
        );
    }

    #[test]
    fn a_rate_without_a_plain_run_has_no_added_latency() {
        let rows = rows(&[sample(Path::Meshed, 0, 0.5, 0.9, (1.0, 1.0))]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].added_p50_ms, None);
        assert!(per_1k(1.0, 0).is_nan());
    }
}
