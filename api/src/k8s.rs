//! Reading Kubernetes objects the way the mesh needs them.

use k8s_openapi::{
    api::core::v1::{Service, ServicePort},
    apimachinery::pkg::util::intstr::IntOrString,
};

use crate::{resources::PodView, v1::Protocol};

/// The ServiceAccount a pod runs as.
pub fn service_account(pod: &impl PodView) -> &str {
    pod.service_account_name()
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
}

/// Whether a Service's selector picks a pod (an empty selector picks none:
/// such a Service's endpoints are managed by hand).
pub fn selects(service: &Service, pod: &impl PodView) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if selector.is_empty() || service.metadata.namespace != pod.meta().namespace {
        return false;
    }
    let labels = pod.meta().labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The pod port a Service port sends to: a number, a named container port,
/// or (unset) the Service port itself.
pub fn target_port(port: &ServicePort, pod: Option<&impl PodView>) -> Option<u16> {
    match &port.target_port {
        None => u16::try_from(port.port).ok(),
        Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
        Some(IntOrString::String(name)) => pod?
            .containers()
            .flat_map(|(_, ports)| ports)
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// Whether a Service port carries TCP (the mesh intercepts TCP only).
pub fn is_tcp(port: &ServicePort) -> bool {
    port.protocol.as_deref().is_none_or(|p| p == "TCP")
}

/// A port's application protocol: `appProtocol`, else the port-name prefix
/// (`http-`, `grpc-`, `tcp-server-first-`, `tcp-`), else detected on the wire.
pub fn protocol(port: &ServicePort) -> Protocol {
    if let Some(app) = port.app_protocol.as_deref() {
        match app.to_ascii_lowercase().as_str() {
            "http" => return Protocol::Http1,
            "http2" | "h2c" | "kubernetes.io/h2c" => return Protocol::Http2,
            "grpc" => return Protocol::Grpc,
            "tcp" => return Protocol::Tcp,
            "tcp-server-first" => return Protocol::TcpServerFirst,
            _ => {}
        }
    }
    let name = port.name.as_deref().unwrap_or("");
    if name == "http" || name.starts_with("http-") {
        Protocol::Http1
    } else if name == "grpc" || name.starts_with("grpc-") {
        Protocol::Grpc
    } else if name.starts_with("tcp-server-first") {
        Protocol::TcpServerFirst
    } else if name == "tcp" || name.starts_with("tcp-") {
        Protocol::Tcp
    } else {
        Protocol::Detect
    }
}

/// The workload that owns a pod, for metrics: (kind, name). The one rule
/// the injector (the proxy's `OSM_WORKLOAD_*`) and the compiler (the
/// destination labels of outbound metrics) share, so both ends of a request
/// name a workload alike:
/// - the controlling owner (else the first owner) names the workload;
/// - a ReplicaSet named `<deployment>-<pod-template-hash>` (the pod's own
///   `pod-template-hash` label) is its Deployment's; any other ReplicaSet
///   is itself (a dash in a name proves nothing);
/// - a pod without owners is its own workload.
pub fn workload(pod: &impl PodView) -> (String, String) {
    let meta = pod.meta();
    let name = meta.name.clone().unwrap_or_default();
    let owners = meta.owner_references.as_deref().unwrap_or_default();
    let Some(owner) = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
    else {
        return ("Pod".into(), name);
    };
    let hash = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(crate::compat::POD_TEMPLATE_HASH));
    match (owner.kind.as_str(), hash) {
        ("ReplicaSet", Some(hash)) => match owner.name.strip_suffix(&format!("-{hash}")) {
            Some(deployment) if !deployment.is_empty() => ("Deployment".into(), deployment.into()),
            _ => ("ReplicaSet".into(), owner.name.clone()),
        },
        (kind, _) => (kind.into(), owner.name.clone()),
    }
}

/// Whether the injector gave the pod its sidecar (the proxy container,
/// as a native sidecar or, from older injectors, an app container).
pub fn has_proxy(pod: &impl PodView) -> bool {
    pod.containers()
        .map(|(name, _)| name)
        .chain(pod.init_container_names())
        .any(|name| name == crate::compat::PROXY_CONTAINER)
}

/// The pod's IP, once it has one.
pub fn pod_ip(pod: &impl PodView) -> Option<&str> {
    pod.pod_ip().filter(|ip| !ip.is_empty())
}

/// Whether a pod may receive a Service's traffic, as the EndpointSlice
/// controller decides it: not terminating (`deletionTimestamp`), and not
/// reported unready (a `Ready` condition that is not `True`). A pod with
/// no conditions at all (described by hand in a manifests directory) is
/// taken at its word.
pub fn pod_serves(pod: &impl PodView) -> bool {
    if pod.meta().deletion_timestamp.is_some() {
        return false;
    }
    pod.ready().is_none_or(|ready| ready == "True")
}

/// "ip:port", with brackets for IPv6.
pub fn socket_address(ip: &str, port: u16) -> Option<String> {
    let ip: std::net::IpAddr = ip.parse().ok()?;
    Some(std::net::SocketAddr::new(ip, port).to_string())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use k8s_openapi::api::core::v1::Pod;

    use super::*;

    fn pod(hash: Option<&str>, owners: &[(&str, &str, Option<bool>)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-7d9f-x2x4k".into()),
                labels: hash.map(|h| [(crate::compat::POD_TEMPLATE_HASH.into(), h.into())].into()),
                owner_references: (!owners.is_empty()).then(|| {
                    owners
                        .iter()
                        .map(|(kind, name, controller)| OwnerReference {
                            kind: (*kind).into(),
                            name: (*name).into(),
                            controller: *controller,
                            ..OwnerReference::default()
                        })
                        .collect()
                }),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn one_workload_rule_for_every_owner() {
        let cases: &[(&str, Pod, (&str, &str))] = &[
            ("no owner", pod(None, &[]), ("Pod", "web-7d9f-x2x4k")),
            (
                "a Deployment's ReplicaSet",
                pod(Some("7d9f"), &[("ReplicaSet", "web-7d9f", Some(true))]),
                ("Deployment", "web"),
            ),
            (
                "a dashed Deployment name",
                pod(
                    Some("5c4b"),
                    &[("ReplicaSet", "book-store-v2-5c4b", Some(true))],
                ),
                ("Deployment", "book-store-v2"),
            ),
            (
                "a ReplicaSet of its own (no hash label): a dash proves nothing",
                pod(None, &[("ReplicaSet", "cache-east", Some(true))]),
                ("ReplicaSet", "cache-east"),
            ),
            (
                "a hash that is not the name's suffix",
                pod(Some("aaaa"), &[("ReplicaSet", "web-7d9f", Some(true))]),
                ("ReplicaSet", "web-7d9f"),
            ),
            (
                "a StatefulSet",
                pod(None, &[("StatefulSet", "db", Some(true))]),
                ("StatefulSet", "db"),
            ),
            (
                "the controlling owner wins over the first",
                pod(
                    Some("7d9f"),
                    &[
                        ("ConfigMap", "extra", None),
                        ("ReplicaSet", "web-7d9f", Some(true)),
                    ],
                ),
                ("Deployment", "web"),
            ),
            (
                "no controlling owner: the first",
                pod(None, &[("Job", "migrate", None)]),
                ("Job", "migrate"),
            ),
        ];
        for (case, pod, (kind, name)) in cases {
            assert_eq!(
                workload(pod),
                ((*kind).to_string(), (*name).to_string()),
                "{case}"
            );
        }
    }

    #[test]
    fn a_pod_serves_unless_terminating_or_reported_unready() {
        let pod = |value: serde_json::Value| -> Pod { serde_json::from_value(value).unwrap() };
        let cases = [
            (serde_json::json!({"status": {"podIP": "10.0.0.1"}}), true),
            (
                serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
                true,
            ),
            (
                serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
                false,
            ),
            (
                serde_json::json!({"status": {"conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "Unknown"}]}}),
                false,
            ),
            (
                serde_json::json!({"metadata": {"deletionTimestamp": "2026-12-03T00:00:00Z"},
                                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
                false,
            ),
        ];
        for (value, serves) in cases {
            assert_eq!(pod_serves(&pod(value.clone())), serves, "{value}");
        }
    }
}
