//! A small sorted set of service keys, shared between snapshots until one
//! of them changes it. The indexes hold one per endpoint set and per pod
//! address, nearly all with one key: a persistent ordered set would
//! allocate a whole B-tree node (about 2 KB) for each.

use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeySet(Arc<Vec<String>>);

impl KeySet {
    pub fn insert(&mut self, key: &str) {
        if let Err(at) = self.0.binary_search_by(|k| k.as_str().cmp(key)) {
            Arc::make_mut(&mut self.0).insert(at, key.to_string());
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let Ok(at) = self.0.binary_search_by(|k| k.as_str().cmp(key)) {
            Arc::make_mut(&mut self.0).remove(at);
        }
    }

    /// The smallest key.
    pub fn first(&self) -> Option<&String> {
        self.0.first()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a KeySet {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;

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
            set.insert(k);
        }
        let before = set.clone();
        set.remove("a");
        set.remove("zz");
        assert_eq!(set.iter().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(set.first().map(String::as_str), Some("b"));
        assert_eq!(before.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        set.remove("b");
        set.remove("c");
        assert!(set.is_empty() && set.first().is_none());
    }
}
