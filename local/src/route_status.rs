//! What the controller writes in Gateway API routes' status, computed by
//! local mode's API server when routes are read: the same pure function
//! ([`osm_api::compile::gateway::status`]) over everything stored.

use osm_api::compile::{
    MeshOptions,
    gateway::{MeshRoute, status},
};
use serde_json::Value;

use crate::{
    manifests::Checked,
    store::{Store, Stored, index_of},
};

/// The warnings objects being applied draw from the others (a TrafficSplit
/// and Gateway API routes on one Service), as the webhook gives them on a
/// cluster: each `origin: warning`.
pub fn conflicts(store: &Store, applying: &[Checked]) -> anyhow::Result<Vec<String>> {
    let stored = store.list()?;
    let mut index = index_of(stored.iter().map(|s| &s.value), MeshOptions::default());
    let parsed: Vec<(&Checked, osm_api::resources::Object)> = applying
        .iter()
        .filter_map(|c| Some((c, osm_api::load::parse_object(c.value.clone()).ok()?)))
        .collect();
    for (_, object) in &parsed {
        let _ = index.apply(object.clone());
    }
    Ok(parsed
        .iter()
        .flat_map(|(checked, object)| {
            osm_api::compile::gateway::conflicts::split_conflicts(&index, object)
                .into_iter()
                .map(move |w| format!("{}: {w}", checked.origin))
        })
        .collect())
}

/// Whether objects of this kind carry a status local mode computes.
pub fn has_computed_status(kind: &str) -> bool {
    matches!(kind, "HTTPRoute" | "GRPCRoute")
}

/// Fills `status` of every HTTPRoute and GRPCRoute in `all` from the
/// other objects (as the controller would on a cluster).
pub fn fill(all: &mut [Stored], now: &str) {
    if !all.iter().any(|s| has_computed_status(&s.key.kind)) {
        return;
    }
    let index = index_of(all.iter().map(|s| &s.value), MeshOptions::default());
    for stored in all.iter_mut() {
        let key = (stored.key.namespace.clone(), stored.key.name.clone());
        let route = match stored.key.kind.as_str() {
            "HTTPRoute" => index.http_routes.get(&key).map(MeshRoute::Http),
            "GRPCRoute" => index.grpc_routes.get(&key).map(MeshRoute::Grpc),
            _ => continue,
        };
        let Some(route) = route else { continue };
        let generation = route.metadata().generation.unwrap_or(1);
        let parents = status::route_status(&index, &route);
        if let Value::Object(map) = &mut stored.value {
            map.insert(
                "status".into(),
                status::parents_json(&parents, generation, now),
            );
        }
    }
}
