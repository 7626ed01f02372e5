//! Outlier detection: an endpoint that fails `consecutive5xx` times in a
//! row (5xx answers, connection failures, resets) leaves load balancing for
//! `baseEjectionTime` times its number of ejections, then comes back on
//! its own; never more than `maxEjectionPercent` of a service's endpoints
//! at once (one may always go). The ejection count drops by one for every
//! `interval` an endpoint stays healthy after it returns, so an endpoint
//! that recovered is not punished for old failures forever.
//!
//! The decisions are [`observe`], a pure function over [`Health`]; an
//! endpoint keeps its `Health` behind a lock touched only when detection is
//! configured, and its ejection deadline in an atomic the balancer reads.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use osm_api::v1;

/// A service's detection settings, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierRule {
    pub consecutive_5xx: u32,
    pub interval: Duration,
    pub base_ejection: Duration,
    pub max_ejection_percent: u32,
}

impl OutlierRule {
    /// None when detection is off (no setting, or `consecutive5xx` 0).
    pub fn from_config(c: &v1::OutlierDetection) -> Result<Option<Self>, String> {
        if c.consecutive_5xx == 0 {
            return Ok(None);
        }
        if c.max_ejection_percent > 100 {
            return Err(format!(
                "maxEjectionPercent {} is more than 100",
                c.max_ejection_percent
            ));
        }
        let ms = |v: u32, default: u64| {
            Duration::from_millis(if v == 0 { default } else { u64::from(v) })
        };
        Ok(Some(OutlierRule {
            consecutive_5xx: c.consecutive_5xx,
            interval: ms(c.interval_ms, 10_000),
            base_ejection: ms(c.base_ejection_time_ms, 30_000),
            max_ejection_percent: if c.max_ejection_percent == 0 {
                10
            } else {
                c.max_ejection_percent
            },
        }))
    }

    /// How many of `total` endpoints may be ejected at once (at least one).
    pub fn max_ejected(&self, total: usize) -> usize {
        (total * self.max_ejection_percent as usize / 100).max(1)
    }
}

/// What detection knows of one endpoint. Times are since a fixed epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub consecutive_failures: u32,
    pub ejections: u32,
    /// Ejected until then (in the past once it is back).
    pub ejected_until: Option<Duration>,
    /// When the ejection count last dropped or the endpoint came back.
    pub healthy_since: Duration,
}

/// Records one result; `Some(until)` when it ejects the endpoint.
/// `may_eject` says whether the service's ejection limit leaves room; it
/// is asked only when a failure would eject (it scans the service's
/// endpoints, which no other request should pay for).
pub fn observe(
    rule: &OutlierRule,
    health: &mut Health,
    failed: bool,
    now: Duration,
    may_eject: impl FnOnce() -> bool,
) -> Option<Duration> {
    if let Some(until) = health.ejected_until {
        if now < until {
            // A try sent before the ejection: it says nothing new.
            return None;
        }
        health.ejected_until = None;
        health.healthy_since = until;
    }
    if !failed {
        health.consecutive_failures = 0;
        if health.ejections > 0 && !rule.interval.is_zero() {
            let healthy_for = now.saturating_sub(health.healthy_since);
            let intervals = (healthy_for.as_nanos() / rule.interval.as_nanos()) as u32;
            if intervals > 0 {
                health.ejections = health.ejections.saturating_sub(intervals);
                health.healthy_since = now;
            }
        }
        return None;
    }
    health.consecutive_failures = health.consecutive_failures.saturating_add(1);
    if health.consecutive_failures < rule.consecutive_5xx || !may_eject() {
        return None;
    }
    health.consecutive_failures = 0;
    health.ejections = health.ejections.saturating_add(1);
    let until = now + rule.base_ejection.saturating_mul(health.ejections);
    health.ejected_until = Some(until);
    Some(until)
}

/// An endpoint's detection state.
#[derive(Debug, Default)]
pub struct EndpointHealth {
    /// Nanoseconds since the process epoch until which it is ejected; 0
    /// when it is not.
    ejected_until_ns: AtomicU64,
    health: Mutex<Health>,
}

