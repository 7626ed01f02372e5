//! A retry budget per destination service, as Linkerd keeps one: retries
//! may add at most a ratio of the requests of the last few seconds, plus a
//! small floor per second so a quiet service can still retry. A failing
//! service then sees at most about 1.2 times its clients' rate, never the
//! `numRetries + 1` times a retry storm would send.

use std::time::Duration;

/// Retries allowed per request of the window.
pub const RETRY_RATIO: f64 = 0.2;
/// Retries always allowed per second of the window.
pub const MIN_RETRIES_PER_SECOND: u32 = 10;
/// How long a request or a retry counts.
pub const WINDOW_SECONDS: usize = 10;

/// Requests and retries per second, over the last [`WINDOW_SECONDS`].
#[derive(Debug, Default)]
pub struct RetryBudget {
    /// (second, requests, retries), indexed by second modulo the window.
    buckets: [(u64, u32, u32); WINDOW_SECONDS],
}

impl RetryBudget {
    fn bucket(&mut self, second: u64) -> &mut (u64, u32, u32) {
        let b = &mut self.buckets[(second % WINDOW_SECONDS as u64) as usize];
        if b.0 != second {
            *b = (second, 0, 0);
        }
        b
    }

    fn totals(&self, second: u64) -> (u64, u64) {
        let oldest = second.saturating_sub(WINDOW_SECONDS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.0 >= oldest && b.0 <= second)
            .fold((0, 0), |(r, t), b| (r + u64::from(b.1), t + u64::from(b.2)))
    }

    /// Counts a request (its first try) at `now` (since any fixed epoch).
    pub fn deposit(&mut self, now: Duration) {
        let b = self.bucket(now.as_secs());
        b.1 = b.1.saturating_add(1);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn withdraw(&mut self, now: Duration) -> bool {
        let second = now.as_secs();
        let (requests, retries) = self.totals(second);
        let allowed = (requests as f64 * RETRY_RATIO) as u64
            + u64::from(MIN_RETRIES_PER_SECOND) * WINDOW_SECONDS as u64;
        if retries >= allowed {
            return false;
        }
        let b = self.bucket(second);
        b.2 = b.2.saturating_add(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn retries_are_bounded_by_the_ratio_plus_the_floor() {
        let mut budget = RetryBudget::default();
        // 1,000 requests in one second: 200 retries by ratio, 100 by floor.
        for _ in 0..1000 {
            budget.deposit(at(5));
        }
        let granted = (0..1000).filter(|_| budget.withdraw(at(5))).count();
        assert_eq!(granted, 300);
        assert!(!budget.withdraw(at(5)));
    }

    #[test]
    fn a_quiet_service_gets_the_floor_and_old_seconds_expire() {
        let mut budget = RetryBudget::default();
        let floor = (MIN_RETRIES_PER_SECOND as usize) * WINDOW_SECONDS;
        assert_eq!((0..1000).filter(|_| budget.withdraw(at(1))).count(), floor);
        // Still spent within the window...
        assert!(!budget.withdraw(at(1 + WINDOW_SECONDS as u64 - 1)));
        // ...and free again once those retries are older than the window.
        assert!(budget.withdraw(at(1 + WINDOW_SECONDS as u64)));
    }

    #[test]
    fn steady_failure_keeps_retries_near_a_fifth_of_requests() {
        let mut budget = RetryBudget::default();
        let (mut requests, mut retries) = (0u64, 0u64);
        // 500 requests a second for a minute, each wanting 3 retries.
        for second in 0..60 {
            for _ in 0..500 {
                budget.deposit(at(second));
                requests += 1;
                for _ in 0..3 {
                    if budget.withdraw(at(second)) {
                        retries += 1;
                    }
                }
            }
        }
        let load = (requests + retries) as f64 / requests as f64;
        assert!(load <= 1.2 + 10.0 / 500.0 + 0.01, "{load}");
        assert!(load >= 1.19, "the budget is used: {load}");
    }
}
