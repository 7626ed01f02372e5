//! TrafficSplits: the root service a split applies to, its weighted
//! backends (each an endpoint set on the root's port) and the A/B matches
//! that choose which requests follow it.

use std::collections::BTreeMap;

use super::{
    Index,
    endpoints::endpoint_set,
    routes::{selected_matches, tt_name},
};
use crate::{
    resources::{Custom, smi},
    v1,
};

/// The TrafficSplit whose root is `name`: the first by name when several.
pub(super) fn split_for<'a>(
    index: &'a Index,
    ns: &str,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<&'a Custom<smi::TrafficSplit>> {
    let mut splits = index
        .traffic_splits
        .range((ns.to_string(), String::new())..)
        .take_while(|((n, _), _)| n == ns)
        .map(|(_, s)| s)
        .filter(|s| crate::validate::root_service_name(&s.spec.service).0 == name);
    let first = splits.next()?;
    for other in splits {
        warnings.push(format!(
            "TrafficSplit {} is ignored: TrafficSplit {} already splits {ns}/{name}",
            tt_name(other),
            tt_name(first)
        ));
    }
    Some(first)
}

pub(super) type SplitParts = (Vec<v1::WeightedBackend>, Vec<v1::HttpMatch>);

pub(super) fn compile_split(
    index: &Index,
    split: &Custom<smi::TrafficSplit>,
    root: &str,
    port: u16,
    own_key: &str,
    sets: &mut BTreeMap<String, v1::EndpointSet>,
    warnings: &mut Vec<String>,
) -> SplitParts {
    let ns = split.metadata.namespace.clone().unwrap_or_default();
    let by = format!("TrafficSplit {}", tt_name(split));
    let mut backends = Vec::new();
    for b in &split.spec.backends {
        if b.service == root {
            backends.push(v1::WeightedBackend {
                endpoints: own_key.to_string(),
                weight: clamp(b.weight),
            });
            continue;
        }
        let Some(service) = index.services.get(&(ns.clone(), b.service.clone())) else {
            warnings.push(format!(
                "{by}: backend Service {ns}/{} does not exist",
                b.service
            ));
            continue;
        };
        let Some(sp) = service
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .find(|p| p.port == i32::from(port))
        else {
            warnings.push(format!(
                "{by}: backend Service {ns}/{} has no port {port}; it gets no traffic for {ns}/{root}:{port}",
                b.service
            ));
            continue;
        };
        let set = endpoint_set(index, service, sp);
        backends.push(v1::WeightedBackend {
            endpoints: set.key.clone(),
            weight: clamp(b.weight),
        });
        sets.insert(set.key.clone(), set);
    }
    if backends.iter().all(|b| b.weight == 0) {
        if !backends.is_empty() {
            warnings.push(format!("{by}: no backend with a positive weight serves port {port}; the split is not applied there"));
        }
        return (Vec::new(), Vec::new());
    }
    let mut matches = Vec::new();
    for m in &split.spec.matches {
        match index.http_route_groups.get(&(ns.clone(), m.name.clone())) {
            Some(group) => matches.extend(selected_matches(group, None, &by, warnings)),
            None => warnings.push(format!(
                "{by}: HTTPRouteGroup {ns}/{} does not exist",
                m.name
            )),
        }
    }
    if !split.spec.matches.is_empty() && matches.is_empty() {
        // Matches were asked for and none exist: no request follows the
        // split, rather than every request.
        return (Vec::new(), Vec::new());
    }
    (backends, matches)
}

/// Weights are u32 on the wire; larger v1alpha1 quantities saturate.
fn clamp(weight: u64) -> u32 {
    u32::try_from(weight).unwrap_or(u32::MAX)
}
