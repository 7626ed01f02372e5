//! Reading what `apply -f` and `delete -f` are given: files, directories
//! (recursively, in name order) or `-` for standard input; every YAML
//! document, `kind: List` items included, checked with the mesh's own
//! loader and validation before anything is stored.

use std::{io::Read as _, path::PathBuf};

use anyhow::Context as _;
use osm_api::{
    load::parse_object,
    validate::{Severity, validate},
};
use serde_json::Value;

use osm_api::load::manifest_files;

use super::store::{Key, check_name, is_namespaced};

/// One object as written in the input, and where.
#[derive(Debug, Clone)]
pub struct Document {
    pub origin: String,
    pub value: Value,
}

/// Every document of the inputs.
pub fn read_inputs(paths: &[PathBuf]) -> anyhow::Result<Vec<Document>> {
    let mut files = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            files.push(("<stdin>".to_string(), text));
        } else if path.is_dir() {
            let mut found = Vec::new();
            manifest_files(path, &mut found)
                .with_context(|| format!("cannot list {}", path.display()))?;
            found.sort();
            if found.is_empty() {
                anyhow::bail!("{}: no .yaml, .yml or .json files", path.display());
            }
            for file in found {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                files.push((file.display().to_string(), text));
            }
        } else {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            files.push((path.display().to_string(), text));
        }
    }
    let mut docs = Vec::new();
    for (origin, text) in files {
        docs.extend(split_documents(&origin, &text).map_err(anyhow::Error::msg)?);
    }
    Ok(docs)
}

/// The documents of one file's text; `kind: List` is unpacked (the
/// mesh's one splitter, [`osm_api::load::documents`]).
pub fn split_documents(origin: &str, text: &str) -> Result<Vec<Document>, String> {
    let (docs, errors) = osm_api::load::documents(origin, text);
    if let Some(error) = errors.first() {
        return Err(error.to_string());
    }
    Ok(docs
        .into_iter()
        .map(|d| Document {
            origin: d.origin.to_string(),
            value: d.value,
        })
        .collect())
}

/// A checked object, ready to be stored.
#[derive(Debug, Clone)]
pub struct Checked {
    pub key: Key,
    /// As given, with its namespace filled in.
    pub value: Value,
    pub origin: String,
}

/// What checking found: the objects, warnings, and errors (any error
/// means nothing is applied).
#[derive(Debug, Default)]
pub struct CheckOutcome {
    pub objects: Vec<Checked>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

/// Order of application: what others need first, whatever the input's
/// order (namespaces, then identities and configuration, then services,
/// then policy, then workloads).
fn rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "ServiceAccount" | "ConfigMap" => 1,
        "MeshConfig" => 2,
        "Service" | "EndpointSlice" => 3,
        "Deployment" | "StatefulSet" | "Job" | "Pod" => 5,
        _ => 4,
    }
}

/// Checks documents as the API server and the mesh's validating webhook
/// would. `namespace` is `-n`: the default for objects that name none,
/// and a conflict for those naming another.
pub fn check(docs: Vec<Document>, namespace: Option<&str>) -> CheckOutcome {
    let mut out = CheckOutcome::default();
    for Document { origin, mut value } in docs {
        let described = Key::of(&value)
            .map(|k| format!(" ({k})"))
            .unwrap_or_default();
        let at = format!("{origin}{described}");
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if is_namespaced(&kind) {
            let given = value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string);
            match (given, namespace) {
                (Some(g), Some(n)) if g != n => {
                    out.errors.push(format!(
                        "{at}: the object's namespace {g:?} does not match -n {n:?}"
                    ));
                    continue;
                }
                (Some(_), _) => {}
                (None, n) => {
                    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.insert("namespace".into(), Value::from(n.unwrap_or("default")));
                    }
                }
            }
        }
        let object = match parse_object(value.clone()) {
            Ok(o) => o,
            Err(e) => {
                let field = e.field.map(|f| format!("{f}: ")).unwrap_or_default();
                out.errors.push(format!("{at}: {field}{}", e.message));
                continue;
            }
        };
        let Some(key) = Key::of(&value) else {
            out.errors.push(format!("{at}: metadata.name is required"));
            continue;
        };
        let mut bad = false;
        for (what, name) in [("namespace", &key.namespace), ("name", &key.name)] {
            if (what == "name" || is_namespaced(&kind))
                && let Err(e) = check_name(what, name)
            {
                out.errors.push(format!("{at}: {e}"));
                bad = true;
            }
        }
        for problem in crate::names::object(&kind, &value) {
            out.errors.push(format!("{at}: {problem}"));
            bad = true;
        }
        for warning in crate::unenforced::warnings(&kind, &value) {
            out.warnings.push(format!("{at}: {warning}"));
        }
        for problem in validate(&object) {
            let text = format!("{at}: {}: {}", problem.field, problem.message);
            match problem.severity {
                Severity::Reject => {
                    out.errors.push(text);
                    bad = true;
                }
                Severity::Warn => out.warnings.push(text),
            }
        }
        if !bad {
            out.objects.push(Checked { key, value, origin });
        }
    }
    out.objects.sort_by_key(|c| rank(&c.key.kind));
    out
}

