//! Reading manifests as `kubectl apply -f` takes them: several YAML
//! documents per file (JSON is YAML too), and `kind: List`.
//!
//! Every document is read on its own: a bad one is reported with the file,
//! its position, its kind/name and the field path, and the others still load.

mod parse;

pub use parse::parse_object;

use serde::Deserialize;
use serde_json::Value;

use crate::resources::Object;

/// Where an object came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// 1-based position of the YAML document in the file.
    pub document: usize,
    /// 0-based position inside a `kind: List`.
    pub item: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)?;
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        Ok(())
    }
}

/// A loaded object and its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub origin: Origin,
    pub object: Object,
}

/// A document that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {}{message}", object.as_ref().map(|o| format!(" ({o})")).unwrap_or_default(), field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct LoadError {
    pub origin: Origin,
    /// "Kind namespace/name" when the document says so.
    pub object: Option<String>,
    /// The field path, when the problem is in one field.
    pub field: Option<String>,
    pub message: String,
}

/// Everything one input yielded.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    pub objects: Vec<Loaded>,
    pub errors: Vec<LoadError>,
}

/// The manifest files below `dir` (`.yaml`, `.yml`, `.json`), recursively,
/// in the order the directory lists them (callers sort when order matters).
pub fn manifest_files(
    dir: &std::path::Path,
    out: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            manifest_files(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// One document of a manifest stream (a `kind: List`'s items one by one).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub origin: Origin,
    pub value: Value,
}

/// Splits one file's text into documents as `kubectl apply -f` reads it:
/// every YAML document (empty ones skipped) and the items of a `kind: List`
/// one by one. The one splitter of the mesh: the loader below and
/// `osm local apply` both read manifests through it. A YAML syntax error
/// ends the stream (it cannot be resynchronised); a List whose `items` is
/// not a list is an error of that document.
pub fn documents(file: &str, text: &str) -> (Vec<Document>, Vec<LoadError>) {
    let (mut docs, mut errors) = (Vec::new(), Vec::new());
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let origin = Origin {
            file: file.to_string(),
            document: i + 1,
            item: None,
        };
        let value = match Value::deserialize(document) {
            Ok(Value::Null) => continue,
            Ok(value) => value,
            Err(e) => {
                errors.push(LoadError {
                    origin,
                    object: None,
                    field: None,
                    message: format!("not valid YAML: {e}"),
                });
                break;
            }
        };
        if value.get("kind").and_then(Value::as_str) != Some("List") {
            docs.push(Document { origin, value });
            continue;
        }
        match value.get("items") {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    docs.push(Document {
                        origin: Origin {
                            item: Some(i),
                            ..origin.clone()
                        },
                        value: item.clone(),
                    });
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => errors.push(LoadError {
                origin,
                object: Some("List".into()),
                field: Some("items".into()),
                message: "must be a list of objects".into(),
            }),
        }
    }
    (docs, errors)
}

/// Loads every document of one file's text.
pub fn load_str(file: &str, text: &str) -> LoadOutcome {
    let (docs, errors) = documents(file, text);
    let mut out = LoadOutcome {
        objects: Vec::new(),
        errors,
    };
    for doc in docs.into_iter().filter(|d| !is_record(&d.value)) {
        push(doc.origin, doc.value, &mut out);
    }
    // Documents first, in order; a stream error is reported after them.
    out.errors.sort_by(|a, b| {
        (a.origin.document, a.origin.item).cmp(&(b.origin.document, b.origin.item))
    });
    out
}

/// Events (core/v1 and events.k8s.io/v1) say what happened, never what
/// should be: a directory of manifests may hold them (a cluster dump, local
/// mode's store, which keeps its pods' events beside the objects) and the
/// mesh reads none of their fields, so they are passed over, not reported
/// as a kind the mesh does not support.
fn is_record(value: &Value) -> bool {
    let text = |field: &str| value.get(field).and_then(Value::as_str);
    text("kind") == Some("Event") && matches!(text("apiVersion"), Some("v1" | "events.k8s.io/v1"))
}

fn push(origin: Origin, value: Value, out: &mut LoadOutcome) {
    match parse_object(value) {
        Ok(object) => out.objects.push(Loaded { origin, object }),
        Err(mut e) => {
            e.origin = origin;
            out.errors.push(e);
        }
    }
}

#[cfg(test)]
mod tests;
