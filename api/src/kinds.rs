//! The kinds the mesh reads from a cluster, at the versions OSM v1.2
//! stores, and an API object turned into the compiler's model. Pure: the
//! controller's watchers, `osm policy check-pods` and `osm support
//! bug-report` all read this list and convert with this function.

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
        "v1alpha2",
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
];

/// Converts an API object (as the API server returns it) into the
/// compiler's model. List items may come without apiVersion and kind; they
/// are filled in from the watched kind. Server-side bookkeeping is dropped:
/// `managedFields` always, `status` of custom resources (it is their
/// output, not their input).
pub fn convert(watched: &WatchedKind, mut value: Value) -> Result<Object, String> {
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), watched.api_version().into());
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
}
