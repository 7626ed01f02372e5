//! Endpoint choice: power of two choices over a peak-EWMA of latency,
//! weighted by requests in flight (as Finagle and Linkerd do).
//!
//! The estimate decays with the time since its last observation (as
//! Finagle's does), and an endpoint never measured costs nothing until a
//! request is in flight to it: a new or long-idle endpoint is tried instead
//! of starving behind one that is merely measured faster (at low
//! concurrency the in-flight weight never rises enough to move traffic).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How fast old latency observations fade.
const DECAY: Duration = Duration::from_secs(10);
/// The latency assumed for an endpoint never measured.
const DEFAULT_RTT_NS: u64 = 1_000_000;

/// Load of one endpoint, updated without locks.
#[derive(Debug)]
pub struct Load {
    epoch: Instant,
    /// 0 until the first observation.
    ewma_ns: AtomicU64,
    stamp_ns: AtomicU64,
    in_flight: AtomicU32,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            ewma_ns: AtomicU64::new(0),
            stamp_ns: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
        }
    }
}

/// The cost P2C compares: the latency estimate decayed by the time since
/// it was observed, times the requests in flight plus one. Never measured:
/// the default latency times the requests in flight (0 when idle).
pub fn cost(ewma_ns: u64, since_observed_ns: u64, in_flight: u32) -> u64 {
    let pending = u64::from(in_flight);
    if ewma_ns == 0 {
        return DEFAULT_RTT_NS.saturating_mul(pending);
    }
    let w = (-(since_observed_ns as f64) / DECAY.as_nanos() as f64).exp();
    ((ewma_ns as f64 * w) as u64).saturating_mul(pending + 1)
}

/// Counts one request in flight until dropped, then records its latency.
pub struct InFlight<'a> {
    load: &'a Load,
    start: Instant,
}

impl Load {
    pub fn cost(&self) -> u64 {
        let now_ns = self.epoch.elapsed().as_nanos() as u64;
        let since = now_ns.saturating_sub(self.stamp_ns.load(Ordering::Relaxed));
        cost(
            self.ewma_ns.load(Ordering::Relaxed),
            since,
            self.in_flight.load(Ordering::Relaxed),
        )
    }

    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            load: self,
            start: Instant::now(),
        }
    }

    fn observe(&self, rtt: Duration) {
        let now_ns = self.epoch.elapsed().as_nanos() as u64;
        let rtt_ns = rtt.as_nanos() as u64;
        let last = self.stamp_ns.swap(now_ns, Ordering::Relaxed);
        let old = self.ewma_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            rtt_ns.max(1)
        } else {
            peak_ewma(old, rtt_ns, now_ns.saturating_sub(last))
        };
        // A racing update may win; either value is a fair estimate.
        self.ewma_ns.store(new, Ordering::Relaxed);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.load.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.load.observe(self.start.elapsed());
    }
}

/// Peak EWMA: a slower observation is taken at once; faster ones pull the
/// estimate down with a weight that grows with the time since the last one.
pub fn peak_ewma(old_ns: u64, rtt_ns: u64, elapsed_ns: u64) -> u64 {
    if rtt_ns >= old_ns {
        return rtt_ns;
    }
    let w = (-(elapsed_ns as f64) / DECAY.as_nanos() as f64).exp();
    (old_ns as f64 * w + rtt_ns as f64 * (1.0 - w)) as u64
}

