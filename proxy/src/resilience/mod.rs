//! What the client-side proxy does when upstreams fail or overload:
//! retries within a budget ([`retry`], [`budget`]), circuit breaking
//! ([`breaker`]), and outlier detection ([`outlier`]). The decisions are
//! pure functions and small state machines; the request path in
//! `outbound::attempts` drives them.
//!
//! Their state (counters, budgets, ejections) must outlive a config
//! change that does not touch it, so it is handed out by [`Kept`], keyed
//! by what it belongs to and the settings it was made with.

pub mod breaker;
pub mod budget;
pub mod outlier;
pub mod retry;

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::{Duration, Instant},
};

/// Time since the process started: the clock budgets and ejections use.
pub fn now() -> Duration {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed()
}

/// Values kept across configs while any config refers to them: the same
/// key gets the same live value. Only touched when a config is built.
///
/// Entries no config refers to any more are swept when the map has grown
/// to twice its size after the last sweep, not on every miss: a config of
/// N new values costs O(N), not O(N^2) (sweeping on every miss made a
/// proxy with 10,000 services spend seconds building its config).
#[derive(Debug)]
pub struct Kept<K, V> {
    values: Mutex<Swept<K, V>>,
}

#[derive(Debug)]
struct Swept<K, V> {
    map: HashMap<K, Weak<V>>,
    /// The map's size after the last sweep.
    live_after_sweep: usize,
}

/// The smallest size a sweep waits for.
const SWEEP_FLOOR: usize = 64;

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Self {
            values: Mutex::new(Swept {
                map: HashMap::new(),
                live_after_sweep: 0,
            }),
        }
    }
}

impl<K: Hash + Eq, V> Kept<K, V> {
    pub fn get_or(&self, key: K, make: impl FnOnce() -> V) -> Arc<V> {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = values.map.get(&key).and_then(Weak::upgrade) {
            return live;
        }
        if values.map.len() >= (2 * values.live_after_sweep).max(SWEEP_FLOOR) {
            values.map.retain(|_, v| v.strong_count() > 0);
            values.live_after_sweep = values.map.len();
        }
        let value = Arc::new(make());
        values.map.insert(key, Arc::downgrade(&value));
        value
    }

    /// The values some config still refers to.
    pub fn live(&self) -> Vec<Arc<V>> {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values.map.values().filter_map(Weak::upgrade).collect()
    }

    /// How many entries the map holds (live or waiting for a sweep).
    pub fn len(&self) -> usize {
        self.values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_lives_while_referred_to() {
        let kept: Kept<&str, u32> = Kept::default();
        let a = kept.get_or("a", || 1);
        assert!(Arc::ptr_eq(&a, &kept.get_or("a", || 2)));
        assert_eq!(kept.live().len(), 1);
        drop(a);
        assert!(kept.live().is_empty());
        assert_eq!(*kept.get_or("a", || 3), 3, "made again once dropped");
    }

    #[test]
    fn dead_entries_are_swept_and_bounded_by_the_live_ones() {
        let kept: Kept<u32, u32> = Kept::default();
        let live: Vec<_> = (0..1000).map(|i| kept.get_or(i, || i)).collect();
        // Values nobody holds: the map never keeps more than about twice
        // the live ones (plus the floor).
        for i in 1000..20_000 {
            drop(kept.get_or(i, || i));
            assert!(
                kept.len() <= 2 * 1000 + SWEEP_FLOOR + 1,
                "{} at {i}",
                kept.len()
            );
        }
        for (i, v) in live.iter().enumerate() {
            assert!(
                Arc::ptr_eq(v, &kept.get_or(i as u32, || 0)),
                "live {i} kept"
            );
        }
    }
}
