//! A small sorted set of service keys, shared between snapshots until one
//! of them changes it. The indexes hold one per endpoint set and per pod
//! address, nearly all with one key: a persistent ordered set would
//! allocate a whole B-tree node (about 2 KB) for each.

use std::sync::Arc;

/// One allocation for the whole set; the keys themselves are shared with
/// whoever holds them already (a built service's key), not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeySet(Arc<[Arc<str>]>);

impl Default for KeySet {
    fn default() -> Self {
        Self(Arc::new([]))
    }
}

impl KeySet {
    pub fn insert(&mut self, key: &Arc<str>) {
        if let Err(at) = self.0.binary_search_by(|k| k.as_ref().cmp(key.as_ref())) {
            let mut keys = self.0.to_vec();
            keys.insert(at, key.clone());
            self.0 = keys.into();
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let Ok(at) = self.0.binary_search_by(|k| k.as_ref().cmp(key)) {
            let mut keys = self.0.to_vec();
            keys.remove(at);
            self.0 = keys.into();
        }
    }

    /// The smallest key.
    pub fn first(&self) -> Option<&Arc<str>> {
        self.0.first()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Arc<str>> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
        set.remove("c");
        assert!(set.is_empty() && set.first().is_none());
    }
}
