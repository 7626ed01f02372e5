//! Which services each endpoint set matters to, so a changed set rebuilds
//! the services that read it and nothing else.

use std::{collections::BTreeSet, sync::Arc};

use osm_api::v1;

use super::key_set::KeySet;

/// What one endpoint set matters to.
#[derive(Debug, Clone, Default)]
struct SetRefs {
    /// The services whose own set it is (the first by key gives the set
    /// its limits and outlier detection).
    owners: KeySet,
    /// The other services whose build reads it: split backends, route
    /// backends and mirrors.
    others: KeySet,
}

// One map, keyed by a copy of the set key that is the owner's own key
// when they are the same string (as compiled configs name them): two
// maps keyed by copies were 2.6 MB at 10,000 services.
#[derive(Debug, Clone, Default)]
pub(super) struct References {
    sets: imbl::OrdMap<Arc<str>, SetRefs>,
}

/// One service's references: (set, whether it is the service's own,
/// the service's key).
type Reference = (Arc<str>, bool, Arc<str>);

fn references_of(s: &v1::OutboundService) -> impl Iterator<Item = Reference> + '_ {
    let key: Arc<str> = s.key.as_str().into();
    let own = if s.endpoints == s.key {
        key.clone()
    } else {
        s.endpoints.as_str().into()
    };
    let others = read_sets(s).into_iter().filter(|set| *set != s.endpoints);
    std::iter::once((own, true, key.clone()))
        .chain(others.map(move |set| (set.into(), false, key.clone())))
}

/// A whole build's references, gathered first and made into a map with
/// full nodes at the end.
#[derive(Debug, Default)]
pub(super) struct Gathered(Vec<Reference>);

impl Gathered {
    pub fn add(&mut self, s: &v1::OutboundService) {
        self.0.extend(references_of(s));
    }

    pub fn finish(mut self) -> References {
        // Stable: a set's services stay in the order they were added.
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        let mut entries: Vec<(Arc<str>, SetRefs)> = Vec::new();
        for (set, own, key) in self.0 {
            let refs = match entries.last_mut() {
                Some((last, refs)) if *last == set => refs,
                _ => {
                    entries.push((set, SetRefs::default()));
                    &mut entries.last_mut().expect("just pushed").1
                }
            };
            refs.add(own, &key);
        }
        References {
            sets: crate::config::packed::packed_from(entries),
        }
    }
}

impl SetRefs {
    fn add(&mut self, own: bool, key: &Arc<str>) {
        if own {
            self.owners.insert(key);
        } else {
            self.others.insert(key);
        }
    }
}

impl References {
    pub fn add(&mut self, s: &v1::OutboundService) {
        for (set, own, key) in references_of(s) {
            self.sets.entry(set).or_default().add(own, &key);
        }
    }

    pub fn remove(&mut self, s: &v1::OutboundService) {
        self.take(&s.endpoints, |refs| refs.owners.remove(&s.key));
        for set in read_sets(s) {
            if set != s.endpoints {
                self.take(set, |refs| refs.others.remove(&s.key));
            }
        }
    }

    /// The service whose policy `set` takes.
    pub fn owner(&self, set: &str) -> Option<&Arc<str>> {
        self.sets.get(set)?.owners.first()
    }

    /// The services that read `set`.
    pub fn readers(&self, set: &str) -> impl Iterator<Item = &Arc<str>> {
        self.sets
            .get(set)
            .into_iter()
            .flat_map(|refs| refs.owners.iter().chain(refs.others.iter()))
    }

    /// Takes a service off `set`, and the set off the map when nothing
    /// refers to it any more.
    fn take(&mut self, set: &str, remove: impl FnOnce(&mut SetRefs)) {
        let now_empty = self.sets.get_mut(set).is_some_and(|refs| {
            remove(refs);
            refs.owners.is_empty() && refs.others.is_empty()
        });
        if now_empty {
            self.sets.remove(set);
        }
    }
}

fn mirrors(filters: &[v1::RouteFilter]) -> impl Iterator<Item = &str> {
    filters.iter().filter_map(|f| match &f.kind {
        Some(v1::route_filter::Kind::RequestMirror(m)) => Some(m.endpoints.as_str()),
        _ => None,
    })
}

/// Every endpoint set key a service's build looks up.
pub(super) fn read_sets(s: &v1::OutboundService) -> BTreeSet<&str> {
    let mut out = BTreeSet::from([s.endpoints.as_str()]);
    out.extend(s.split.iter().map(|b| b.endpoints.as_str()));
    for rule in &s.routes {
        out.extend(mirrors(&rule.filters));
        for b in &rule.backends {
            out.insert(b.endpoints.as_str());
            out.extend(mirrors(&b.filters));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(key: &str, own: &str, split: &[&str], mirror: Option<&str>) -> v1::OutboundService {
        v1::OutboundService {
            key: key.into(),
            endpoints: own.into(),
            split: split
                .iter()
                .map(|e| v1::WeightedBackend {
                    endpoints: (*e).into(),
                    weight: 1,
                })
                .collect(),
            routes: mirror
                .map(|m| v1::HttpRouteRule {
                    filters: vec![v1::RouteFilter {
                        kind: Some(v1::route_filter::Kind::RequestMirror(v1::RequestMirror {
                            endpoints: m.into(),
                            per_million: 1,
                        })),
                    }],
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn sets_know_their_owner_and_readers() {
        let a = service("a", "s1", &["s2", "s3"], None);
        let b = service("b", "s1", &[], Some("s4"));
        let mut refs = References::default();
        refs.add(&b);
        refs.add(&a);
        assert_eq!(refs.owner("s1").map(|k| &**k), Some("a"), "first by key");
        let readers = |r: &References, set| {
            let mut keys: Vec<String> = r.readers(set).map(|k| k.to_string()).collect();
            keys.sort();
            keys
        };
        assert_eq!(readers(&refs, "s1"), ["a", "b"]);
        assert_eq!(readers(&refs, "s3"), ["a"]);
        assert_eq!(readers(&refs, "s4"), ["b"]);
        assert!(refs.owner("s2").is_none());
        refs.remove(&a);
        assert_eq!(refs.owner("s1").map(|k| &**k), Some("b"));
        assert!(readers(&refs, "s3").is_empty());
        refs.remove(&b);
        assert!(refs.owner("s1").is_none() && readers(&refs, "s4").is_empty());
    }

    #[test]
    fn gathered_references_are_the_ones_added_in_turn() {
        let services = [
            service("b", "s1", &[], Some("s4")),
            service("a", "s1", &["s2", "s3"], None),
            service("c", "s2", &["s1"], None),
        ];
        let mut added = References::default();
        let mut gathered = Gathered::default();
        for s in &services {
            added.add(s);
            gathered.add(s);
        }
        let gathered = gathered.finish();
        for set in ["s1", "s2", "s3", "s4", "s5"] {
            assert_eq!(gathered.owner(set), added.owner(set), "{set}");
            let mut want: Vec<_> = added.readers(set).collect();
            let mut got: Vec<_> = gathered.readers(set).collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "{set}");
        }
        assert_eq!(gathered.owner("s1").map(|k| &**k), Some("a"));
    }
}
