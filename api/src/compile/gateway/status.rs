//! A route's status as the Gateway API defines it for mesh parents: one
//! entry per Service in `parentRefs`, with `Accepted` (does the parent
//! exist in the mesh, on that port) and `ResolvedRefs` (do all backends
//! resolve) and the reason when not. Pure; the controller and local mode
//! write it.

use serde_json::{Value, json};

use super::{MeshRoute, attach::names_service, resolve_backend};
use crate::{
    compile::{Index, split::split_for},
    resources::gateway::ParentRef,
};

/// The controller name written in `status.parents[].controllerName`.
pub const CONTROLLER_NAME: &str = "openservicemesh.io/mesh-controller";

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The status of a route for one of its Service parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentStatus {
    pub parent: ParentRef,
    pub conditions: Vec<Condition>,
}

fn accepted(index: &Index, route: &MeshRoute<'_>, p: &ParentRef) -> Condition {
    let ns = p.namespace_or(route.namespace());
    let refuse = |message: String| Condition {
        kind: "Accepted",
        status: false,
        reason: "NoMatchingParent",
        message,
    };
    let Some(service) = index.services.get(&(ns.to_string(), p.name.clone())) else {
        return refuse(format!("Service {ns}/{} does not exist", p.name));
    };
    if !index.is_monitored(ns) {
        return refuse(format!(
            "Service {ns}/{} is in namespace {ns}, which mesh {} does not monitor: its traffic does not go through the mesh",
            p.name, index.mesh.mesh_name
        ));
    }
    let ports: Vec<u16> = service
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .filter_map(|sp| u16::try_from(sp.port).ok())
        .collect();
    if let Some(port) = p.port
        && !ports.iter().any(|q| u32::from(*q) == port)
    {
        return refuse(format!("Service {ns}/{} has no port {port}", p.name));
    }
    let mut notes = Vec::new();
    if route.namespace() != ns {
        notes.push(format!(
            "a consumer route: it applies to clients in namespace {} only",
            route.namespace()
        ));
    }
    let mut ignored = Vec::new();
    if let Some(split) = split_for(index, ns, &p.name, &mut ignored)
        && ports
            .iter()
            .any(|port| names_service(route, ns, &p.name, *port))
    {
        notes.push(format!(
            "TrafficSplit {ns}/{} on the same Service does not apply where this route does (Gateway API routes win)",
            split.metadata.name.as_deref().unwrap_or("")
        ));
    }
    Condition {
        kind: "Accepted",
        status: true,
        reason: "Accepted",
        message: if notes.is_empty() {
            "attached to the Service".into()
        } else {
            format!("attached to the Service; {}", notes.join("; "))
        },
    }
}

fn resolved_refs(index: &Index, route: &MeshRoute<'_>) -> Condition {
    let problems: Vec<_> = route
        .backend_refs()
        .into_iter()
        .filter_map(|b| resolve_backend(index, route, b).err())
        .collect();
    match problems.first() {
        None => Condition {
            kind: "ResolvedRefs",
            status: true,
            reason: "ResolvedRefs",
            message: "every backend resolved".into(),
        },
        Some(first) => Condition {
            kind: "ResolvedRefs",
            status: false,
            reason: first.reason,
            message: problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        },
    }
}

/// The route's status for each of its Service parents (Gateway parents
/// are another controller's and are left out).
pub fn route_status(index: &Index, route: &MeshRoute<'_>) -> Vec<ParentStatus> {
    let resolved = resolved_refs(index, route);
    route
        .parent_refs()
        .iter()
        .filter(|p| p.is_service())
        .map(|p| ParentStatus {
            parent: p.clone(),
            conditions: vec![accepted(index, route, p), resolved.clone()],
        })
        .collect()
}

/// `status.parents` as the API writes it. `observed_generation` is the
/// route's `metadata.generation`; `now` an RFC 3339 time for conditions.
pub fn parents_json(statuses: &[ParentStatus], observed_generation: i64, now: &str) -> Value {
    let parents: Vec<Value> = statuses
        .iter()
        .map(|s| {
            let mut parent = json!({"group": "", "kind": "Service", "name": s.parent.name});
            if let Some(ns) = &s.parent.namespace {
                parent["namespace"] = json!(ns);
            }
            if let Some(port) = s.parent.port {
                parent["port"] = json!(port);
            }
            let conditions: Vec<Value> = s
                .conditions
                .iter()
                .map(|c| {
                    json!({
                        "type": c.kind,
                        "status": if c.status { "True" } else { "False" },
                        "reason": c.reason,
                        "message": c.message,
                        "observedGeneration": observed_generation,
                        "lastTransitionTime": now,
                    })
                })
                .collect();
            json!({"parentRef": parent, "controllerName": CONTROLLER_NAME, "conditions": conditions})
        })
        .collect();
    json!({ "parents": parents })
}
