//! A Service port's endpoints: addresses from EndpointSlices (else from the
//! pods it selects), each with the identity its proxy must prove when the
//! pod is meshed, and the workload names its metrics carry.

use k8s_openapi::api::core::v1::{Service, ServicePort};

use super::{Index, spiffe_id};
use crate::{
    compat::{SERVICE_NAME_LABEL, SIDECAR_INJECTION as INJECTION},
    k8s,
    resources::MeshPod,
    v1,
};

/// Whether a pod runs a sidecar: its namespace is monitored and neither the
/// pod nor (without a pod annotation) its namespace turns injection off.
fn is_meshed(index: &Index, pod: &MeshPod) -> bool {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    if !index.is_monitored(ns) {
        return false;
    }
    let annotation = |a: Option<&std::collections::BTreeMap<String, String>>| {
        a.and_then(|a| a.get(INJECTION)).cloned()
    };
    let setting = annotation(pod.metadata.annotations.as_ref()).or_else(|| {
        annotation(
            index
                .namespaces
                .get(ns)
                .and_then(|n| n.metadata.annotations.as_ref()),
        )
    });
    !matches!(setting.as_deref(), Some("disabled" | "no" | "false"))
}

/// Addresses of a Service port, with the pod behind each when known: from
/// EndpointSlices when the Service has any, else from the pods it selects.
pub(super) fn endpoints<'a>(
    index: &'a Index,
    service: &Service,
    sp: &ServicePort,
) -> Vec<(String, Option<&'a MeshPod>)> {
    let ns = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let slices: Vec<_> = index
        .endpoint_slices
        .range((ns.clone(), String::new())..)
        .take_while(|((n, _), _)| *n == ns)
        .map(|(_, s)| s)
        .filter(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                == Some(&name)
        })
        .collect();
    let mut out = Vec::new();
    if slices.is_empty() {
        // Ready pods only, as the EndpointSlice controller lists them: a
        // pod still starting (its app not listening yet) or whose app died
        // gets no traffic.
        for (_, pod) in index.selected_pods(service) {
            if !k8s::pod_serves(pod) {
                continue;
            }
            if let (Some(ip), Some(port)) = (k8s::pod_ip(pod), k8s::target_port(sp, Some(pod)))
                && let Some(addr) = k8s::socket_address(ip, port)
            {
                out.push((addr, Some(pod)));
            }
        }
        return out;
    }
    for slice in slices {
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == sp.name.as_deref().unwrap_or(""))
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else { continue };
        for ep in &slice.endpoints {
            if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            let pod = ep
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| {
                    index
                        .pods
                        .get(&(ns.clone(), r.name.clone().unwrap_or_default()))
                        .map(|pod| &**pod)
                });
            for ip in &ep.addresses {
                if let Some(addr) = k8s::socket_address(ip, port) {
                    out.push((addr, pod));
                }
            }
        }
    }
    out
}

fn endpoint(index: &Index, address: String, pod: Option<&MeshPod>) -> v1::Endpoint {
    let Some(pod) = pod else {
        return v1::Endpoint {
            address,
            ..Default::default()
        };
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let (workload_kind, workload_name) = k8s::workload(pod);
    v1::Endpoint {
        address,
        identity: if is_meshed(index, pod) {
            spiffe_id(&index.mesh.trust_domain, ns, k8s::service_account(pod))
        } else {
            String::new()
        },
        pod: pod.metadata.name.clone().unwrap_or_default(),
        workload_kind,
        workload_name,
    }
}

pub(super) fn endpoint_set(index: &Index, service: &Service, sp: &ServicePort) -> v1::EndpointSet {
    let ns = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let mut endpoints: Vec<v1::Endpoint> = endpoints(index, service, sp)
        .into_iter()
        .map(|(addr, pod)| endpoint(index, addr, pod))
        .collect();
    endpoints.sort_by(|a, b| a.address.cmp(&b.address));
    endpoints.dedup_by(|a, b| a.address == b.address);
    v1::EndpointSet {
        key: format!("{ns}/{name}:{}", sp.port),
        namespace: ns,
        service: name,
        endpoints,
    }
}
