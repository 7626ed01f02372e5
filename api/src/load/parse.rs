//! One object by its apiVersion and kind: every served version of every
//! kind the mesh reads, converted to the model, with the field path of
//! what is wrong.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

use super::{LoadError, Origin};
use crate::resources::{Custom, Object, gateway, smi};

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

fn shared<T: DeserializeOwned>(value: Value) -> Result<Arc<T>, (Option<String>, String)> {
    typed(value).map(Arc::new)
}

type Parsed = Result<Object, (Option<String>, String)>;

fn parse_kind(api_version: &str, kind: &str, value: Value) -> Parsed {
    use Object as O;
    Ok(match (api_version, kind) {
        ("v1", "Namespace") => O::Namespace(shared(value)?),
        ("v1", "ServiceAccount") => O::ServiceAccount(shared(value)?),
        ("v1", "Pod") => {
            let pod: k8s_openapi::api::core::v1::Pod = typed(value)?;
            O::Pod(Arc::new(pod.into()))
        }
        ("v1", "Service") => O::Service(shared(value)?),
        ("v1", "ConfigMap") => O::ConfigMap(shared(value)?),
        ("v1", "Secret") => O::Secret(shared(value)?),
        ("discovery.k8s.io/v1", "EndpointSlice") => O::EndpointSlice(shared(value)?),
        ("apps/v1", "Deployment") => O::Deployment(shared(value)?),
        ("apps/v1", "StatefulSet") => O::StatefulSet(shared(value)?),
        ("batch/v1", "Job") => O::Job(shared(value)?),

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

        ("gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1", "HTTPRoute") => {
            O::HttpRoute(custom(value, |s: gateway::HttpRouteSpec| Ok(s))?)
        }
        ("gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1alpha2", "GRPCRoute") => {
            O::GrpcRoute(custom(value, |s: gateway::GrpcRouteSpec| Ok(s))?)
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
