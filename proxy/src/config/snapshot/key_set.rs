//! A small sorted set of service keys, shared between snapshots until one
//! of them changes it. The indexes hold one per endpoint set and per pod
//! address, nearly all with one key: a persistent ordered set would
//! allocate a whole B-tree node (about 2 KB) for each.

use std::sync::Arc;

/// The keys themselves are shared with whoever holds them already (a
/// built service's key), not copied; a set of one key (nearly all of
/// them) is that key alone, more keys are one allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum KeySet {
    #[default]
    Empty,
    One(Arc<str>),
    Many(Arc<[Arc<str>]>),
}

impl KeySet {
    fn of(keys: Vec<Arc<str>>) -> Self {
        match <[Arc<str>; 1]>::try_from(keys) {
            Ok([key]) => Self::One(key),
            Err(keys) if keys.is_empty() => Self::Empty,
            Err(keys) => Self::Many(keys.into()),
        }
    }

    fn as_slice(&self) -> &[Arc<str>] {
        match self {
            Self::Empty => &[],
            Self::One(key) => std::slice::from_ref(key),
            Self::Many(keys) => keys,
        }
    }

    pub fn insert(&mut self, key: &Arc<str>) {
        let keys = self.as_slice();
        if let Err(at) = keys.binary_search_by(|k| k.as_ref().cmp(key.as_ref())) {
            let mut keys = keys.to_vec();
            keys.insert(at, key.clone());
            *self = Self::of(keys);
        }
    }

    pub fn remove(&mut self, key: &str) {
        let keys = self.as_slice();
        if let Ok(at) = keys.binary_search_by(|k| k.as_ref().cmp(key)) {
            let mut keys = keys.to_vec();
            keys.remove(at);
            *self = Self::of(keys);
        }
    }

    /// The smallest key.
    pub fn first(&self) -> Option<&Arc<str>> {
        self.as_slice().first()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Arc<str>> {
        self.as_slice().iter()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl<'a> IntoIterator for &'a KeySet {
    type Item = &'a Arc<str>;
    type IntoIter = std::slice::Iter<'a, Arc<str>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_sorted_and_unique_and_clones_are_independent() {
        let mut set = KeySet::default();
        for k in ["b", "a", "c", "a"] {
            set.insert(&Arc::from(k));
        }
        let before = set.clone();
        set.remove("a");
        set.remove("zz");
        let keys = |s: &KeySet| s.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(keys(&set), ["b", "c"]);
        assert_eq!(set.first().map(|k| &**k), Some("b"));
        assert_eq!(keys(&before), ["a", "b", "c"]);
        set.remove("b");
        assert_eq!(set, KeySet::One("c".into()), "one key is held alone");
        set.remove("c");
        assert!(set.is_empty() && set.first().is_none());
        assert_eq!(set, KeySet::default());
    }
}