/// How kubectl names a resource in its messages: `deployment.apps/x`.
pub fn resource_name(value: &Value, key: &Key) -> String {
    let group = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.split_once('/'))
        .map(|(g, _)| format!(".{g}"))
        .unwrap_or_default();
    format!("{}{group}/{}", key.kind.to_ascii_lowercase(), key.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: x, command: [web]}]}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: shop}, spec: {ports: [{port: 80}]}}
"#;

    #[test]
    fn documents_are_checked_defaulted_and_ordered() {
        let docs = split_documents("in.yaml", INPUT).unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[2].origin, "in.yaml: document 2, items[1]");
        let out = check(docs, Some("shop"));
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let keys: Vec<String> = out.objects.iter().map(|c| c.key.to_string()).collect();
        assert_eq!(
            keys,
            ["Namespace shop", "Service shop/web", "Deployment shop/web"]
        );
        assert_eq!(
            resource_name(&out.objects[2].value, &out.objects[2].key),
            "deployment.apps/web"
        );
    }

    #[test]
    fn errors_name_the_document_and_field() {
        let docs = split_documents(
            "bad.yaml",
            "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: s, namespace: a}\nspec: {service: x, backends: [{service: y, weight: -1}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name, namespace: a}\n",
        )
        .unwrap();
        let out = check(docs, None);
        assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
        assert!(
            out.errors[0].starts_with("bad.yaml: document 1 (TrafficSplit a/s)"),
            "{}",
            out.errors[0]
        );
        assert!(out.errors[1].contains("Bad_Name"), "{}", out.errors[1]);
        assert!(out.objects.is_empty());
    }

    /// What `osm local apply` prints for a MeshConfig field the mesh does
    /// not act on: applied, with a warning naming the field.
    #[test]
    fn an_unenforced_field_is_applied_with_a_warning_naming_it() {
        let docs = split_documents(
            "mesh.yaml",
            "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
             metadata: {name: osm-mesh-config, namespace: osm-system}\n\
             spec: {sidecar: {envoyImage: envoyproxy/envoy:v1.22.2}}\n",
        )
        .unwrap();
        let out = check(docs, None);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.objects.len(), 1);
        assert_eq!(
            out.warnings,
            [
                "mesh.yaml: document 1 (MeshConfig osm-system/osm-mesh-config): spec.sidecar.envoyImage: \
              accepted for compatibility, has no effect: the sidecar is osm-proxy, not Envoy"
            ]
        );
    }

    #[test]
    fn a_namespace_conflict_with_dash_n_is_refused() {
        let docs = split_documents(
            "x.yaml",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: one}\n",
        )
        .unwrap();
        let out = check(docs, Some("two"));
        assert!(out.errors[0].contains("does not match -n \"two\""));
    }

    #[test]
    fn broken_yaml_is_reported_with_its_file() {
        let err = split_documents("y.yaml", "a: [\n").unwrap_err();
        assert!(
            err.starts_with("y.yaml: document 1: not valid YAML"),
            "{err}"
        );
        // Split as the controller's loader splits: a List whose items are
        // not a list is refused, not read as empty.
        let err =
            split_documents("l.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n").unwrap_err();
        assert_eq!(
            err,
            "l.yaml: document 1 (List): items: must be a list of objects"
        );
    }
}
