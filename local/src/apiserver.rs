//! What the Kubernetes API server does for local mode: stores objects,
//! allocates Service virtual IPs, gives objects their uid and creation
//! time, sends new pods of monitored namespaces through the injector, and
//! deletes a namespace's objects with it.

use std::{collections::BTreeSet, net::Ipv4Addr, time::SystemTime};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::{
    admission::Injector,
    manifests::{Checked, resource_name},
    state::{Instance, MESH_NAME},
    store::{Key, Store, is_namespaced},
};

/// Where kubectl keeps what was applied; re-applying the same input is a
/// no-op.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
use osm_api::compat::{IGNORE, MONITORED_BY};

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        })
    }
}

/// The local API server.
#[derive(Debug, Clone)]
pub struct ApiServer {
    pub store: Store,
    pub instance: Instance,
    pub injector: Injector,
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn new_uid() -> String {
    let v = fastrand::u128(..);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn annotations_mut(value: &mut Value) -> &mut serde_json::Map<String, Value> {
    let meta = value
        .as_object_mut()
        .expect("objects are maps")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let annotations = meta
        .as_object_mut()
        .expect("made a map above")
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations.as_object_mut().expect("made a map above")
}

fn set_meta(value: &mut Value, field: &str, v: Value) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(field.into(), v);
    }
}

fn copy_meta(from: &Value, to: &mut Value, field: &str) {
    if let Some(v) = from.pointer(&format!("/metadata/{field}")) {
        set_meta(to, field, v.clone());
    }
}

/// True when the namespace object sends its pods through the injector
/// (the webhook's namespace selector).
pub fn is_monitored(namespace: &Value) -> bool {
    let labels = namespace.pointer("/metadata/labels");
    labels
        .and_then(|l| l.get(MONITORED_BY))
        .and_then(Value::as_str)
        == Some(MESH_NAME)
        && labels.and_then(|l| l.get(IGNORE)).is_none()
}

/// A free virtual IP in the service range (pure).
pub fn allocate_vip(instance: &Instance, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    instance.service_cidr.hosts().find(|ip| !used.contains(ip))
}

impl ApiServer {
    fn used_vips(&self) -> anyhow::Result<BTreeSet<Ipv4Addr>> {
        Ok(self
            .store
            .list()?
            .into_iter()
            .filter(|s| s.key.kind == "Service")
            .filter_map(|s| s.value.pointer("/spec/clusterIP")?.as_str()?.parse().ok())
            .collect())
    }

    /// Applies checked objects in order; one line per object, as kubectl
    /// prints them, or the first error.
    pub async fn apply(&self, objects: &[Checked]) -> Vec<Result<String, String>> {
        let mut out = Vec::new();
        for object in objects {
            let name = resource_name(&object.value, &object.key);
            out.push(match self.apply_one(object).await {
                Ok(outcome) => Ok(format!("{name} {outcome}")),
                Err(e) => Err(format!("{}: {name}: {e:#}", object.origin)),
            });
        }
        out
    }

