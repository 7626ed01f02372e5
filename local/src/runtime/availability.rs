//! When a ready pod counts as available to the workload controllers (a
//! rolling update removes old pods only once new ones are available): a
//! moment after its readiness was written to the store, so the mesh's
//! controller (which reads the store every 200 ms) has put it in its
//! Services' endpoints before the pods it replaces leave them. Kubernetes
//! has `minReadySeconds` for the same gap; local mode keeps a floor.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::store::Key;

/// How long after its readiness was written a pod is available.
pub const AVAILABLE_AFTER: Duration = Duration::from_secs(1);

/// Since when each pod's written status has said ready.
#[derive(Debug, Default)]
pub struct Availability {
    since: HashMap<Key, Instant>,
}

impl Availability {
    /// Notes a pod's written readiness at `now`.
    pub fn written(&mut self, key: &Key, ready: bool, now: Instant) {
        if ready {
            self.since.entry(key.clone()).or_insert(now);
        } else {
            self.since.remove(key);
        }
    }

    pub fn forget(&mut self, key: &Key) {
        self.since.remove(key);
    }

    /// Whether the pod has been ready in the store long enough at `now`.
    pub fn available(&self, key: &Key, now: Instant) -> bool {
        self.since
            .get(key)
            .is_some_and(|t| now.duration_since(*t) >= AVAILABLE_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_available_a_moment_after_its_readiness_is_written() {
        let key = Key::new("Pod", "ns", "web-1");
        let t0 = Instant::now();
        let mut a = Availability::default();
        assert!(!a.available(&key, t0));
        a.written(&key, true, t0);
        assert!(!a.available(&key, t0 + Duration::from_millis(500)));
        // Written ready again: the first time counts.
        a.written(&key, true, t0 + Duration::from_millis(600));
        assert!(a.available(&key, t0 + AVAILABLE_AFTER));
        a.written(&key, false, t0 + Duration::from_secs(2));
        assert!(!a.available(&key, t0 + Duration::from_secs(3)));
        a.written(&key, true, t0 + Duration::from_secs(3));
        a.forget(&key);
        assert!(!a.available(&key, t0 + Duration::from_secs(9)));
    }
}
