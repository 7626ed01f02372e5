//! When a ready pod counts as available to the workload controllers (a
//! rolling update removes old pods only once new ones are available): a
//! moment after its readiness was written to the store, so the mesh's
//! controller (which reads the store every 200 ms) has put it in its
//! Services' endpoints before the pods it replaces leave them. Kubernetes
//! has `minReadySeconds` for the same gap; local mode keeps a floor.
//!
//! And only while the controller is up and has been for a moment, with
//! every running proxy connected to it and caught up with what it was
//! sent: while the controller is away, or a proxy has not reconnected,
//! proxies keep their last endpoints, so a rollout that went on would
//! remove pods they still send to. The controller counts as settled
//! [`SETTLED_AFTER`] after the daemon first finds a newly started one
//! ready; a proxy that does not catch up holds a pod back at most
//! [`CATCH_UP_LIMIT`] (one broken proxy does not stop every rollout).

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::store::{Key, Stored};

/// How long after its readiness was written a pod is available.
pub const AVAILABLE_AFTER: Duration = Duration::from_secs(1);
/// How long after the controller is found ready its proxies are back
/// (their reconnect back-off is capped at 1 s) with their configs.
pub const SETTLED_AFTER: Duration = Duration::from_secs(2);
/// How long a ready pod waits, at most, for proxies to catch up.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(15);
/// The sidecar's container name (a native sidecar: an init container).
const PROXY_CONTAINER: &str = "osm-proxy";

/// Since when each pod's written status has said ready, and since when
/// the controller has been up.
#[derive(Debug, Default)]
pub struct Availability {
    since: HashMap<Key, Instant>,
    controller_up_since: Option<Instant>,
    /// Pods (`namespace/name`) whose proxy is connected to the controller
    /// and acknowledged the last config it was sent; None: not known.
    synced: Option<BTreeSet<String>>,
}

/// The pods whose proxy runs and is ready, not being deleted
/// (`namespace/name`; pure): those the controller must have caught up.
pub fn meshed_pods(objects: &[Stored]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|s| s.key.kind == "Pod")
        .filter(|s| s.value.pointer("/metadata/deletionTimestamp").is_none())
        .filter(|s| {
            ["initContainerStatuses", "containerStatuses"]
                .iter()
                .filter_map(|list| s.value["status"][list].as_array())
                .flatten()
                .any(|c| c["name"] == PROXY_CONTAINER && c["ready"] == true)
        })
        .map(|s| format!("{}/{}", s.key.namespace, s.key.name))
        .collect()
}

/// The pods whose proxy acknowledged the last config sent to it, from the
/// controller's `/debug/proxies` (pure); None when it cannot be read.
pub fn synced_pods(debug_proxies: &[u8]) -> Option<BTreeSet<String>> {
    let list: Vec<Value> = serde_json::from_slice(debug_proxies).ok()?;
    Some(
        list.iter()
            .filter(|p| {
                let sent = p["sentVersion"].as_str().unwrap_or("");
                !sent.is_empty() && p["ackedVersion"].as_str() == Some(sent)
            })
            .filter_map(|p| {
                Some(format!(
                    "{}/{}",
                    p["namespace"].as_str()?,
                    p["pod"].as_str()?
                ))
            })
            .collect(),
    )
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
    /// running process started (None: not running), whether it is ready,
    /// and which pods' proxies are caught up with it.
    pub fn controller(
        &mut self,
        started: Option<Instant>,
        ready: bool,
        synced: Option<BTreeSet<String>>,
        now: Instant,
    ) {
        self.controller_up_since =
            controller_up_since(started, ready, self.controller_up_since, now);
        self.synced = synced.filter(|_| self.controller_up_since.is_some());
    }

    /// Whether every pod of `meshed` has its proxy caught up.
    pub fn proxies_caught_up(&self, meshed: &BTreeSet<String>) -> bool {
        self.synced
            .as_ref()
            .is_some_and(|synced| meshed.is_subset(synced))
    }

    /// Whether the pod has been ready in the store long enough at `now`,
    /// with the controller settled and the proxies `caught_up` (or the
    /// pod ready so long that it goes on without them).
    pub fn available(&self, key: &Key, now: Instant, caught_up: bool) -> bool {
        let settled = self
            .controller_up_since
            .is_some_and(|t| now.saturating_duration_since(t) >= SETTLED_AFTER);
        let ready_for = self
            .since
            .get(key)
            .map(|t| now.saturating_duration_since(*t));
        settled
            && ready_for.is_some_and(|d| d >= AVAILABLE_AFTER && (caught_up || d >= CATCH_UP_LIMIT))
    }
}

#[cfg(test)]
#[path = "availability_tests.rs"]
mod tests;
