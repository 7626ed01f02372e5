//! What the StatefulSet controller does, as a plan (pure): each
//! StatefulSet keeps `replicas` pods named `<name>-0`, `<name>-1`, ... with
//! `hostname` their own name and `subdomain` the governing Service
//! (`spec.serviceName`), so `<name>-0.<service>.<ns>.svc.cluster.local`
//! names one pod. Under the default `OrderedReady` policy pod `i` is made
//! only once pods `0..i` are ready, and scaling down removes the highest
//! ordinal first, one at a time; `Parallel` makes and removes them all at
//! once. Pods whose StatefulSet is gone are collected.

use serde_json::{Value, json};

use super::deployments::{NewPod, Plan, pod_from};
use crate::store::Key;

/// A pod as the plan sees it.
#[derive(Debug, Clone)]
pub struct SetPod {
    pub key: Key,
    /// The StatefulSet that owns it.
    pub owner: String,
    pub ready: bool,
}

impl SetPod {
    /// A stored pod owned by a StatefulSet; None for any other pod.
    pub fn of(key: Key, pod: &Value, ready: bool) -> Option<Self> {
        let owner = pod
            .pointer("/metadata/ownerReferences")?
            .as_array()?
            .iter()
            .find(|o| o["kind"] == "StatefulSet" && o["controller"] == true)?
            .get("name")?
            .as_str()?
            .to_string();
        Some(Self { key, owner, ready })
    }
}

/// The ordinal of `pod` in StatefulSet `set` (`<set>-<n>`).
fn ordinal(set: &str, pod: &str) -> Option<usize> {
    let n = pod.strip_prefix(set)?.strip_prefix('-')?;
    // `07` is not an ordinal the controller makes.
    (n == "0" || !n.starts_with('0'))
        .then(|| n.parse().ok())
        .flatten()
}

/// The pod of ordinal `i` of `set`.
fn pod_of(set: &Value, name: &str, i: usize) -> Value {
    let pod_name = format!("{name}-{i}");
    let mut pod = pod_from(
        set,
        &pod_name,
        &[("statefulset.kubernetes.io/pod-name", pod_name.as_str())],
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name}),
    );
    pod["spec"]["hostname"] = json!(pod_name);
    if let Some(service) = set.pointer("/spec/serviceName").and_then(Value::as_str) {
        pod["spec"]["subdomain"] = json!(service);
    }
    pod
}

/// The plan for every StatefulSet against the pods that exist.
pub fn plan(sets: &[&Value], pods: &[SetPod]) -> Plan {
    let mut out = Plan::default();
    let mut owned = vec![false; pods.len()];
    for set in sets {
        let Some(key) = Key::of(set) else { continue };
        let replicas = set
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize;
        let parallel = set
            .pointer("/spec/podManagementPolicy")
            .and_then(Value::as_str)
            == Some("Parallel");
        // Its pods by ordinal; a pod of another name is not its.
        let mut by_ordinal: Vec<(usize, &SetPod)> = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            if pod.key.namespace != key.namespace || pod.owner != key.name {
                continue;
            }
            owned[i] = true;
            match ordinal(&key.name, &pod.key.name) {
                Some(n) => by_ordinal.push((n, pod)),
                None => out.delete.push(pod.key.clone()),
            }
        }
        by_ordinal.sort_by_key(|(n, _)| *n);
        let extra: Vec<&(usize, &SetPod)> =
            by_ordinal.iter().filter(|(n, _)| *n >= replicas).collect();
        if !extra.is_empty() {
            // The highest first; one at a time unless Parallel.
            let take = if parallel { extra.len() } else { 1 };
            out.delete
                .extend(extra.iter().rev().take(take).map(|(_, p)| p.key.clone()));
            if !parallel {
                continue;
            }
        }
        for i in 0..replicas {
            if by_ordinal.iter().any(|(n, _)| *n == i) {
                continue;
            }
            // OrderedReady: every lower ordinal exists and is ready.
            let ready_below = (0..i).all(|j| by_ordinal.iter().any(|(n, p)| *n == j && p.ready));
            if parallel || ready_below {
                out.create.push(NewPod(pod_of(set, &key.name, i)));
            }
            if !parallel {
                break;
            }
        }
    }
    for (i, pod) in pods.iter().enumerate() {
        if !owned[i] {
            out.delete.push(pod.key.clone());
        }
    }
    out
}

