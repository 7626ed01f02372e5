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
            message: {
                // A Service named twice (a backend and a mirror) is said once.
                let mut messages: Vec<&str> = Vec::new();
                for p in &problems {
                    if !messages.contains(&p.message.as_str()) {
                        messages.push(&p.message);
                    }
                }
                messages.join("; ")
            },
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

/// The route's new `status` from the one it has (`existing`, possibly
/// null): entries of other controllers kept as they are, ours replaced by
/// `ours`, each condition keeping its `lastTransitionTime` while its
/// status stays the same (the API's convention). Equal to `existing` when
/// nothing changed, so the caller writes only real changes.
pub fn merge_status(
    existing: &Value,
    ours: &[ParentStatus],
    observed_generation: i64,
    now: &str,
) -> Value {
    let old: Vec<Value> = existing["parents"].as_array().cloned().unwrap_or_default();
    let (mine, others): (Vec<Value>, Vec<Value>) = old
        .into_iter()
        .partition(|p| p["controllerName"] == CONTROLLER_NAME);
    let mut fresh = parents_json(ours, observed_generation, now)["parents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for parent in &mut fresh {
        let before = mine.iter().find(|m| m["parentRef"] == parent["parentRef"]);
        let Some(conditions) = parent["conditions"].as_array_mut() else {
            continue;
        };
        for c in conditions {
            let kept = before
                .and_then(|b| b["conditions"].as_array())
                .and_then(|cs| cs.iter().find(|o| o["type"] == c["type"]))
                .filter(|o| o["status"] == c["status"]);
            if let Some(o) = kept {
                c["lastTransitionTime"] = o["lastTransitionTime"].clone();
            }
        }
    }
    let mut parents = others;
    parents.extend(fresh);
    let mut out = existing.as_object().cloned().unwrap_or_default();
    out.insert("parents".into(), Value::Array(parents));
    Value::Object(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(status: bool) -> Vec<ParentStatus> {
        vec![ParentStatus {
            parent: ParentRef {
                group: Some(String::new()),
                kind: Some("Service".into()),
                namespace: None,
                name: "echo".into(),
                section_name: None,
                port: None,
            },
            conditions: vec![Condition {
                kind: "ResolvedRefs",
                status,
                reason: if status {
                    "ResolvedRefs"
                } else {
                    "BackendNotFound"
                },
                message: "m".into(),
            }],
        }]
    }

    #[test]
    fn our_entries_are_replaced_others_kept_and_times_move_only_on_change() {
        let gateway = json!({"parentRef": {"name": "gw"}, "controllerName": "example.com/gateway", "conditions": []});
        let first = merge_status(&json!({"parents": [gateway.clone()]}), &ours(true), 1, "t1");
        assert_eq!(
            first["parents"][0], gateway,
            "another controller's entry is kept"
        );
        assert_eq!(
            first["parents"][1]["conditions"][0]["lastTransitionTime"],
            "t1"
        );
        let same = merge_status(&first, &ours(true), 1, "t2");
        assert_eq!(same, first, "nothing changed: nothing to write");
        let flipped = merge_status(&first, &ours(false), 2, "t3");
        let condition = &flipped["parents"][1]["conditions"][0];
        assert_eq!(
            (
                condition["status"].as_str(),
                condition["lastTransitionTime"].as_str()
            ),
            (Some("False"), Some("t3"))
        );
        assert_eq!(condition["observedGeneration"], 2);
        assert_eq!(flipped["parents"].as_array().map(Vec::len), Some(2));
        let none = merge_status(&Value::Null, &[], 1, "t4");
        assert_eq!(none, json!({"parents": []}));
    }
}
