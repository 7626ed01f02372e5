//! Reading manifests as `kubectl apply -f` takes them: several YAML
//! documents per file (JSON is YAML too), and `kind: List`.
//!
//! Every document is read on its own: a bad one is reported with the file,
//! its position, its kind/name and the field path, and the others still load.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

use crate::resources::{Custom, Object, smi};

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
    for doc in docs {
        push(doc.origin, doc.value, &mut out);
    }
    // Documents first, in order; a stream error is reported after them.
    out.errors.sort_by(|a, b| {
        (a.origin.document, a.origin.item).cmp(&(b.origin.document, b.origin.item))
    });
    out
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

fn describe(value: &Value) -> Option<String> {
    let kind = value.get("kind").and_then(Value::as_str)?;
    let meta = value.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(no name)");
    Some(
        match meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
        {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        },
    )
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, (Option<String>, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        (field, e.into_inner().to_string())
    })
}

/// A custom resource with a `spec`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WithSpec<S> {
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: S,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<Value>,
}

/// HTTPRouteGroup v1alpha1/v1alpha2: `matches` at the top level.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TopLevelMatches<M> {
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    matches: Vec<M>,
}

/// TCPRoute v1alpha1/v1alpha2: no fields but metadata.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetadataOnly {
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
}

fn custom<S, T>(
    value: Value,
    convert: impl FnOnce(S) -> Result<T, String>,
) -> Result<Custom<T>, (Option<String>, String)>
where
    S: DeserializeOwned,
{
    let doc: WithSpec<S> = typed(value)?;
    let spec = convert(doc.spec).map_err(|m| split_field(&m))?;
    Ok(Custom {
        api_version: doc.api_version,
        metadata: doc.metadata,
        spec,
    })
}

