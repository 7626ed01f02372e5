//! The kinds the mesh reads from a cluster, at the versions the chart's
//! CRDs store, and an API object turned into the compiler's model. Pure:
//! the controller's watchers, `osm policy check-pods` and `osm support
//! bug-report` all read this list and convert with this function.
//!
//! Why the storage version: the CRDs serve several versions with
//! `conversion: None`, so the API server only relabels `apiVersion` and
//! prunes by the schema of the version read. Read at an older version, it
//! drops what that version lacks (a v1alpha4 TrafficSplit's `matches`
//! read at v1alpha2). Read at the storage version, whose schema holds the
//! fields of every served version (checked by a test of the chart), it
//! returns what was written, in the shape of the version it was written
//! at; [`stored_shape`] tells which shape that is.

use serde_json::Value;

use crate::{load::parse_object, resources::Object};

/// A kind the mesh watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedKind {
    /// The API group ("" for the core group).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The resource name in URLs.
    pub plural: &'static str,
    /// A mesh CRD (may be absent from a cluster) rather than a core kind.
    pub custom: bool,
}

impl WatchedKind {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn core(version: &'static str, kind: &'static str, plural: &'static str) -> WatchedKind {
    WatchedKind {
        group: "",
        version,
        kind,
        plural,
        custom: false,
    }
}

const fn custom(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> WatchedKind {
    WatchedKind {
        group,
        version,
        kind,
        plural,
        custom: true,
    }
}

/// Every kind the compiler reads.
pub const WATCHED_KINDS: &[WatchedKind] = &[
    core("v1", "Namespace", "namespaces"),
    core("v1", "ServiceAccount", "serviceaccounts"),
    core("v1", "Pod", "pods"),
    core("v1", "Service", "services"),
    WatchedKind {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        custom: false,
    },
    custom(
        "access.smi-spec.io",
        "v1alpha3",
        "TrafficTarget",
        "traffictargets",
    ),
    custom(
        "specs.smi-spec.io",
        "v1alpha4",
        "HTTPRouteGroup",
        "httproutegroups",
    ),
    custom("specs.smi-spec.io", "v1alpha4", "TCPRoute", "tcproutes"),
    custom("specs.smi-spec.io", "v1alpha4", "UDPRoute", "udproutes"),
    custom(
        "split.smi-spec.io",
        "v1alpha4",
        "TrafficSplit",
        "trafficsplits",
    ),
    custom(
        "config.openservicemesh.io",
        "v1alpha2",
        "MeshConfig",
        "meshconfigs",
    ),
    custom(
        "policy.openservicemesh.io",
        "v1alpha1",
        "Egress",
        "egresses",
    ),
    custom(
        "policy.openservicemesh.io",
        "v1alpha1",
        "IngressBackend",
        "ingressbackends",
    ),
    custom("policy.openservicemesh.io", "v1alpha1", "Retry", "retries"),
    custom(
        "policy.openservicemesh.io",
        "v1alpha1",
        "UpstreamTrafficSetting",
        "upstreamtrafficsettings",
    ),
    custom("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
    custom("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes"),
];

/// The version whose shape an object read at `watched`'s (storage)
/// version has. An object written at an older version is stored as
/// written with only its apiVersion relabelled, so its shape tells its
/// version:
///
/// | kind | stored shape | read as |
/// |---|---|---|
/// | HTTPRouteGroup | `matches` at the top level, no `spec` | v1alpha2 (v1alpha1's matches are a subset) |
/// | TCPRoute | no `spec` | v1alpha2 |
/// | TrafficSplit | a weight that is not a whole number (`500m`, `"1"`, `1.5`) | v1alpha1 (quantities) |
/// | TrafficTarget | `spec.destination.port` | v1alpha2 |
///
/// Anything else is read at the watched version.
pub fn stored_shape(watched: &WatchedKind, value: &Value) -> String {
    let legacy = |version: &str| format!("{}/{version}", watched.group);
    let spec = &value["spec"];
    match (watched.group, watched.kind) {
        ("specs.smi-spec.io", "HTTPRouteGroup")
            if spec.is_null() && !value["matches"].is_null() =>
        {
            legacy("v1alpha2")
        }
        ("specs.smi-spec.io", "TCPRoute") if spec.is_null() => legacy("v1alpha2"),
        ("split.smi-spec.io", "TrafficSplit")
            if spec["backends"].as_array().is_some_and(|backends| {
                backends.iter().any(|b| {
                    let weight = &b["weight"];
                    !weight.is_null() && !weight.is_u64()
                })
            }) =>
        {
            legacy("v1alpha1")
        }
        ("access.smi-spec.io", "TrafficTarget") if !spec["destination"]["port"].is_null() => {
            legacy("v1alpha2")
        }
        _ => watched.api_version(),
    }
}

/// Converts an API object (as the API server returns it) into the
/// compiler's model. List items may come without apiVersion and kind; they
/// are filled in from the watched kind, in the shape the object has
/// ([`stored_shape`]). Server-side bookkeeping is dropped: `managedFields`
/// always, `status` of custom resources (it is their output, not their
/// input).
pub fn convert(watched: &WatchedKind, mut value: Value) -> Result<Object, String> {
    let api_version = stored_shape(watched, &value);
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), api_version.into());
        map.insert("kind".into(), watched.kind.into());
        if watched.custom {
            map.remove("status");
        }
        if let Some(meta) = map.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
        }
    }
    parse_object(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_watched_kind_loads_and_bookkeeping_is_dropped() {
        for watched in WATCHED_KINDS {
            let object = json!({
                "metadata": {"name": "x", "namespace": "shop", "managedFields": [{"manager": "kubectl"}]},
                "spec": {},
                "status": {"phase": "whatever"},
            });
            // Every kind is one the loader knows (a spec may still be
            // refused by validation, not by the loader).
            let converted = convert(watched, object);
            if let Err(e) = &converted {
                assert!(!e.contains("not supported"), "{}: {e}", watched.kind);
            }
        }
        let meshconfig = WATCHED_KINDS
            .iter()
            .find(|w| w.kind == "MeshConfig")
            .expect("watched");
        assert_eq!(
            meshconfig.api_version(),
            "config.openservicemesh.io/v1alpha2"
        );
        let pod = WATCHED_KINDS
            .iter()
            .find(|w| w.kind == "Pod")
            .expect("watched");
        assert_eq!(pod.api_version(), "v1");
        let converted = convert(
            pod,
            json!({"metadata": {"name": "web", "namespace": "shop", "managedFields": [{}]}}),
        )
        .expect("a pod");
        assert_eq!(converted.kind(), "Pod");
        assert_eq!(converted.key().name, "web");
    }

    fn watched(kind: &str) -> &'static WatchedKind {
        WATCHED_KINDS
            .iter()
            .find(|w| w.kind == kind)
            .expect("watched")
    }

    #[test]
    fn the_stored_shape_tells_the_version_an_object_was_written_at() {
        let cases = [
            (
                "HTTPRouteGroup",
                json!({"matches": [{"name": "a"}]}),
                "specs.smi-spec.io/v1alpha2",
            ),
            (
                "HTTPRouteGroup",
                json!({"spec": {"matches": []}}),
                "specs.smi-spec.io/v1alpha4",
            ),
            ("HTTPRouteGroup", json!({}), "specs.smi-spec.io/v1alpha4"),
            ("TCPRoute", json!({}), "specs.smi-spec.io/v1alpha2"),
            (
                "TCPRoute",
                json!({"spec": {}}),
                "specs.smi-spec.io/v1alpha4",
            ),
            (
                "TrafficSplit",
                json!({"spec": {"backends": [{"weight": 1}, {"weight": "500m"}]}}),
                "split.smi-spec.io/v1alpha1",
            ),
            (
                "TrafficSplit",
                json!({"spec": {"backends": [{"weight": 1.5}]}}),
                "split.smi-spec.io/v1alpha1",
            ),
            (
                "TrafficSplit",
                json!({"spec": {"backends": [{"weight": 90}, {"weight": 10}]}}),
                "split.smi-spec.io/v1alpha4",
            ),
            (
                "TrafficSplit",
                json!({"spec": {"backends": [{"service": "a"}]}}),
                "split.smi-spec.io/v1alpha4",
            ),
            (
                "TrafficTarget",
                json!({"spec": {"destination": {"port": 80}}}),
                "access.smi-spec.io/v1alpha2",
            ),
            (
                "TrafficTarget",
                json!({"spec": {"destination": {"name": "a"}}}),
                "access.smi-spec.io/v1alpha3",
            ),
            (
                "MeshConfig",
                json!({"spec": {}}),
                "config.openservicemesh.io/v1alpha2",
            ),
        ];
        for (kind, object, expected) in cases {
            assert_eq!(
                stored_shape(watched(kind), &object),
                expected,
                "{kind} {object}"
            );
        }
    }

    #[test]
    fn objects_written_at_older_versions_convert_from_storage() {
        let meta = json!({"name": "x", "namespace": "shop"});
        let group = convert(
            watched("HTTPRouteGroup"),
            json!({"metadata": meta, "matches": [{"name": "get", "pathRegex": "/a", "methods": ["GET"]}]}),
        )
        .expect("a v1alpha1 HTTPRouteGroup");
        let Object::HttpRouteGroup(group) = group else {
            panic!("{group:?}")
        };
        assert_eq!(group.spec.matches.len(), 1);
        assert_eq!(group.spec.matches[0].path_regex.as_deref(), Some("/a"));

        let split = convert(
            watched("TrafficSplit"),
            json!({"metadata": meta, "spec": {"service": "s", "backends": [
                {"service": "v1", "weight": "500m"}, {"service": "v2", "weight": 1}]}}),
        )
        .expect("a v1alpha1 TrafficSplit");
        let Object::TrafficSplit(split) = split else {
            panic!("{split:?}")
        };
        let weights: Vec<u64> = split.spec.backends.iter().map(|b| b.weight).collect();
        assert_eq!(weights, [500, 1000], "quantities, in thousandths");

        let target = convert(
            watched("TrafficTarget"),
            json!({"metadata": meta, "spec": {
                "destination": {"kind": "ServiceAccount", "name": "store", "namespace": "shop", "port": 8080},
                "sources": [{"kind": "ServiceAccount", "name": "buyer", "namespace": "shop"}]}}),
        )
        .expect("a v1alpha2 TrafficTarget");
        let Object::TrafficTarget(target) = target else {
            panic!("{target:?}")
        };
        assert_eq!(target.spec.destination_port, Some(8080));

        let route =
            convert(watched("TCPRoute"), json!({"metadata": meta})).expect("a v1alpha1 TCPRoute");
        assert_eq!(route.kind(), "TCPRoute");
    }
}
