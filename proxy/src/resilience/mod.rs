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
#[derive(Debug)]
pub struct Kept<K, V> {
    values: Mutex<HashMap<K, Weak<V>>>,
}

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Self {
            values: Mutex::default(),
        }
    }
}

impl<K: Hash + Eq, V> Kept<K, V> {
    pub fn get_or(&self, key: K, make: impl FnOnce() -> V) -> Arc<V> {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = values.get(&key).and_then(Weak::upgrade) {
            return live;
        }
        values.retain(|_, v| v.strong_count() > 0);
        let value = Arc::new(make());
        values.insert(key, Arc::downgrade(&value));
        value
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
        drop(a);
        assert_eq!(*kept.get_or("a", || 3), 3, "made again once dropped");
    }
}