/// The status a StatefulSet shows: its pods and the ready ones.
pub fn status(set: &Value, pods: &[SetPod]) -> Value {
    let Some(key) = Key::of(set) else {
        return Value::Null;
    };
    let mine = pods
        .iter()
        .filter(|p| p.key.namespace == key.namespace && p.owner == key.name);
    let (replicas, ready) = mine.fold((0, 0), |(all, ready), p| {
        (all + 1, ready + usize::from(p.ready))
    });
    json!({"replicas": replicas, "readyReplicas": ready, "currentReplicas": replicas})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(replicas: u64, policy: Option<&str>) -> Value {
        let mut set = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
            "spec": {"replicas": replicas, "serviceName": "web",
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "x", "command": ["bookstore"]}]}}}});
        if let Some(p) = policy {
            set["spec"]["podManagementPolicy"] = json!(p);
        }
        set
    }

    fn pod(name: &str, ready: bool) -> SetPod {
        SetPod {
            key: Key::new("Pod", "shop", name),
            owner: "web".into(),
            ready,
        }
    }

    fn names(plan: &Plan) -> (Vec<String>, Vec<String>) {
        (
            plan.create
                .iter()
                .map(|p| p.0["metadata"]["name"].as_str().unwrap().to_string())
                .collect(),
            plan.delete.iter().map(|k| k.name.clone()).collect(),
        )
    }

    #[test]
    fn pods_come_in_order_each_once_the_one_before_is_ready() {
        let s = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // (what, the set, its pods, pods made, pods removed)
        type Case = (&'static str, Value, Vec<SetPod>, Vec<String>, Vec<String>);
        let cases: [Case; 8] = [
            ("first pod", set(3, None), vec![], s(&["web-0"]), s(&[])),
            (
                "web-0 not ready",
                set(3, None),
                vec![pod("web-0", false)],
                s(&[]),
                s(&[]),
            ),
            (
                "web-0 ready",
                set(3, None),
                vec![pod("web-0", true)],
                s(&["web-1"]),
                s(&[]),
            ),
            (
                "a lost middle pod comes back first",
                set(3, None),
                vec![pod("web-0", true), pod("web-2", true)],
                s(&["web-1"]),
                s(&[]),
            ),
            (
                "scale down: the highest first, one at a time",
                set(1, None),
                vec![pod("web-0", true), pod("web-1", true), pod("web-2", true)],
                s(&[]),
                s(&["web-2"]),
            ),
            (
                "parallel",
                set(3, Some("Parallel")),
                vec![],
                s(&["web-0", "web-1", "web-2"]),
                s(&[]),
            ),
            (
                "parallel scale down",
                set(1, Some("Parallel")),
                vec![pod("web-0", true), pod("web-1", false), pod("web-2", true)],
                s(&[]),
                s(&["web-2", "web-1"]),
            ),
            (
                "a pod of no ordinal is removed",
                set(1, None),
                vec![pod("web-0", true), pod("web-07", true)],
                s(&[]),
                s(&["web-07"]),
            ),
        ];
        for (what, set, pods, create, delete) in cases {
            let plan = plan(&[&set], &pods);
            assert_eq!(names(&plan), (create, delete), "{what}");
        }
        let orphan = plan(&[], &[pod("web-0", true)]);
        assert_eq!(names(&orphan).1, ["web-0"], "the set is gone");
    }

    #[test]
    fn a_pod_has_a_stable_name_under_its_service_and_its_owner() {
        let plan = plan(&[&set(1, None)], &[]);
        let made = &plan.create[0].0;
        assert_eq!(made["metadata"]["name"], "web-0");
        assert_eq!(made["spec"]["hostname"], "web-0");
        assert_eq!(made["spec"]["subdomain"], "web");
        assert_eq!(made["metadata"]["labels"]["app"], "web");
        assert_eq!(
            made["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
            "web-0"
        );
        let owner = &made["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["name"].as_str()),
            (Some("StatefulSet"), Some("web"))
        );
        let stored = json!({"metadata": {"ownerReferences": [owner]}});
        assert_eq!(
            SetPod::of(Key::new("Pod", "shop", "web-0"), &stored, true).map(|p| p.owner),
            Some("web".into())
        );
        let counted = status(&set(2, None), &[pod("web-0", true), pod("web-1", false)]);
        assert_eq!(
            counted,
            json!({"replicas": 2, "readyReplicas": 1, "currentReplicas": 2})
        );
    }
}
