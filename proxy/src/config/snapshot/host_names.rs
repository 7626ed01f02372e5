//! Services by host name. A cluster's host names share most of their
//! text: a Service is `web.shop`, `web.shop.svc` and
//! `web.shop.svc.cluster.local` (and `web` from its own namespace). The
//! index is keyed by a name's stem, its first two labels, and each entry
//! lists the suffixes that follow the stem in the service's names, one
//! list shared by every service whose names have the same shape: one
//! entry and one string a Service where there were three or four (2.6 MB
//! at 10,000 services).

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
};

use super::{OutboundService, Snapshot};

/// Services by host name stem.
pub type ByHost = imbl::OrdMap<Arc<str>, Vec<Named>>;

/// A service and its names under one stem.
#[derive(Debug, Clone)]
pub struct Named {
    pub service: Arc<OutboundService>,
    /// What follows the stem in each of its names ("": the stem itself).
    suffixes: Arc<[Box<str>]>,
}

impl Named {
    fn names(&self, suffix: &str) -> bool {
        self.suffixes.iter().any(|s| **s == *suffix)
    }
}

/// A normalized host name split after its first two labels.
pub fn split(host: &str) -> (&str, &str) {
    match host.match_indices('.').nth(1) {
        Some((at, _)) => host.split_at(at),
        None => (host, ""),
    }
}

/// The service named `host` (normalized) on `port`.
pub fn lookup<'a>(by_host: &'a ByHost, host: &str, port: u16) -> Option<&'a Arc<OutboundService>> {
    let (stem, suffix) = split(host);
    by_host
        .get(stem)?
        .iter()
        .find(|n| n.service.port == port && n.names(suffix))
        .map(|n| &n.service)
}

/// A service's host names grouped by stem, as the index keys them.
pub(super) type Grouped = Vec<(Arc<str>, Arc<[Box<str>]>)>;

/// Shares the suffix lists of a build (and the updates that follow it)
/// between its services (a list is
/// made only for a shape not seen yet: a build makes nothing per service
/// that it then frees, which glibc would keep as holes in the heap).
#[derive(Debug, Clone, Default)]
pub(super) struct SuffixLists(HashMap<u64, Vec<Arc<[Box<str>]>>>);

impl SuffixLists {
    /// `hosts` (normalized) grouped by stem.
    pub fn group(&mut self, hosts: &[impl AsRef<str>]) -> Grouped {
        let mut stems: Vec<(&str, Vec<&str>)> = Vec::new();
        for host in hosts {
            let (stem, suffix) = split(host.as_ref());
            match stems.iter_mut().find(|(s, _)| *s == stem) {
                Some((_, suffixes)) if !suffixes.contains(&suffix) => suffixes.push(suffix),
                Some(_) => {}
                None => stems.push((stem, vec![suffix])),
            }
        }
        stems
            .into_iter()
            .map(|(stem, suffixes)| (stem.into(), self.shared(&suffixes)))
            .collect()
    }

    fn shared(&mut self, suffixes: &[&str]) -> Arc<[Box<str>]> {
        let mut hasher = DefaultHasher::new();
        suffixes.hash(&mut hasher);
        let lists = self.0.entry(hasher.finish()).or_default();
        let same = |list: &&Arc<[Box<str>]>| list.iter().map(|s| &**s).eq(suffixes.iter().copied());
        if let Some(list) = lists.iter().find(same) {
            return list.clone();
        }
        let list: Arc<[Box<str>]> = suffixes.iter().map(|s| Box::from(*s)).collect();
        lists.push(list.clone());
        list
    }
}

/// Adds `service` under its grouped names.
pub(super) fn insert(by_host: &mut ByHost, names: Grouped, service: &Arc<OutboundService>) {
    for (stem, suffixes) in names {
        // Nearly every stem names one service.
        by_host
            .entry(stem)
            .or_insert_with(|| Vec::with_capacity(1))
            .push(Named {
                service: service.clone(),
                suffixes,
            });
    }
}

/// Takes `service` off the stems of `hosts` (normalized).
pub(super) fn remove(
    by_host: &mut ByHost,
    hosts: &[impl AsRef<str>],
    service: &Arc<OutboundService>,
) {
    for host in hosts {
        let (stem, _) = split(host.as_ref());
        let now_empty = by_host.get_mut(stem).is_some_and(|list| {
            list.retain(|n| !Arc::ptr_eq(&n.service, service));
            list.is_empty()
        });
        if now_empty {
            by_host.remove(stem);
        }
    }
}

impl Snapshot {
    /// The service named `host` (normalized) on `port`.
    pub fn service_by_host(&self, host: &str, port: u16) -> Option<&Arc<OutboundService>> {
        lookup(&self.outbound_by_host, host, port)
    }

    /// Every host name and the services it names (for
    /// [`Snapshot::describe`]).
    pub(super) fn host_names(&self) -> impl Iterator<Item = (String, &Arc<OutboundService>)> {
        self.outbound_by_host.iter().flat_map(|(stem, list)| {
            list.iter().flat_map(move |n| {
                n.suffixes
                    .iter()
                    .map(move |suffix| (format!("{stem}{suffix}"), &n.service))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_after_two_labels() {
        let cases = [
            ("web", ("web", "")),
            ("web.shop", ("web.shop", "")),
            ("web.shop.svc", ("web.shop", ".svc")),
            (
                "web.shop.svc.cluster.local",
                ("web.shop", ".svc.cluster.local"),
            ),
            ("10.0.0.1", ("10.0", ".0.1")),
        ];
        for (host, want) in cases {
            assert_eq!(split(host), want, "{host}");
        }
    }

    #[test]
    fn a_services_names_share_a_stem_and_same_shapes_share_a_list() {
        let boxed = |names: &[&str]| names.iter().map(|n| Box::from(*n)).collect::<Vec<_>>();
        let mut lists = SuffixLists::default();
        let web = lists.group(&boxed(&[
            "web",
            "web.shop",
            "web.shop.svc",
            "web.shop.svc.cluster.local",
            "web.shop.svc",
        ]));
        let stems: Vec<(&str, Vec<&str>)> = web
            .iter()
            .map(|(stem, s)| (&**stem, s.iter().map(|s| &**s).collect()))
            .collect();
        assert_eq!(
            stems,
            [
                ("web", vec![""]),
                ("web.shop", vec!["", ".svc", ".svc.cluster.local"])
            ]
        );
        let db = lists.group(&boxed(&[
            "db.shop",
            "db.shop.svc",
            "db.shop.svc.cluster.local",
        ]));
        assert!(Arc::ptr_eq(&web[1].1, &db[0].1), "one list for one shape");
    }
}
