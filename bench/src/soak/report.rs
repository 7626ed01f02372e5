//! What a soak run shows: requests and failures by cause and by what was
//! happening when they failed, latency per window, and each process's
//! memory, descriptors and threads with their slope (pure, from the
//! client's report, the churn log and the samples), written as Markdown
//! and JSON.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::sample::{Sample, slope_per_hour};

/// A churn event the harness applied, in the harness's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub at_ms: u64,
    pub churn: String,
    pub detail: String,
}

/// A failure seen by the client, placed in the harness's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placed {
    pub at_ms: u64,
    pub kind: String,
    pub cause: String,
    /// The churn in progress (the latest event at most `WINDOW_MS`
    /// before), or `steady`.
    pub during: String,
    pub detail: String,
}

/// How long after an event a failure is put down to it.
pub const WINDOW_MS: u64 = 15_000;

/// Churn that replaces or kills processes.
const DISRUPTIVE: [&str; 3] = ["rollout", "controller", "app"];

/// Places the client's failures (`failures` of its report, its clock
/// `offset_ms` ahead of the harness's) against the events.
pub fn place(report: &Value, offset_ms: i64, events: &[Event]) -> Vec<Placed> {
    report["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let client_ms = f["atMs"].as_u64().unwrap_or(0) as i64;
            let at_ms = u64::try_from(client_ms - offset_ms).unwrap_or(0);
            let recent = || {
                events
                    .iter()
                    .rev()
                    .filter(|e| e.at_ms <= at_ms && at_ms - e.at_ms <= WINDOW_MS)
            };
            // A process killed or a pod replaced explains a failure better
            // than a policy or setting change made meanwhile.
            let during = recent()
                .find(|e| DISRUPTIVE.contains(&e.churn.as_str()))
                .or_else(|| recent().next())
                .map_or_else(|| "steady".to_string(), |e| e.churn.clone());
            let text = |k: &str| f[k].as_str().unwrap_or("").trim().to_string();
            Placed {
                at_ms,
                kind: text("kind"),
                cause: text("cause"),
                during,
                detail: text("detail"),
            }
        })
        .collect()
}

/// One process's resources over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub who: String,
    pub samples: usize,
    pub first_rss_kib: u64,
    pub last_rss_kib: u64,
    pub max_rss_kib: u64,
    pub rss_mib_per_hour: Option<f64>,
    /// The slope over the second half of its life: a one-off rise (a burst
    /// of requests held during an outage, whose memory the allocator
    /// keeps) steepens the whole-life slope; steady growth shows here too.
    pub rss_mib_per_hour_late: Option<f64>,
    pub first_fds: u64,
    pub last_fds: u64,
    pub first_threads: u64,
    pub last_threads: u64,
}

/// Each process's trend, by who it is and pid (a restarted controller or
/// a rolled pod is another series).
pub fn trends(samples: &[Sample]) -> Vec<Trend> {
    let mut series: BTreeMap<(String, i32), Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        series.entry((s.who.clone(), s.pid)).or_default().push(s);
    }
    series
        .into_iter()
        .map(|((who, pid), points)| {
            let (first, last) = (points[0], points[points.len() - 1]);
            let rss: Vec<(u64, f64)> = points
                .iter()
                .map(|s| (s.at_ms, s.rss_kib as f64 / 1024.0))
                .collect();
            Trend {
                who: format!("{who} (pid {pid})"),
                samples: points.len(),
                first_rss_kib: first.rss_kib,
                last_rss_kib: last.rss_kib,
                max_rss_kib: points.iter().map(|s| s.rss_kib).max().unwrap_or(0),
                rss_mib_per_hour: slope_per_hour(&rss),
                rss_mib_per_hour_late: slope_per_hour(&rss[rss.len() / 2..]),
                first_fds: first.fds,
                last_fds: last.fds,
                first_threads: first.threads,
                last_threads: last.threads,
            }
        })
        .collect()
}

/// Totals of one traffic kind: (ok, failed by cause).
pub fn totals(report: &Value, kind: &str) -> (u64, BTreeMap<String, u64>) {
    let k = &report["kinds"][kind];
    let failed = k["failed"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(cause, n)| (cause.clone(), n.as_u64().unwrap_or(0)))
        .collect();
    (k["ok"].as_u64().unwrap_or(0), failed)
}

