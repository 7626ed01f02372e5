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

impl References {
    pub fn add(&mut self, s: &v1::OutboundService) {
        let key: Arc<str> = s.key.as_str().into();
        let own = if s.endpoints == s.key {
            key.clone()
        } else {
            s.endpoints.as_str().into()
        };
        self.refs(own).owners.insert(&key);
        for set in read_sets(s) {
            if set != s.endpoints {
                self.refs(set.into()).others.insert(&key);
            }
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

    fn refs(&mut self, set: Arc<str>) -> &mut SetRefs {
        self.sets.entry(set).or_default()
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
}