impl EndpointHealth {
    /// Whether the balancer should pass this endpoint over at `now`.
    pub fn is_ejected(&self, now: Duration) -> bool {
        let until = self.ejected_until_ns.load(Ordering::Relaxed);
        until != 0 && (now.as_nanos() as u64) < until
    }

    /// Records a try's result; true when it ejected the endpoint.
    pub fn record(
        &self,
        rule: &OutlierRule,
        failed: bool,
        now: Duration,
        may_eject: impl FnOnce() -> bool,
    ) -> bool {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match observe(rule, &mut health, failed, now, may_eject) {
            Some(until) => {
                self.ejected_until_ns
                    .store(until.as_nanos() as u64, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    pub fn ejections(&self) -> u32 {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ejections
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> OutlierRule {
        OutlierRule::from_config(&v1::OutlierDetection {
            consecutive_5xx: 3,
            interval_ms: 1000,
            base_ejection_time_ms: 500,
            max_ejection_percent: 50,
        })
        .unwrap()
        .unwrap()
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn consecutive_failures_eject_for_longer_each_time_and_successes_reset() {
        let rule = rule();
        let mut h = Health::default();
        // (failed, at ms, ejected until ms)
        let steps: &[(bool, u64, Option<u64>)] = &[
            (true, 0, None),
            (true, 10, None),
            (false, 20, None), // a success breaks the run
            (true, 30, None),
            (true, 40, None),
            (true, 50, Some(550)), // third in a row: 1 x 500 ms
            (true, 100, None),     // in flight before the ejection
            (true, 600, None),     // back; a new run starts
            (true, 610, None),
            (true, 620, Some(1620)), // second ejection: 2 x 500 ms
        ];
        for (failed, at, ejected) in steps {
            let got = observe(&rule, &mut h, *failed, ms(*at), || true);
            assert_eq!(got, ejected.map(ms), "at {at} ms");
        }
        assert_eq!(h.ejections, 2);
    }

    #[test]
    fn the_ejection_count_decays_while_healthy_and_the_limit_holds() {
        let rule = rule();
        let mut h = Health {
            ejections: 2,
            ejected_until: Some(ms(1000)),
            ..Default::default()
        };
        observe(&rule, &mut h, false, ms(1500), || true);
        assert_eq!(h.ejections, 2, "half an interval healthy");
        observe(&rule, &mut h, false, ms(3100), || true);
        assert_eq!(h.ejections, 0, "two intervals healthy");
        // No room under maxEjectionPercent: counted, not ejected.
        for at in 0..5 {
            assert_eq!(observe(&rule, &mut h, true, ms(4000 + at), || false), None);
        }
        assert_eq!(rule.max_ejected(2), 1);
        assert_eq!(rule.max_ejected(10), 5);
        assert_eq!(rule.max_ejected(1), 1, "one may always go");
    }

    #[test]
    fn settings_take_defaults_and_refuse_nonsense() {
        let off = OutlierRule::from_config(&v1::OutlierDetection::default()).unwrap();
        assert_eq!(off, None);
        let defaults = OutlierRule::from_config(&v1::OutlierDetection {
            consecutive_5xx: 5,
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(defaults.base_ejection, Duration::from_secs(30));
        assert_eq!(defaults.interval, Duration::from_secs(10));
        assert_eq!(defaults.max_ejection_percent, 10);
        let err = OutlierRule::from_config(&v1::OutlierDetection {
            consecutive_5xx: 5,
            max_ejection_percent: 101,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err, "maxEjectionPercent 101 is more than 100");
    }

    #[test]
    fn the_shared_state_reports_ejection_to_the_balancer() {
        let rule = rule();
        let e = EndpointHealth::default();
        assert!(!e.is_ejected(ms(0)));
        for at in 0..3 {
            e.record(&rule, true, ms(at), || true);
        }
        assert!(e.is_ejected(ms(3)));
        assert!(e.is_ejected(ms(501)));
        assert!(!e.is_ejected(ms(503)));
        assert_eq!(e.ejections(), 1);
    }
}
