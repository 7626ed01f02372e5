//! What the Deployment and ReplicaSet controllers do, as a plan (pure):
//! each Deployment keeps `replicas` pods of its current template (named
//! `<deployment>-<template hash>-<5 characters>`, owned by the ReplicaSet
//! `<deployment>-<template hash>`); pods of an older template go once the
//! new ones are ready; pods whose Deployment is gone are collected.

use serde_json::{Value, json};

use crate::store::Key;

/// FNV-1a of the template, as 10 characters from Kubernetes' alphabet.
pub fn template_hash(template: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in template.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    suffix_from(h, 10)
}

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn suffix_from(mut v: u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            let c = ALPHABET[(v % ALPHABET.len() as u64) as usize];
            v /= ALPHABET.len() as u64;
            c as char
        })
        .collect()
}

/// The random part of a new pod's name.
pub fn random_suffix() -> String {
    suffix_from(fastrand::u64(..), 5)
}

/// A pod as the plan sees it.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub key: Key,
    /// The name of the ReplicaSet that owns it, if any.
    pub owner: Option<String>,
    pub ready: bool,
    pub created: String,
}

impl PodInfo {
    pub fn of(key: Key, pod: &Value, ready: bool) -> Self {
        let owner = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|o| {
                o.get("controller").and_then(Value::as_bool) == Some(true)
                    && o.get("kind").and_then(Value::as_str) == Some("ReplicaSet")
            })
            .and_then(|o| o.get("name")?.as_str().map(str::to_string));
        let created = pod
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Self {
            key,
            owner,
            ready,
            created,
        }
    }
}

/// Whether a stored pod belongs to the Deployment `deployment` (its
/// ReplicaSet `<deployment>-<hash>` is its first owner).
pub fn owned_by(pod: &Value, deployment: &str) -> bool {
    pod.pointer("/metadata/ownerReferences/0")
        .filter(|o| o["kind"] == "ReplicaSet")
        .and_then(|o| o["name"].as_str())
        .and_then(|rs| rs.rsplit_once('-'))
        .is_some_and(|(d, _)| d == deployment)
}

/// A new pod to create (without uid: the API server gives it one).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPod(pub Value);

#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<NewPod>,
    pub delete: Vec<Key>,
}

