//! Persistent maps whose nodes are full. imbl's B-tree splits a full leaf
//! in the middle, so keys inserted in order leave every leaf half full: a
//! whole build's maps were 10.6 MB of nodes at 10,000 services, half of
//! it empty slots. Inserting every other key first and then the rest
//! fills each leaf: the first pass leaves leaves of 8 keys spread over
//! twice the range, the second adds the 8 keys between them (a leaf holds
//! 16). Used where a whole map is built at once; changes made in place
//! afterwards split leaves as usual.

use imbl::OrdMap;

/// `map`, with full nodes (its old nodes are freed: where a whole map can
/// be collected first, [`packed_from`] leaves no such holes in the heap).
pub fn packed<K: Ord + Clone, V: Clone>(map: OrdMap<K, V>) -> OrdMap<K, V> {
    packed_from(map.into_iter().collect())
}

/// A map of `entries` (sorted by key, each key once) with full nodes.
pub fn packed_from<K: Ord + Clone, V: Clone>(entries: Vec<(K, V)>) -> OrdMap<K, V> {
    debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
    let mut odds = Vec::with_capacity(entries.len() / 2);
    let mut out = OrdMap::new();
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i % 2 == 0 {
            out.insert(key, value);
        } else {
            odds.push((key, value));
        }
    }
    for (key, value) in odds {
        out.insert(key, value);
    }
    out
}

/// `entries` sorted by key, the last of each key kept (as inserting them
/// in turn into a map would).
pub fn sorted_last_wins<K: Ord, V>(mut entries: Vec<(K, V)>) -> Vec<(K, V)> {
    // Stable: equal keys stay in their order, and the last one is kept.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(K, V)> = Vec::with_capacity(entries.len());
    for entry in entries {
        match out.last_mut() {
            Some(last) if last.0 == entry.0 => *last = entry,
            _ => out.push(entry),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_map_holds_the_same_entries() {
        for n in [0, 1, 2, 15, 16, 17, 33, 1000] {
            let map: OrdMap<u32, String> = (0..n).map(|i| (i * 3, i.to_string())).collect();
            let got = packed(map.clone());
            assert_eq!(got, map, "{n} entries");
            assert!(got.iter().map(|(k, _)| *k).eq((0..n).map(|i| i * 3)));
        }
    }

    #[test]
    fn the_last_of_a_key_wins() {
        let got = sorted_last_wins(vec![(2, "a"), (1, "b"), (2, "c"), (0, "d"), (1, "e")]);
        assert_eq!(got, [(0, "d"), (1, "e"), (2, "c")]);
    }
}