/// The Markdown report.
pub fn markdown(
    title: &str,
    schedule: &[String],
    report: &Value,
    placed: &[Placed],
    trends: &[Trend],
) -> String {
    let mut md = format!("# {title}\n\nChurn schedule:\n\n");
    for line in schedule {
        md.push_str(&format!("- {line}\n"));
    }
    md.push_str(
        "\n## Requests\n\n| traffic | sent | ok | failed | by cause |\n|---|---|---|---|---|\n",
    );
    for kind in ["http", "tcp"] {
        let (ok, failed) = totals(report, kind);
        let n: u64 = failed.values().sum();
        let causes: Vec<String> = failed.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        md.push_str(&format!(
            "| {kind} | {} | {ok} | {n} | {} |\n",
            ok + n,
            if causes.is_empty() {
                "-".into()
            } else {
                causes.join(", ")
            }
        ));
    }
    let mut by_churn: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for p in placed {
        *by_churn
            .entry((p.during.as_str(), p.cause.as_str()))
            .or_default() += 1;
    }
    md.push_str("\n## Failures by what was happening (within 15 s after an event)\n\n");
    if by_churn.is_empty() {
        md.push_str("None.\n");
    } else {
        md.push_str("| during | cause | failures |\n|---|---|---|\n");
        for ((during, cause), n) in &by_churn {
            md.push_str(&format!("| {during} | {cause} | {n} |\n"));
        }
        md.push_str("\nFirst failures:\n\n");
        for p in placed.iter().take(10) {
            md.push_str(&format!(
                "- {:.1} s {} {} during {}: {}\n",
                p.at_ms as f64 / 1000.0,
                p.kind,
                p.cause,
                p.during,
                p.detail
            ));
        }
    }
    md.push_str("\n## HTTP latency per 10 s window (ms)\n\n| from (s) | ok | failed | p50 | p99 |\n|---|---|---|---|---|\n");
    for w in report["kinds"]["http"]["windows"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let failed: u64 = w["failed"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, n)| n.as_u64())
            .sum();
        let ms = |k: &str| w[k].as_f64().map_or("-".into(), |v| format!("{v:.2}"));
        md.push_str(&format!(
            "| {} | {} | {failed} | {} | {} |\n",
            w["startMs"].as_u64().unwrap_or(0) / 1000,
            w["ok"],
            ms("p50Ms"),
            ms("p99Ms")
        ));
    }
    md.push_str("\n## Processes (RSS in MiB; slope per hour over the process's life, and over its second half)\n\n| process | samples | RSS first | RSS last | RSS max | slope | slope, 2nd half | fds first→last | threads first→last |\n|---|---|---|---|---|---|---|---|---|\n");
    for t in trends {
        md.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {}→{} | {}→{} |\n",
            t.who,
            t.samples,
            t.first_rss_kib as f64 / 1024.0,
            t.last_rss_kib as f64 / 1024.0,
            t.max_rss_kib as f64 / 1024.0,
            t.rss_mib_per_hour
                .map_or("-".into(), |s| format!("{s:+.2} MiB/h")),
            t.rss_mib_per_hour_late
                .map_or("-".into(), |s| format!("{s:+.2} MiB/h")),
            t.first_fds,
            t.last_fds,
            t.first_threads,
            t.last_threads
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn failures_are_put_down_to_the_churn_just_before_them() {
        let report = json!({"failures": [
            {"atMs": 12_500, "kind": "http", "cause": "status 503", "detail": "x"},
            {"atMs": 40_000, "kind": "tcp", "cause": "reset", "detail": "y"},
            {"atMs": 5_000, "kind": "http", "cause": "timeout", "detail": "z"},
        ]});
        let events = [
            Event {
                at_ms: 10_000,
                churn: "rollout".into(),
                detail: String::new(),
            },
            Event {
                at_ms: 10_200,
                churn: "policy".into(),
                detail: String::new(),
            },
            Event {
                at_ms: 35_000,
                churn: "meshconfig".into(),
                detail: String::new(),
            },
        ];
        // The client's clock runs 2 s ahead of the harness's.
        let placed = place(&report, 2_000, &events);
        let got: Vec<(u64, &str)> = placed
            .iter()
            .map(|p| (p.at_ms, p.during.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (10_500, "rollout"),
                (38_000, "meshconfig"),
                (3_000, "steady")
            ]
        );
    }

    #[test]
    fn trends_follow_each_process_incarnation() {
        let s = |at_ms, who: &str, pid, rss_kib| Sample {
            at_ms,
            who: who.into(),
            pid,
            rss_kib,
            fds: 10,
            threads: 3,
        };
        let samples = [
            s(0, "controller", 10, 10_240),
            s(60_000, "controller", 10, 11_264),
            s(120_000, "controller", 11, 9_000),
            s(0, "proxy soak/a", 20, 5_000),
        ];
        let t = trends(&samples);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].who, "controller (pid 10)");
        assert_eq!(
            (t[0].first_rss_kib, t[0].last_rss_kib, t[0].max_rss_kib),
            (10_240, 11_264, 11_264)
        );
        // 1 MiB in a minute: 60 MiB per hour.
        assert!((t[0].rss_mib_per_hour.unwrap() - 60.0).abs() < 1e-9);
        assert_eq!(t[1].rss_mib_per_hour, None);
        let report = json!({"kinds": {"http": {"ok": 10, "failed": {"reset": 2}, "windows": [
            {"startMs": 0, "ok": 10, "failed": {"reset": 2}, "p50Ms": 1.5, "p99Ms": 3.0}]}}});
        let md = markdown("Soak", &["rollout every 60 s".into()], &report, &[], &t);
        assert!(md.contains("| http | 12 | 10 | 2 | reset: 2 |"), "{md}");
        assert!(md.contains("| 0 | 10 | 2 | 1.50 | 3.00 |"), "{md}");
        assert!(
            md.contains("| controller (pid 10) | 2 | 10.0 | 11.0 | 11.0 | +60.00 MiB/h | - |"),
            "{md}"
        );
    }

    #[test]
    fn a_one_off_rise_shows_in_the_whole_slope_not_the_late_one() {
        // Flat, a 30 MiB rise at minute 2, flat again for 28 minutes.
        let samples: Vec<Sample> = (0..=30u64)
            .map(|minute| Sample {
                at_ms: minute * 60_000,
                who: "proxy soak/client".into(),
                pid: 7,
                rss_kib: if minute < 2 { 13 * 1024 } else { 43 * 1024 },
                fds: 40,
                threads: 2,
            })
            .collect();
        let t = &trends(&samples)[0];
        assert!(t.rss_mib_per_hour.unwrap() > 10.0, "{t:?}");
        assert_eq!(t.rss_mib_per_hour_late, Some(0.0), "{t:?}");
    }
}