/// The pod a workload's `spec.template` makes (pure): named `name`, in the
/// workload's namespace, with `labels` added to the template's and owned
/// by `owner` (the controller that made it: a ReplicaSet, a Job).
pub fn pod_from(workload: &Value, name: &str, labels: &[(&str, &str)], owner: Value) -> Value {
    let template = workload
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut metadata = template
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    metadata["name"] = json!(name);
    metadata["namespace"] = workload
        .pointer("/metadata/namespace")
        .cloned()
        .unwrap_or(Value::Null);
    if !metadata["labels"].is_object() {
        metadata["labels"] = json!({});
    }
    for (k, v) in labels {
        metadata["labels"][*k] = json!(v);
    }
    let mut owner = owner;
    owner["uid"] = workload
        .pointer("/metadata/uid")
        .cloned()
        .unwrap_or(Value::Null);
    owner["controller"] = json!(true);
    owner["blockOwnerDeletion"] = json!(true);
    metadata["ownerReferences"] = json!([owner]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The pod a Deployment's template makes.
pub fn pod_from_template(deployment: &Value, hash: &str, name: &str) -> Value {
    let deploy_name = deployment
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    pod_from(
        deployment,
        name,
        &[("pod-template-hash", hash)],
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{deploy_name}-{hash}")}),
    )
}

/// The plan for every Deployment against the pods that exist.
pub fn plan(
    deployments: &[&Value],
    pods: &[PodInfo],
    mut new_name: impl FnMut() -> String,
) -> Plan {
    let mut out = Plan::default();
    let mut owned = vec![false; pods.len()];
    for deployment in deployments {
        let Some(key) = Key::of(deployment) else {
            continue;
        };
        let template = deployment
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(Value::Null);
        let hash = template_hash(&template);
        let current_rs = format!("{}-{hash}", key.name);
        let replicas = deployment
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize;
        let mut current = Vec::new();
        let mut old = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            if pod.key.namespace != key.namespace {
                continue;
            }
            let Some(owner) = &pod.owner else { continue };
            if owner == &current_rs {
                owned[i] = true;
                current.push(pod);
            } else if owner.rsplit_once('-').map(|(d, _)| d) == Some(key.name.as_str()) {
                owned[i] = true;
                old.push(pod);
            }
        }
        // Newest first, so scaling down removes the youngest pods.
        current.sort_by(|a, b| b.created.cmp(&a.created));
        if current.len() > replicas {
            out.delete.extend(
                current[..current.len() - replicas]
                    .iter()
                    .map(|p| p.key.clone()),
            );
        }
        for _ in current.len()..replicas {
            let name = format!("{current_rs}-{}", new_name());
            out.create
                .push(NewPod(pod_from_template(deployment, &hash, &name)));
        }
        let ready = current.iter().filter(|p| p.ready).count();
        if ready >= replicas.min(current.len()) && current.len() >= replicas {
            out.delete.extend(old.iter().map(|p| p.key.clone()));
        }
    }
    // Pods of a ReplicaSet whose Deployment is gone.
    for (i, pod) in pods.iter().enumerate() {
        if !owned[i] && pod.owner.is_some() {
            out.delete.push(pod.key.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str, replicas: u64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "uid": "d-1"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": image, "command": ["x"]}]}}}})
    }

    fn pod(name: &str, owner: &str, ready: bool, created: &str) -> PodInfo {
        PodInfo {
            key: Key::new("Pod", "shop", name),
            owner: Some(owner.into()),
            ready,
            created: created.into(),
        }
    }

    #[test]
    fn missing_replicas_are_made_from_the_template() {
        let d = deployment("web", 2, "a");
        let mut n = 0;
        let plan = plan(&[&d], &[], || {
            n += 1;
            format!("p{n}")
        });
        assert_eq!(plan.create.len(), 2);
        let hash = template_hash(&d["spec"]["template"]);
        let pod = &plan.create[0].0;
        assert_eq!(pod["metadata"]["name"], format!("web-{hash}-p1"));
        assert_eq!(pod["metadata"]["labels"]["app"], "web");
        assert_eq!(
            pod["metadata"]["labels"]["pod-template-hash"],
            hash.as_str()
        );
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["name"],
            format!("web-{hash}")
        );
        assert_eq!(pod["spec"]["containers"][0]["command"][0], "x");
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn extra_replicas_go_youngest_first() {
        let d = deployment("web", 1, "a");
        let rs = format!("web-{}", template_hash(&d["spec"]["template"]));
        let pods = [
            pod("old", &rs, true, "2026-01-01T00:00:00Z"),
            pod("young", &rs, true, "2026-01-02T00:00:00Z"),
        ];
        let plan = plan(&[&d], &pods, || unreachable!());
        assert_eq!(plan.delete, [Key::new("Pod", "shop", "young")]);
    }

    #[test]
    fn an_old_template_is_replaced_once_the_new_pods_are_ready() {
        let d = deployment("web", 1, "b");
        let rs = format!("web-{}", template_hash(&d["spec"]["template"]));
        let old = pod("web-oldhash-aaaaa", "web-oldhash", true, "1");
        let fresh_not_ready = pod("new", &rs, false, "2");
        let p = plan(&[&d], &[old.clone(), fresh_not_ready], || unreachable!());
        assert!(p.create.is_empty() && p.delete.is_empty(), "{p:?}");
        let fresh_ready = pod("new", &rs, true, "2");
        let p = plan(&[&d], &[old, fresh_ready], || unreachable!());
        assert_eq!(p.delete, [Key::new("Pod", "shop", "web-oldhash-aaaaa")]);
    }

    #[test]
    fn pods_of_a_deleted_deployment_are_collected_and_bare_pods_kept() {
        let orphan = pod("gone-abc-xyz", "gone-abc", true, "1");
        let bare = PodInfo {
            owner: None,
            ..pod("bare", "", true, "1")
        };
        let p = plan(&[], &[orphan, bare], || unreachable!());
        assert_eq!(p.delete, [Key::new("Pod", "shop", "gone-abc-xyz")]);
    }
}
