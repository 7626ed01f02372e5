//! Reconnection delays: exponential with full jitter, so proxies that lost
//! the controller together do not come back together.

use std::time::Duration;

/// Delays between attempts: attempt n waits a random time in
/// `[0, min(cap, base * 2^n)]`, never less than `floor`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    floor: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            floor: base / 4,
            attempt: 0,
        }
    }

    /// The ceiling of the next delay (before jitter).
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(16)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay, given a random fraction in [0, 1).
    pub fn next_with(&mut self, fraction: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(fraction.clamp(0.0, 1.0)).max(self.floor)
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        self.next_with(fastrand::f64())
    }

    /// After a success: start from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_stay_jittered_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let ceilings: Vec<u128> = (0..7)
            .map(|_| {
                let c = b.ceiling().as_millis();
                b.next_with(0.5);
                c
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.next_with(0.5), Duration::from_secs(1), "half the cap");
        assert_eq!(
            b.next_with(0.0),
            Duration::from_millis(25),
            "never below the floor"
        );
        assert!(b.next_with(0.999) < Duration::from_secs(2));
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }
}
