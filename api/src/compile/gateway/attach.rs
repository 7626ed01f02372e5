//! Which routes apply to a Service port for a client (producer and
//! consumer routes), in the order their rules are merged.

use std::collections::BTreeSet;

use super::{MeshRoute, all_routes};
use crate::compile::Index;

/// Whether `route` names Service `ns/name` (on `port`, when it names one)
/// as a parent.
pub(crate) fn names_service(route: &MeshRoute<'_>, ns: &str, name: &str, port: u16) -> bool {
    let route_ns = route.namespace();
    route.parent_refs().iter().any(|p| {
        p.is_service()
            && p.name == name
            && p.namespace_or(route_ns) == ns
            && p.port.is_none_or(|p| p == u32::from(port))
    })
}

/// The routes that apply to Service `ns/name` on `port` for a client in
/// `client_ns`: its consumer routes when it has any, else the producer
/// routes; oldest first, then by namespace/name.
pub(crate) fn attached<'a>(
    index: &'a Index,
    ns: &str,
    name: &str,
    port: u16,
    client_ns: &str,
) -> Vec<MeshRoute<'a>> {
    let on_service: Vec<MeshRoute<'a>> = all_routes(index)
        .filter(|r| names_service(r, ns, name, port))
        .collect();
    let consumer: Vec<MeshRoute<'a>> = on_service
        .iter()
        .copied()
        .filter(|r| r.namespace() != ns && r.namespace() == client_ns)
        .collect();
    let mut chosen = if consumer.is_empty() {
        on_service
            .into_iter()
            .filter(|r| r.namespace() == ns)
            .collect()
    } else {
        consumer
    };
    chosen.sort_by(|a, b| {
        let created = |r: &MeshRoute<'_>| r.metadata().creation_timestamp.as_ref().map(|t| t.0);
        created(a)
            .cmp(&created(b))
            .then_with(|| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())))
    });
    chosen
}

/// Services a client may need because a route sends there from a
/// Service it may reach: (parent, backend) pairs over every route.
pub(crate) fn parents_of_candidates(
    index: &Index,
    reachable: &BTreeSet<(String, String)>,
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for route in all_routes(index) {
        let route_ns = route.namespace();
        let sends_to_reachable = route.backend_refs().iter().any(|b| {
            let ns = b
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(route_ns);
            reachable.contains(&(ns.to_string(), b.name.clone()))
        });
        if !sends_to_reachable {
            continue;
        }
        for p in route.parent_refs().iter().filter(|p| p.is_service()) {
            out.insert((p.namespace_or(route_ns).to_string(), p.name.clone()));
        }
    }
    out
}
