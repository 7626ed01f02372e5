//! When a ready pod counts as available to the workload controllers (a
//! rolling update removes old pods only once new ones are available): a
//! moment after its readiness was written to the store, so the mesh's
//! controller (which reads the store every 200 ms) has put it in its
//! Services' endpoints before the pods it replaces leave them. Kubernetes
//! has `minReadySeconds` for the same gap; local mode keeps a floor.
//!
//! And only while the controller is up and has been for a moment: while
//! it is away, proxies keep their last endpoints, so a rollout that went
//! on would remove pods they still send to, and add pods they do not know.
//! The controller counts as settled [`SETTLED_AFTER`] after the daemon
//! first finds a newly started controller ready: every proxy reconnects
//! within a second and gets its config afresh.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::store::Key;

/// How long after its readiness was written a pod is available.
pub const AVAILABLE_AFTER: Duration = Duration::from_secs(1);
/// How long after the controller is found ready its proxies are back
/// (their reconnect back-off is capped at 1 s) with their configs.
pub const SETTLED_AFTER: Duration = Duration::from_secs(2);

/// Since when each pod's written status has said ready, and since when
/// the controller has been up.
#[derive(Debug, Default)]
pub struct Availability {
    since: HashMap<Key, Instant>,
    controller_up_since: Option<Instant>,
}

/// Since when the controller has been up (pure): None while its process is
/// not running (`started` None) or not ready; else the earlier observation
/// if it was of this same process (made after it started), or `now`.
pub fn controller_up_since(
    started: Option<Instant>,
    ready: bool,
    previous: Option<Instant>,
    now: Instant,
) -> Option<Instant> {
    let started = started?;
    if !ready {
        return None;
    }
    match previous {
        Some(seen) if seen >= started => Some(seen),
        _ => Some(now),
    }
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

    /// Notes what the daemon saw of the controller at `now`: when its
    /// running process started (None: not running) and whether it is ready.
    pub fn controller(&mut self, started: Option<Instant>, ready: bool, now: Instant) {
        self.controller_up_since =
            controller_up_since(started, ready, self.controller_up_since, now);
    }

    /// Whether the pod has been ready in the store long enough at `now`,
    /// with the controller settled.
    pub fn available(&self, key: &Key, now: Instant) -> bool {
        let settled = self
            .controller_up_since
            .is_some_and(|t| now.saturating_duration_since(t) >= SETTLED_AFTER);
        settled
            && self
                .since
                .get(key)
                .is_some_and(|t| now.saturating_duration_since(*t) >= AVAILABLE_AFTER)
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
        a.controller(Some(t0), true, t0 - SETTLED_AFTER);
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

    #[test]
    fn the_controller_is_up_since_this_process_was_first_found_ready() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // (process started, ready, previously up since, now, up since)
        let table = [
            (None, false, None, t0, None),
            (None, true, Some(t0), t0 + s(1), None),
            (Some(t0), false, None, t0 + s(1), None),
            (Some(t0), true, None, t0 + s(1), Some(t0 + s(1))),
            (Some(t0), true, Some(t0 + s(1)), t0 + s(5), Some(t0 + s(1))),
            // Killed and started again between two looks: counts afresh.
            (
                Some(t0 + s(3)),
                true,
                Some(t0 + s(1)),
                t0 + s(4),
                Some(t0 + s(4)),
            ),
            (Some(t0 + s(3)), false, Some(t0 + s(1)), t0 + s(4), None),
        ];
        for (i, (started, ready, previous, now, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                controller_up_since(started, ready, previous, now),
                expected,
                "row {i}"
            );
        }
    }

    #[test]
    fn no_pod_is_available_while_the_controller_is_away_or_just_back() {
        let key = Key::new("Pod", "ns", "web-2");
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut a = Availability::default();
        a.written(&key, true, t0);
        // Never seen up.
        assert!(!a.available(&key, t0 + s(5)));
        a.controller(Some(t0), true, t0 + s(5));
        assert!(!a.available(&key, t0 + s(6)), "back 1 s ago");
        assert!(a.available(&key, t0 + s(7)));
        // Killed: nothing is available until it is back and settled.
        a.controller(None, false, t0 + s(8));
        assert!(!a.available(&key, t0 + s(8)));
        a.controller(Some(t0 + s(9)), true, t0 + s(9));
        assert!(!a.available(&key, t0 + s(10)));
        assert!(a.available(&key, t0 + s(11)));
    }
}
