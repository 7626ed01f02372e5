//! How the issuer is doing, for `osm ca status` and the metrics: an
//! external PKI (Vault, cert-manager) can be down while the mesh runs on
//! the certificates it holds, and that must be visible before they expire.

use std::{
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

/// The issuer's last outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerReport {
    /// `tresor`, `vault` or `cert-manager`.
    pub kind: String,
    /// Why the last request failed; empty when it did not.
    pub last_error: String,
    /// Failed requests since the last success.
    pub consecutive_failures: u64,
    /// Unix seconds of the first failure in a row (0: none).
    pub failing_since: u64,
    /// Unix seconds of the last certificate issued (0: none yet).
    pub last_issued: u64,
}

/// Shared by the identity service (which records) and the admin endpoint
/// (which reports).
#[derive(Debug, Default)]
pub struct IssuerHealth {
    report: Mutex<IssuerReport>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl IssuerHealth {
    pub fn new(kind: &str) -> Self {
        Self {
            report: Mutex::new(IssuerReport {
                kind: kind.into(),
                ..IssuerReport::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IssuerReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn issued(&self) {
        let mut report = self.lock();
        report.last_error.clear();
        report.consecutive_failures = 0;
        report.failing_since = 0;
        report.last_issued = now();
    }

    /// The issuer failed (not a refusal of the caller: a bad CSR or a
    /// wrong identity says nothing about the issuer).
    pub fn failed(&self, error: &str) {
        let mut report = self.lock();
        if report.consecutive_failures == 0 {
            report.failing_since = now();
        }
        report.consecutive_failures += 1;
        report.last_error = error.to_string();
    }

    pub fn report(&self) -> IssuerReport {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_are_counted_until_a_success() {
        let health = IssuerHealth::new("vault");
        health.failed("connection refused");
        health.failed("503");
        let down = health.report();
        assert_eq!(
            (
                down.kind.as_str(),
                down.last_error.as_str(),
                down.consecutive_failures
            ),
            ("vault", "503", 2)
        );
        assert!(down.failing_since > 0);
        health.issued();
        let up = health.report();
        assert_eq!((up.consecutive_failures, up.failing_since), (0, 0));
        assert!(up.last_error.is_empty() && up.last_issued > 0);
    }
}
