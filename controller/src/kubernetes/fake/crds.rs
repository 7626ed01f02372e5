//! What the real API server does to a custom resource between the request
//! and etcd, for the versions a CRD serves with `conversion: None`:
//!
//! - a write at version V is pruned by V's schema, relabelled to the
//!   storage version and pruned again by the storage version's schema,
//!   then stored;
//! - a read at version V prunes the stored object by the storage schema,
//!   relabels it to V and prunes it by V's schema.
//!
//! Pruning is structural pruning: fields a schema does not name are
//! dropped unless `x-kubernetes-preserve-unknown-fields` keeps them;
//! `apiVersion`, `kind` and `metadata` always stay. Types are not checked
//! (the API server does not validate on conversion or read either). This
//! is the behaviour that loses a field an old version has and the storage
//! version lacks, which the tests of the controller's sources need to see.

use std::collections::BTreeMap;

use serde_json::Value;

/// One CustomResourceDefinition's versions and schemas.
#[derive(Debug, Clone)]
pub struct Crd {
    pub group: String,
    pub plural: String,
    pub storage: String,
    /// Every served version's `openAPIV3Schema`.
    pub schemas: BTreeMap<String, Value>,
}

impl Crd {
    /// From a CRD manifest (`apiextensions.k8s.io/v1`).
    pub fn from_manifest(manifest: &Value) -> Result<Crd, String> {
        let spec = &manifest["spec"];
        let text = |v: &Value, what: &str| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("CRD without {what}"))
        };
        let versions = spec["versions"]
            .as_array()
            .ok_or("CRD without spec.versions")?;
        let mut schemas = BTreeMap::new();
        let mut storage = None;
        for v in versions {
            let name = text(&v["name"], "a version name")?;
            if v["storage"].as_bool() == Some(true) {
                storage = Some(name.clone());
            }
            if v["served"].as_bool() == Some(true) {
                schemas.insert(name, v["schema"]["openAPIV3Schema"].clone());
            }
        }
        Ok(Crd {
            group: text(&spec["group"], "spec.group")?,
            plural: text(&spec["names"]["plural"], "spec.names.plural")?,
            storage: storage.ok_or("CRD without a storage version")?,
            schemas,
        })
    }

    fn relabel(&self, object: &mut Value, version: &str) {
        object["apiVersion"] = Value::String(format!("{}/{version}", self.group));
    }

    fn prune_at(&self, object: &mut Value, version: &str) {
        if let Some(schema) = self.schemas.get(version) {
            prune(object, schema, true);
        }
    }

    /// What etcd holds after a write of `object` (at its own apiVersion).
    pub fn write(&self, mut object: Value) -> Value {
        let version = object["apiVersion"]
            .as_str()
            .and_then(|v| v.rsplit_once('/'))
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| self.storage.clone());
        self.prune_at(&mut object, &version);
        self.relabel(&mut object, &self.storage);
        self.prune_at(&mut object, &self.storage);
        object
    }

    /// What a read at `version` returns of a stored object.
    pub fn read(&self, stored: &Value, version: &str) -> Value {
        let mut object = stored.clone();
        self.prune_at(&mut object, &self.storage);
        self.relabel(&mut object, version);
        self.prune_at(&mut object, version);
        object
    }
}

/// Structural pruning of `value` by `schema`.
pub fn prune(value: &mut Value, schema: &Value, root: bool) {
    let keep_unknown = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            map.retain(|key, field| {
                if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    return true;
                }
                if let Some(sub) = properties.and_then(|p| p.get(key)) {
                    prune(field, sub, false);
                    true
                } else if let Some(sub) = additional {
                    prune(field, sub, false);
                    true
                } else {
                    keep_unknown
                }
            });
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for item in items {
                    prune(item, sub, false);
                }
            }
        }
        _ => {}
    }
}

/// Every field path a schema names (`a.b`, `a[].b`, `a.*` for a map),
/// with `.**` after a path whose unknown fields are kept.
pub fn field_paths(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

fn walk(schema: &Value, at: &str, out: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true) {
        out.push(format!("{at}.**"));
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, sub) in properties {
            let path = if at.is_empty() {
                name.clone()
            } else {
                format!("{at}.{name}")
            };
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    if let Some(items) = schema.get("items") {
        walk(items, &format!("{at}[]"), out);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        out.push(format!("{at}.*"));
        walk(additional, &format!("{at}.*"), out);
    }
}

/// The paths of `version`'s schema that the storage version would prune
/// on write: data lost for an object written at `version`.
pub fn lost_on_write(crd: &Crd, version: &str) -> Vec<String> {
    let (Some(written), Some(stored)) = (crd.schemas.get(version), crd.schemas.get(&crd.storage))
    else {
        return Vec::new();
    };
    let kept = field_paths(stored);
    let covered = |path: &str| {
        if kept.iter().any(|k| k == path) {
            return true;
        }
        // A prefix whose unknown fields are kept covers the rest.
        path.char_indices()
            .filter(|(_, c)| *c == '.' || *c == '[')
            .any(|(i, _)| kept.contains(&format!("{}.**", &path[..i])))
    };
    field_paths(written)
        .into_iter()
        .filter(|p| !p.ends_with(".**") && !covered(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn crd() -> Crd {
        Crd::from_manifest(&json!({
            "spec": {
                "group": "example.io",
                "names": {"plural": "things"},
                "versions": [
                    {"name": "v2", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {
                                "size": {"type": "integer"},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "list": {"type": "array", "items": {"type": "object", "properties": {"a": {}}}},
                                "free": {"x-kubernetes-preserve-unknown-fields": true},
                            }},
                        },
                    }}},
                    {"name": "v1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {"size": {"type": "integer"}, "spec": {"type": "object", "properties": {"size": {}}}},
                    }}},
                ],
            },
        }))
        .unwrap()
    }

    #[test]
    fn writes_are_pruned_by_both_schemas_and_reads_by_the_read_version() {
        let crd = crd();
        assert_eq!(crd.storage, "v2");
        let stored = crd.write(json!({
            "apiVersion": "example.io/v1", "kind": "Thing", "metadata": {"name": "x"},
            "size": 3, "spec": {"size": 4, "extra": 1},
        }));
        // v1's top-level `size` is not in v2: lost on the way to etcd.
        assert_eq!(
            stored,
            json!({"apiVersion": "example.io/v2", "kind": "Thing", "metadata": {"name": "x"}, "spec": {"size": 4}})
        );
        let stored = crd.write(json!({
            "apiVersion": "example.io/v2", "kind": "Thing", "metadata": {},
            "spec": {"labels": {"a": "b"}, "list": [{"a": 1, "b": 2}], "free": {"any": [1]}, "gone": true},
        }));
        assert_eq!(
            stored["spec"],
            json!({"labels": {"a": "b"}, "list": [{"a": 1}], "free": {"any": [1]}})
        );
        let read = crd.read(&stored, "v1");
        assert_eq!(read["apiVersion"], "example.io/v1");
        assert_eq!(read["spec"], json!({}), "v1's spec names only size");
    }

    #[test]
    fn lost_fields_are_named_by_path() {
        let crd = crd();
        assert_eq!(lost_on_write(&crd, "v1"), vec!["size".to_string()]);
        assert!(lost_on_write(&crd, "v2").is_empty());
        assert!(
            field_paths(&crd.schemas["v2"]).contains(&"spec.labels.*".to_string()),
            "{:?}",
            field_paths(&crd.schemas["v2"])
        );
    }
}