/// A custom resource whose `spec` may be omitted (every field defaulted).
fn custom_or_default<S: DeserializeOwned + Default>(
    mut value: Value,
) -> Result<Custom<S>, (Option<String>, String)> {
    if let Value::Object(map) = &mut value {
        map.entry("spec")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    custom(value, Ok)
}

/// "spec.x: message" -> (Some("spec.x"), "message").
fn split_field(message: &str) -> (Option<String>, String) {
    match message.split_once(": ") {
        Some((field, rest)) if !field.contains(' ') => (Some(field.to_string()), rest.to_string()),
        _ => (None, message.to_string()),
    }
}

/// Parses one object by its apiVersion and kind.
pub fn parse_object(value: Value) -> Result<Object, LoadError> {
    let object = describe(&value);
    let fail = |field: Option<String>, message: String| LoadError {
        origin: Origin {
            file: String::new(),
            document: 0,
            item: None,
        },
        object: object.clone(),
        field,
        message,
    };
    let Value::Object(map) = &value else {
        return Err(fail(
            None,
            "a manifest must be a mapping with apiVersion and kind".into(),
        ));
    };
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if api_version.is_empty() || kind.is_empty() {
        let missing = if api_version.is_empty() {
            "apiVersion"
        } else {
            "kind"
        };
        return Err(fail(Some(missing.into()), "is required".into()));
    }
    let result = parse_kind(&api_version, &kind, value);
    let mut object = result.map_err(|(field, message)| fail(field, message))?;
    default_namespace(&mut object);
    Ok(object)
}

fn boxed<T: DeserializeOwned>(value: Value) -> Result<Box<T>, (Option<String>, String)> {
    typed(value).map(Box::new)
}

type Parsed = Result<Object, (Option<String>, String)>;

fn parse_kind(api_version: &str, kind: &str, value: Value) -> Parsed {
    use Object as O;
    Ok(match (api_version, kind) {
        ("v1", "Namespace") => O::Namespace(boxed(value)?),
        ("v1", "ServiceAccount") => O::ServiceAccount(boxed(value)?),
        ("v1", "Pod") => O::Pod(boxed(value)?),
        ("v1", "Service") => O::Service(boxed(value)?),
        ("v1", "ConfigMap") => O::ConfigMap(boxed(value)?),
        ("discovery.k8s.io/v1", "EndpointSlice") => O::EndpointSlice(boxed(value)?),
        ("apps/v1", "Deployment") => O::Deployment(boxed(value)?),

        ("access.smi-spec.io/v1alpha2", "TrafficTarget") => {
            O::TrafficTarget(custom(value, |s: smi::access::SpecV1alpha2| Ok(s.into()))?)
        }
        ("access.smi-spec.io/v1alpha3", "TrafficTarget") => {
            O::TrafficTarget(custom(value, |s: smi::access::SpecV1alpha3| Ok(s.into()))?)
        }

        ("specs.smi-spec.io/v1alpha1", "HTTPRouteGroup") => {
            let doc: TopLevelMatches<smi::specs::MatchV1alpha1> = typed(value)?;
            O::HttpRouteGroup(Custom {
                api_version: doc.api_version,
                metadata: doc.metadata,
                spec: smi::specs::group_v1alpha1(doc.matches),
            })
        }
        ("specs.smi-spec.io/v1alpha2", "HTTPRouteGroup") => {
            let doc: TopLevelMatches<smi::specs::Match> = typed(value)?;
            O::HttpRouteGroup(Custom {
                api_version: doc.api_version,
                metadata: doc.metadata,
                spec: smi::specs::group(doc.matches),
            })
        }
        ("specs.smi-spec.io/v1alpha3" | "specs.smi-spec.io/v1alpha4", "HTTPRouteGroup") => {
            O::HttpRouteGroup(custom(value, |s: smi::specs::GroupSpec| {
                Ok(smi::specs::group(s.matches))
            })?)
        }

        ("specs.smi-spec.io/v1alpha1" | "specs.smi-spec.io/v1alpha2", "TCPRoute") => {
            let doc: MetadataOnly = typed(value)?;
            O::TcpRoute(Custom {
                api_version: doc.api_version,
                metadata: doc.metadata,
                spec: smi::PortRoute { ports: Vec::new() },
            })
        }
        ("specs.smi-spec.io/v1alpha3", "TCPRoute") => {
            O::TcpRoute(custom(value, |_: smi::specs::EmptySpec| {
                Ok(smi::PortRoute { ports: Vec::new() })
            })?)
        }
        ("specs.smi-spec.io/v1alpha4", "TCPRoute") => {
            O::TcpRoute(custom(value, |s: smi::specs::PortRouteSpec| Ok(s.into()))?)
        }
        ("specs.smi-spec.io/v1alpha4", "UDPRoute") => {
            O::UdpRoute(custom(value, |s: smi::specs::PortRouteSpec| Ok(s.into()))?)
        }

        ("split.smi-spec.io/v1alpha1", "TrafficSplit") => {
            O::TrafficSplit(custom(value, |s: smi::split::SpecV1alpha1| s.try_into())?)
        }
        ("split.smi-spec.io/v1alpha2", "TrafficSplit") => {
            O::TrafficSplit(custom(value, |s: smi::split::SpecV1alpha2| Ok(s.into()))?)
        }
        ("split.smi-spec.io/v1alpha3" | "split.smi-spec.io/v1alpha4", "TrafficSplit") => {
            O::TrafficSplit(custom(value, |s: smi::split::SpecV1alpha4| Ok(s.into()))?)
        }

        (
            "config.openservicemesh.io/v1alpha1" | "config.openservicemesh.io/v1alpha2",
            "MeshConfig",
        ) => O::MeshConfig(Box::new(custom_or_default(value)?)),
        ("policy.openservicemesh.io/v1alpha1", "Egress") => O::Egress(custom(value, Ok)?),
        ("policy.openservicemesh.io/v1alpha1", "IngressBackend") => {
            O::IngressBackend(custom(value, Ok)?)
        }
        ("policy.openservicemesh.io/v1alpha1", "Retry") => O::Retry(custom(value, Ok)?),
        ("policy.openservicemesh.io/v1alpha1", "UpstreamTrafficSetting") => {
            O::UpstreamTrafficSetting(custom(value, Ok)?)
        }

        _ => {
            return Err((
                None,
                format!("kind {kind} in apiVersion {api_version} is not supported by the mesh"),
            ));
        }
    })
}

/// Namespaced objects without a namespace go to "default", as kubectl does.
fn default_namespace(object: &mut Object) {
    if matches!(object, Object::Namespace(_)) {
        return;
    }
    let meta = object.metadata_mut();
    if meta.namespace.as_deref().unwrap_or("").is_empty() {
        meta.namespace = Some("default".into());
    }
}

#[cfg(test)]
mod tests;
