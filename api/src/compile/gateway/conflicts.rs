//! Warnings for a TrafficSplit and Gateway API routes on the same Service,
//! from either side, for the webhook and `osm local apply` to show when
//! one of them is written (the rule: the routes win where they attach).

use super::{MeshRoute, all_routes};
use crate::{
    compile::Index,
    resources::{Object, gateway::ParentRef},
    validate::root_service_name,
};

/// The conflicts `object` has with what `index` holds.
pub fn split_conflicts(index: &Index, object: &Object) -> Vec<String> {
    match object {
        Object::TrafficSplit(split) => {
            let ns = split.metadata.namespace.as_deref().unwrap_or("default");
            let root = root_service_name(&split.spec.service).0;
            routes_on(index, ns, root)
                .map(|route| {
                    format!(
                        "{} routes Service {ns}/{root}: this TrafficSplit does not apply where that route does (Gateway API routes win over TrafficSplit)",
                        route.describe()
                    )
                })
                .collect()
        }
        Object::HttpRoute(r) => route_conflicts(index, &MeshRoute::Http(r)),
        Object::GrpcRoute(r) => route_conflicts(index, &MeshRoute::Grpc(r)),
        _ => Vec::new(),
    }
}

fn route_conflicts(index: &Index, route: &MeshRoute<'_>) -> Vec<String> {
    let route_ns = route.namespace();
    route
        .parent_refs()
        .iter()
        .filter(|p| p.is_service())
        .flat_map(|p: &ParentRef| {
            let ns = p.namespace_or(route_ns).to_string();
            index
                .traffic_splits
                .range((ns.clone(), String::new())..)
                .take_while(move |((n, _), _)| *n == ns)
                .filter(|(_, s)| root_service_name(&s.spec.service).0 == p.name)
                .map(|((n, name), _)| {
                    format!(
                        "TrafficSplit {n}/{name} on Service {n}/{} does not apply where this route does (Gateway API routes win over TrafficSplit)",
                        p.name
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The routes naming Service `ns/name` as a parent, on any port.
fn routes_on<'a>(
    index: &'a Index,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = MeshRoute<'a>> {
    all_routes(index).filter(move |r| {
        r.parent_refs()
            .iter()
            .any(|p| p.is_service() && p.name == name && p.namespace_or(r.namespace()) == ns)
    })
}
