//! Which services each endpoint set matters to, so a changed set rebuilds
//! the services that read it and nothing else.

use std::{collections::BTreeSet, sync::Arc};

use osm_api::v1;

use super::key_set::KeySet;

/// Service keys by endpoint set key.
type ByKey = imbl::OrdMap<String, KeySet>;

#[derive(Debug, Clone, Default)]
pub(super) struct References {
    /// The services whose own set it is (the first by key gives the set
    /// its limits and outlier detection).
    owners: ByKey,
    /// The services whose build reads it: own set, split backends, route
    /// backends and mirrors.
    readers: ByKey,
}

impl References {
    pub fn add(&mut self, s: &v1::OutboundService) {
        let key: Arc<str> = s.key.as_str().into();
        insert(&mut self.owners, &s.endpoints, &key);
        for set in read_sets(s) {
            insert(&mut self.readers, set, &key);
        }
    }

    pub fn remove(&mut self, s: &v1::OutboundService) {
        remove(&mut self.owners, &s.endpoints, &s.key);
        for set in read_sets(s) {
            remove(&mut self.readers, set, &s.key);
        }
    }

    /// The service whose policy `set` takes.
    pub fn owner(&self, set: &str) -> Option<&Arc<str>> {
        self.owners.get(set)?.first()
    }

    /// The services that read `set`.
    pub fn readers(&self, set: &str) -> impl Iterator<Item = &Arc<str>> {
        self.readers.get(set).into_iter().flatten()
    }
}

fn insert(map: &mut ByKey, set: &str, service: &Arc<str>) {
    map.entry(set.to_string()).or_default().insert(service);
}

fn remove(map: &mut ByKey, set: &str, service: &str) {
    let now_empty = map.get_mut(set).is_some_and(|services| {
        services.remove(service);
        services.is_empty()
    });
    if now_empty {
        map.remove(set);
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
        let readers =
            |r: &References, set| r.readers(set).map(|k| k.to_string()).collect::<Vec<_>>();
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
