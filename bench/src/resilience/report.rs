//! The resilience report: both scenarios' tables and issue 13's targets.

use std::fmt::Write as _;

use super::Outcome;

/// The report: both tables and the targets.
pub fn markdown(outcome: &Outcome, context: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{context}\n");
    let _ = writeln!(
        md,
        "## Retries: one application failing every 10th request (503)\n"
    );
    let _ = writeln!(
        md,
        "| retry policy | rate | requests | succeeded | success | load on the app / client rate |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for r in &outcome.retries {
        let _ = writeln!(
            md,
            "| {} | {} rps | {} | {} | {:.3}% | {:.3}x |",
            if r.retries { "5xx, 2 retries" } else { "none" },
            r.rate,
            r.sent.requests,
            r.sent.ok,
            r.success_percent,
            r.load_ratio
        );
    }
    let e = &outcome.ejection;
    let _ = writeln!(
        md,
        "\n## Ejection: one of two endpoints starts answering 500 (consecutive5xx 3)\n\n\
         | rate | requests (good / bad endpoint) | failed (seen by the client) | start of failure to its first failed request | to its last request |\n\
         |---|---|---|---|---|\n| {} rps | {} ({} / {}) | {} | {:.1} ms | {:.1} ms |",
        e.rate,
        e.sent.requests,
        e.requests_good_bad.0,
        e.requests_good_bad.1,
        e.bad_endpoint_failures,
        e.first_failure_ms,
        e.reaction_ms
    );
    let on = outcome.retries.iter().find(|r| r.retries);
    let _ = writeln!(md, "\n## Targets (issue 13)\n");
    if let Some(on) = on {
        let _ = writeln!(
            md,
            "- success rate with retries above 99.9%: {:.3}% ({})",
            on.success_percent,
            met(on.success_percent > 99.9)
        );
        let _ = writeln!(
            md,
            "- extra load on the backend under 1.2x: {:.3}x ({})",
            on.load_ratio,
            met(on.load_ratio < 1.2)
        );
    }
    let _ = writeln!(
        md,
        "- ejection within 1 s at 100 rps: {:.1} ms ({})",
        e.reaction_ms,
        met(e.reaction_ms < 1000.0)
    );
    md
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "missed" }
}
