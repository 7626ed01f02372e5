//! Local rate limits (UpstreamTrafficSetting), lock-free.
//!
//! A token bucket of `tokens` per interval holding up to `tokens + burst`,
//! implemented as GCRA: one atomic "theoretical arrival time". A request is
//! admitted when that time is not further ahead of now than the bucket
//! allows, and pushes it one emission interval further.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

/// One token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    epoch: Instant,
    /// Nanoseconds between tokens.
    emission_ns: u64,
    /// How far ahead of now the arrival time may run: (capacity - 1) tokens.
    tolerance_ns: u64,
    tat_ns: AtomicU64,
}

impl RateLimiter {
    /// None when the bucket admits nothing to limit (no tokens or interval).
    pub fn new(spec: &osm_api::v1::TokenBucket) -> Option<Self> {
        if spec.tokens == 0 || spec.interval_ms == 0 {
            return None;
        }
        let emission_ns = u64::from(spec.interval_ms) * 1_000_000 / u64::from(spec.tokens);
        let capacity = u64::from(spec.tokens) + u64::from(spec.burst);
        Some(Self {
            epoch: Instant::now(),
            emission_ns: emission_ns.max(1),
            tolerance_ns: emission_ns.saturating_mul(capacity.saturating_sub(1)),
            tat_ns: AtomicU64::new(0),
        })
    }

    /// Takes a token if one is available.
    pub fn try_acquire(&self) -> bool {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > self.tolerance_ns {
                return false;
            }
            match self.tat_ns.compare_exchange_weak(
                tat,
                start + self.emission_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osm_api::v1::TokenBucket;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn admits_the_bucket_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(&TokenBucket {
            tokens: 10,
            interval_ms: 1000,
            burst: 5,
        })
        .expect("limits");
        let admitted = (0..100).filter(|_| limiter.try_acquire()).count();
        assert_eq!(admitted, 15, "tokens + burst at once");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(limiter.try_acquire(), "one token per 100 ms");
        assert!(!limiter.try_acquire());
        tokio::time::advance(Duration::from_secs(10)).await;
        let admitted = (0..100).filter(|_| limiter.try_acquire()).count();
        assert_eq!(admitted, 15, "a full bucket again, never more");
    }

    #[test]
    fn empty_specs_limit_nothing() {
        assert!(
            RateLimiter::new(&TokenBucket {
                tokens: 0,
                interval_ms: 1000,
                burst: 0
            })
            .is_none()
        );
        assert!(
            RateLimiter::new(&TokenBucket {
                tokens: 1,
                interval_ms: 0,
                burst: 0
            })
            .is_none()
        );
    }
}