/// Power of two choices: of two distinct random candidates, the cheaper,
/// unless their costs are within a factor of two: a tie, broken at
/// random. Strict P2C at low concurrency sends everything to whichever
/// endpoint measured a few microseconds faster (its estimate stays fresh,
/// the other's only decays), starving the rest; the band keeps what P2C is
/// for (avoiding endpoints clearly slower or busier) and spreads the load
/// over the others. `r1`, `r2` are uniform random numbers.
pub fn p2c(len: usize, r1: u64, r2: u64, cost: impl Fn(usize) -> u64) -> usize {
    match len {
        0 | 1 => 0,
        _ => {
            let a = (r1 % len as u64) as usize;
            // A second index distinct from the first.
            let b = (a + 1 + (r2 % (len as u64 - 1)) as usize) % len;
            let (ca, cb) = (cost(a), cost(b));
            let (low, high) = (ca.min(cb), ca.max(cb));
            let tie = (low == 0 && high == 0) || (low > 0 && high <= low.saturating_mul(2));
            if tie {
                if (r1 >> 40) & 1 == 0 { a } else { b }
            } else if cb < ca {
                b
            } else {
                a
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_within_a_factor_of_two_are_a_tie_broken_at_random() {
        let costs = [100u64, 150];
        let picks: Vec<usize> = (0..64u64)
            .map(|i| p2c(2, i << 40, 0, |k| costs[k]))
            .collect();
        let second = picks.iter().filter(|&&k| k == 1).count();
        assert!(second > 16 && second < 48, "{second} of 64");
        // Beyond the band the cheaper one always wins; idle-unmeasured (0)
        // beats anything measured.
        for i in 0..64u64 {
            assert_eq!(p2c(2, i << 40, 0, |k| [100u64, 201][k]), 0);
            assert_eq!(p2c(2, i << 40, 0, |k| [7u64, 0][k]), 1);
        }
    }

    #[test]
    fn p2c_prefers_the_cheaper_of_two_distinct_candidates() {
        let costs = [10u64, 1, 100];
        for r1 in 0..3 {
            for r2 in 0..2 {
                let chosen = p2c(3, r1, r2, |i| costs[i]);
                let a = (r1 % 3) as usize;
                let b = (a + 1 + (r2 % 2) as usize) % 3;
                assert_ne!(a, b);
                assert_eq!(chosen, if costs[b] < costs[a] { b } else { a });
            }
        }
        assert_eq!(p2c(1, 7, 9, |_| 0), 0);
    }

    #[test]
    fn p2c_never_picks_the_most_loaded_of_many() {
        let costs = [5u64, 5, 5, 1000];
        for r1 in 0..40 {
            for r2 in 0..40 {
                let chosen = p2c(4, r1, r2, |i| costs[i]);
                assert_ne!(chosen, 3, "r1={r1} r2={r2}");
            }
        }
    }

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        assert_eq!(peak_ewma(100, 500, 0), 500);
        let after_long = peak_ewma(1_000_000, 0, DECAY.as_nanos() as u64 * 10);
        assert!(after_long < 100, "{after_long}");
        let after_short = peak_ewma(1_000_000, 0, 1_000);
        assert!(after_short > 999_000, "{after_short}");
    }

    #[test]
    fn in_flight_requests_raise_the_cost() {
        let load = Load::default();
        assert_eq!(load.cost(), 0, "never measured, idle: tried first");
        let guard = load.start();
        assert_eq!(load.cost(), DEFAULT_RTT_NS, "one in flight");
        drop(guard);
        assert_eq!(load.in_flight.load(Ordering::Relaxed), 0);
        assert!(load.cost() > 0, "measured now");
    }

    #[test]
    fn the_cost_decays_while_unobserved() {
        let ms = 1_000_000;
        // (ewma, since observed, in flight) -> cost
        assert_eq!(cost(0, 0, 0), 0);
        assert_eq!(cost(0, 0, 3), 3 * DEFAULT_RTT_NS);
        assert_eq!(cost(2 * ms, 0, 0), 2 * ms);
        assert_eq!(cost(2 * ms, 0, 1), 4 * ms);
        let after_decay = cost(2 * ms, DECAY.as_nanos() as u64, 0);
        assert!((735_000..=736_000).contains(&after_decay), "{after_decay}");
        assert!(cost(2 * ms, 10 * DECAY.as_nanos() as u64, 0) < 100);
    }
}
