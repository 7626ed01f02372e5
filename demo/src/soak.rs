//! The soak client's bookkeeping (pure): each request's outcome by cause,
//! counted in 10-second windows with their latency percentiles, and the
//! first failures kept with their time, for the soak harness
//! (`osm-bench soak`) to line up with what it was doing then.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Why a request or a TCP exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// An HTTP answer that is not 2xx.
    Status(u16),
    /// The connection was reset or closed before the answer.
    Reset,
    /// No connection could be made.
    Connect,
    /// No answer in time.
    Timeout,
    /// A TCP exchange that got the wrong bytes back.
    Garbled,
    /// Too many requests in flight: the load generator dropped one.
    Overload,
}

impl Cause {
    pub fn name(&self) -> String {
        match self {
            Cause::Status(code) => format!("status {code}"),
            Cause::Reset => "reset".into(),
            Cause::Connect => "connect error".into(),
            Cause::Timeout => "timeout".into(),
            Cause::Garbled => "garbled".into(),
            Cause::Overload => "overload".into(),
        }
    }
}

/// A transport error's cause from its message chain (hyper and the OS
/// word them; pure so the wording is tested).
pub fn classify_error(message: &str) -> Cause {
    let m = message.to_ascii_lowercase();
    if m.contains("timed out") || m.contains("timeout") {
        Cause::Timeout
    } else if m.contains("connect error")
        || m.contains("(connect)")
        || m.contains("connection refused")
        || m.contains("no route to host")
    {
        Cause::Connect
    } else {
        Cause::Reset
    }
}

/// Counts of one traffic kind in one window.
#[derive(Debug, Clone, Default)]
struct Window {
    ok: u64,
    failed: BTreeMap<Cause, u64>,
    /// Latencies of successful requests, microseconds.
    latencies: Vec<u32>,
}

/// A failure worth showing on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub at_ms: u64,
    pub kind: &'static str,
    pub cause: Cause,
    pub detail: String,
}

/// Outcomes of the whole run, by traffic kind (`http`, `tcp`).
#[derive(Debug, Default)]
pub struct Tally {
    window_ms: u64,
    kinds: BTreeMap<&'static str, Vec<Window>>,
    failures: Vec<Failure>,
}

/// How many failures are kept with their detail.
const KEPT_FAILURES: usize = 2000;

impl Tally {
    pub fn new(window_ms: u64) -> Self {
        Self {
            window_ms: window_ms.max(1),
            ..Self::default()
        }
    }

    fn window(&mut self, kind: &'static str, at_ms: u64) -> &mut Window {
        let windows = self.kinds.entry(kind).or_default();
        let index = usize::try_from(at_ms / self.window_ms).unwrap_or(usize::MAX);
        if windows.len() <= index {
            windows.resize_with(index + 1, Window::default);
        }
        &mut windows[index]
    }

    pub fn ok(&mut self, kind: &'static str, at_ms: u64, latency_us: u32) {
        let w = self.window(kind, at_ms);
        w.ok += 1;
        w.latencies.push(latency_us);
    }

    pub fn failed(&mut self, kind: &'static str, at_ms: u64, cause: Cause, detail: String) {
        *self
            .window(kind, at_ms)
            .failed
            .entry(cause.clone())
            .or_default() += 1;
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(Failure {
                at_ms,
                kind,
                cause,
                detail,
            });
        }
    }

    /// The report the harness reads (`GET /report`).
    pub fn report(&self) -> Value {
        let mut kinds = serde_json::Map::new();
        for (kind, windows) in &self.kinds {
            let mut total_ok = 0;
            let mut total_failed: BTreeMap<String, u64> = BTreeMap::new();
            let rows: Vec<Value> = windows
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    total_ok += w.ok;
                    let mut failed = serde_json::Map::new();
                    for (cause, n) in &w.failed {
                        *total_failed.entry(cause.name()).or_default() += n;
                        failed.insert(cause.name(), json!(n));
                    }
                    let mut sorted = w.latencies.clone();
                    sorted.sort_unstable();
                    json!({
                        "startMs": i as u64 * self.window_ms,
                        "ok": w.ok,
                        "failed": failed,
                        "p50Ms": percentile(&sorted, 0.50),
                        "p99Ms": percentile(&sorted, 0.99),
                    })
                })
                .collect();
            kinds.insert(
                (*kind).to_string(),
                json!({"ok": total_ok, "failed": total_failed, "windows": rows}),
            );
        }
        json!({
            "windowMs": self.window_ms,
            "kinds": kinds,
            "failures": self.failures.iter().map(|f| json!({
                "atMs": f.at_ms, "kind": f.kind, "cause": f.cause.name(), "detail": f.detail,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The `q` quantile of sorted microseconds, in milliseconds (nearest
/// rank); null for none.
pub fn percentile(sorted: &[u32], q: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    json!(f64::from(sorted[rank - 1]) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_are_named_by_cause() {
        let cases = [
            (
                "client error (Connect): tcp connect error: Connection refused (os error 111)",
                Cause::Connect,
            ),
            (
                "connection error: Connection reset by peer (os error 104)",
                Cause::Reset,
            ),
            ("connection closed before message completed", Cause::Reset),
            ("request timed out", Cause::Timeout),
        ];
        for (message, cause) in cases {
            assert_eq!(classify_error(message), cause, "{message}");
        }
    }

    #[test]
    fn outcomes_are_counted_by_window_and_cause() {
        let mut t = Tally::new(10_000);
        for i in 0..100u32 {
            t.ok("http", 1_000, (i + 1) * 1000);
        }
        t.failed("http", 12_000, Cause::Status(503), "503".into());
        t.failed("http", 12_500, Cause::Reset, "reset".into());
        t.failed("tcp", 25_000, Cause::Timeout, "no PONG".into());
        let r = t.report();
        let http = &r["kinds"]["http"];
        assert_eq!(http["ok"], 100);
        assert_eq!(http["failed"]["status 503"], 1);
        assert_eq!(http["failed"]["reset"], 1);
        assert_eq!(http["windows"][0]["p50Ms"], 50.0);
        assert_eq!(http["windows"][0]["p99Ms"], 99.0);
        assert_eq!(http["windows"][1]["startMs"], 10_000);
        assert_eq!(http["windows"][1]["p99Ms"], Value::Null);
        assert_eq!(r["kinds"]["tcp"]["windows"][2]["failed"]["timeout"], 1);
        assert_eq!(r["failures"].as_array().map(Vec::len), Some(3));
        assert_eq!(r["failures"][2]["atMs"], 25_000);
    }
}