    async fn apply_one(&self, object: &Checked) -> anyhow::Result<Outcome> {
        let _lock = self.store.lock()?;
        let key = &object.key;
        if is_namespaced(&key.kind) {
            self.store
                .get(&Key::new("Namespace", "", &key.namespace))?
                .with_context(|| format!("namespaces \"{}\" not found", key.namespace))?;
        }
        let applied = object.value.to_string();
        let existing = self.store.get(key)?;
        if let Some(old) = &existing
            && old
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(LAST_APPLIED))
                .and_then(Value::as_str)
                == Some(applied.as_str())
        {
            return Ok(Outcome::Unchanged);
        }
        let mut value = object.value.clone();
        annotations_mut(&mut value).insert(LAST_APPLIED.into(), Value::from(applied));
        match &existing {
            Some(old) => {
                copy_meta(old, &mut value, "uid");
                copy_meta(old, &mut value, "creationTimestamp");
            }
            None => {
                set_meta(&mut value, "uid", Value::from(new_uid()));
                set_meta(&mut value, "creationTimestamp", Value::from(now_rfc3339()));
            }
        }
        match key.kind.as_str() {
            "Service" => self.admit_service(&mut value, existing.as_ref())?,
            "Pod" => {
                let given = value.get("spec").cloned().unwrap_or_else(|| json!({}));
                if let Some(old) = &existing
                    && spec_as_applied(old) == Some(given.to_string().as_str())
                {
                    // Only metadata changed: the running pod keeps its
                    // (injected) spec and status.
                    let mut kept = old.clone();
                    copy_meta(&value, &mut kept, "labels");
                    let given = annotations_mut(&mut value).clone();
                    annotations_mut(&mut kept).extend(given);
                    value = kept;
                } else {
                    // A new spec is a new pod, as when a pod is replaced.
                    set_meta(&mut value, "uid", Value::from(new_uid()));
                    set_meta(&mut value, "creationTimestamp", Value::from(now_rfc3339()));
                    value = self.admit_pod(value).await?;
                }
            }
            _ => {}
        }
        self.store.put(&value)?;
        Ok(if existing.is_some() {
            Outcome::Configured
        } else {
            Outcome::Created
        })
    }

    fn admit_service(&self, value: &mut Value, existing: Option<&Value>) -> anyhow::Result<()> {
        let asked = value
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .map(str::to_string);
        let kept = existing
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let ip = match (asked, kept) {
            (Some(a), _) if a == "None" => a,
            (Some(a), Some(k)) if a != k => {
                anyhow::bail!("spec.clusterIP: field is immutable (it is {k}, not {a})")
            }
            (Some(a), None) => {
                let ip: Ipv4Addr = a
                    .parse()
                    .map_err(|_| anyhow::anyhow!("spec.clusterIP {a:?} is not an IPv4 address"))?;
                if !self.instance.service_cidr.contains(&ip) {
                    anyhow::bail!(
                        "spec.clusterIP {ip} is outside the service range {}",
                        self.instance.service_cidr
                    );
                }
                if self.used_vips()?.contains(&ip) {
                    anyhow::bail!("spec.clusterIP {ip} is already allocated");
                }
                a
            }
            (_, Some(k)) => k,
            (None, None) => allocate_vip(&self.instance, &self.used_vips()?)
                .with_context(|| {
                    format!("the service range {} is full", self.instance.service_cidr)
                })?
                .to_string(),
        };
        let spec = value
            .as_object_mut()
            .expect("objects are maps")
            .entry("spec")
            .or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut() {
            spec.insert("clusterIP".into(), Value::from(ip));
            spec.entry("type")
                .or_insert_with(|| Value::from("ClusterIP"));
        }
        Ok(())
    }

    /// A new pod: defaults, then the injector when its namespace is
    /// monitored. The spec as given is kept in an annotation so a re-apply
    /// can tell a spec change from a metadata change.
    pub async fn admit_pod(&self, mut pod: Value) -> anyhow::Result<Value> {
        let key = Key::of(&pod).context("a pod without a name")?;
        let namespace = self
            .store
            .get(&Key::new("Namespace", "", &key.namespace))?
            .with_context(|| format!("namespaces \"{}\" not found", key.namespace))?;
        let given_spec = pod.get("spec").cloned().unwrap_or_else(|| json!({}));
        annotations_mut(&mut pod)
            .insert(SPEC_AS_APPLIED.into(), Value::from(given_spec.to_string()));
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("serviceAccountName")
                .or_insert_with(|| Value::from("default"));
            spec.entry("restartPolicy")
                .or_insert_with(|| Value::from("Always"));
            spec.insert("nodeName".into(), Value::from("local"));
        }
        if is_monitored(&namespace) {
            pod = self.injector.admit(&pod, &key.namespace).await?;
        }
        if let Some(map) = pod.as_object_mut() {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
        Ok(pod)
    }

    /// Creates a pod made by the runtime (a Deployment's replica).
    pub async fn create_pod(&self, pod: Value) -> anyhow::Result<Value> {
        let mut pod = pod;
        set_meta(&mut pod, "uid", Value::from(new_uid()));
        set_meta(&mut pod, "creationTimestamp", Value::from(now_rfc3339()));
        let pod = self.admit_pod(pod).await?;
        let _lock = self.store.lock()?;
        self.store.put(&pod)?;
        Ok(pod)
    }

    /// Deletes objects; a Namespace takes every object in it along. One
    /// line per object, kubectl's words.
    pub fn delete(&self, objects: &[Checked]) -> Vec<Result<String, String>> {
        let mut out = Vec::new();
        // Workloads first, namespaces last: the reverse of apply.
        for object in objects.iter().rev() {
            let key = &object.key;
            let name = format!(
                "{} \"{}\"",
                resource_name(&object.value, key)
                    .split('/')
                    .next()
                    .unwrap_or_default(),
                key.name
            );
            out.push(match self.delete_key(key) {
                Ok(true) => Ok(format!("{name} deleted")),
                Ok(false) => Err(format!("Error from server (NotFound): {name} not found")),
                Err(e) => Err(format!("{name}: {e:#}")),
            });
        }
        out
    }

    pub fn delete_key(&self, key: &Key) -> anyhow::Result<bool> {
        let _lock = self.store.lock()?;
        let found = self.store.remove(key)?;
        if found && key.kind == "Namespace" {
            for stored in self.store.list()? {
                if stored.key.namespace == key.name {
                    self.store.remove(&stored.key)?;
                }
            }
        }
        Ok(found)
    }
}

/// Marks the spec a pod was given, before defaults and injection.
pub const SPEC_AS_APPLIED: &str = "osm.local/spec-as-applied";

fn spec_as_applied(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/annotations")?
        .get(SPEC_AS_APPLIED)?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vips_are_allocated_from_the_service_range_skipping_used_ones() {
        let instance = Instance::default();
        let mut used = BTreeSet::new();
        let first = allocate_vip(&instance, &used).unwrap();
        assert_eq!(first, "10.214.0.1".parse::<Ipv4Addr>().unwrap());
        used.insert(first);
        assert_eq!(
            allocate_vip(&instance, &used).unwrap(),
            "10.214.0.2".parse::<Ipv4Addr>().unwrap()
        );
    }

    #[test]
    fn monitored_namespaces_are_those_labelled_for_this_mesh() {
        let ns = |labels: Value| json!({"metadata": {"name": "x", "labels": labels}});
        assert!(is_monitored(&ns(json!({MONITORED_BY: "osm"}))));
        assert!(!is_monitored(&ns(json!({MONITORED_BY: "other"}))));
        assert!(!is_monitored(&ns(
            json!({MONITORED_BY: "osm", IGNORE: "true"})
        )));
        assert!(!is_monitored(&json!({"metadata": {"name": "x"}})));
    }
}
