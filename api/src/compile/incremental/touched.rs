//! Which proxies a change can alter: from an object (its old and new
//! versions), the pods it selects, the clients allowed to reach them, the
//! clients of splits that use them, found through the index (no scan of
//! every pod). A Namespace or the MeshConfig touches every proxy.

use std::collections::BTreeSet;

use super::super::{Index, gateway::MeshRoute, outbound::behind};
use crate::{
    k8s,
    resources::{MeshPod, Object, ObjectKey},
};

/// Which proxies a change may touch.
#[derive(Debug, Default)]
pub(super) enum Touched {
    #[default]
    None,
    All,
    Pods(BTreeSet<(String, String)>),
}

impl Touched {
    pub(super) fn add(&mut self, other: Touched) {
        *self = match (std::mem::take(self), other) {
            (Touched::All, _) | (_, Touched::All) => Touched::All,
            (Touched::None, o) | (o, Touched::None) => o,
            (Touched::Pods(mut a), Touched::Pods(b)) => {
                a.extend(b);
                Touched::Pods(a)
            }
        };
    }
}

/// The object stored under `key`, if any.
pub(super) fn current(index: &Index, key: &ObjectKey) -> Option<Object> {
    let k = (key.namespace.clone(), key.name.clone());
    Some(match key.kind {
        "Namespace" => Object::Namespace(index.namespaces.get(&key.name)?.clone()),
        "Pod" => Object::Pod(index.pods.get(&k)?.clone()),
        "Service" => Object::Service(index.services.get(&k)?.clone()),
        "EndpointSlice" => Object::EndpointSlice(index.endpoint_slices.get(&k)?.clone()),
        "TrafficTarget" => Object::TrafficTarget(index.traffic_targets.get(&k)?.clone()),
        "HTTPRouteGroup" => Object::HttpRouteGroup(index.http_route_groups.get(&k)?.clone()),
        "TCPRoute" => Object::TcpRoute(index.tcp_routes.get(&k)?.clone()),
        "UDPRoute" => Object::UdpRoute(index.udp_routes.get(&k)?.clone()),
        "TrafficSplit" => Object::TrafficSplit(index.traffic_splits.get(&k)?.clone()),
        "IngressBackend" => Object::IngressBackend(index.ingress_backends.get(&k)?.clone()),
        "MeshConfig" => Object::MeshConfig(Box::new(index.mesh_config.clone()?)),
        "Egress" => Object::Egress(index.egresses.get(&k)?.clone()),
        "Retry" => Object::Retry(index.retries.get(&k)?.clone()),
        "UpstreamTrafficSetting" => {
            Object::UpstreamTrafficSetting(index.upstream_traffic_settings.get(&k)?.clone())
        }
        "HTTPRoute" => Object::HttpRoute(index.http_routes.get(&k)?.clone()),
        "GRPCRoute" => Object::GrpcRoute(index.grpc_routes.get(&k)?.clone()),
        _ => return None,
    })
}

/// The pods running as any of these (namespace, ServiceAccount) pairs,
/// from the index by ServiceAccount (no scan of every pod).
fn pods_running_as<'a>(
    index: &Index,
    service_accounts: impl IntoIterator<Item = &'a (String, String)>,
) -> Touched {
    let mut pods = BTreeSet::new();
    for key in service_accounts {
        for name in index.pods_by_service_account.get(key).into_iter().flatten() {
            pods.insert((key.0.clone(), name.clone()));
        }
    }
    Touched::Pods(pods)
}

/// The pods a Service selects.
fn selected(index: &Index, service: &k8s_openapi::api::core::v1::Service) -> Touched {
    Touched::Pods(
        index
            .selected_pods(service)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect(),
    )
}

/// Pods that may send to workloads running as `destinations`: their
/// outbound view includes those workloads' Services.
fn clients_of(index: &Index, destinations: &BTreeSet<(String, String)>) -> Touched {
    if index.mesh.permissive {
        return Touched::All;
    }
    let mut sources = BTreeSet::new();
    for ((ns, _), tt) in &index.traffic_targets {
        if destinations.contains(&(ns.clone(), tt.spec.destination.name.clone())) {
            for s in &tt.spec.sources {
                let sns = s
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| ns.clone());
                sources.insert((sns, s.name.clone()));
            }
        }
    }
    pods_running_as(index, &sources)
}

/// Everything that sees a Service: the pods it selects, its clients, the
/// clients of splits that use it as a backend, and the backends of
/// IngressBackends that name it as a source.
fn service_touch(index: &Index, ns: &str, name: &str) -> Touched {
    let mut t = Touched::None;
    let Some(svc) = index.services.get(&(ns.to_string(), name.to_string())) else {
        return t;
    };
    t.add(selected(index, svc));
    let mut sas = behind(index, svc);
    for split in index.traffic_splits.values() {
        if split.metadata.namespace.as_deref() == Some(ns)
            && split.spec.backends.iter().any(|b| b.service == name)
        {
            let root = crate::validate::root_service_name(&split.spec.service).0;
            if let Some(root) = index.services.get(&(ns.to_string(), root.to_string())) {
                sas.extend(behind(index, root));
            }
        }
    }
    t.add(clients_of(index, &sas));
    for ib in index.ingress_backends.values() {
        let ib_ns = ib.metadata.namespace.clone().unwrap_or_default();
        if ib.spec.sources.iter().any(|s| {
            s.kind == "Service"
                && s.name == name
                && (if s.namespace.is_empty() {
                    &ib_ns
                } else {
                    &s.namespace
                }) == ns
        }) {
            t.add(ingress_touch(index, ib));
        }
    }
    t
}

fn ingress_touch(
    index: &Index,
    ib: &crate::resources::Custom<crate::resources::policy::IngressBackendSpec>,
) -> Touched {
    let ns = ib.metadata.namespace.clone().unwrap_or_default();
    let mut t = Touched::None;
    for b in &ib.spec.backends {
        if let Some(svc) = index.services.get(&(ns.clone(), b.name.clone())) {
            t.add(selected(index, svc));
        }
    }
    t
}

fn services_selecting(index: &Index, pod: &MeshPod) -> Vec<(String, String)> {
    index
        .services
        .iter()
        .filter(|(_, s)| k8s::selects(s, pod))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The proxies whose view depends on `object` in `index`.
pub(super) fn touches(index: &Index, object: &Object) -> Touched {
    let ns = object.metadata().namespace.clone().unwrap_or_default();
    match object {
        Object::Namespace(_) | Object::MeshConfig(_) => Touched::All,
        Object::Pod(pod) => {
            let mut t =
                Touched::Pods([(ns.clone(), pod.metadata.name.clone().unwrap_or_default())].into());
            for (sns, sname) in services_selecting(index, pod) {
                t.add(service_touch(index, &sns, &sname));
            }
            t
        }
        Object::Service(svc) => {
            service_touch(index, &ns, svc.metadata.name.as_deref().unwrap_or(""))
        }
        Object::EndpointSlice(slice) => {
            let service = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"));
            let mut t = service
                .map(|s| service_touch(index, &ns, s))
                .unwrap_or_default();
            // Pods the slice points at may not be selected by the Service.
            for ep in &slice.endpoints {
                if let Some(pod) = ep.target_ref.as_ref().and_then(|r| {
                    index
                        .pods
                        .get(&(ns.clone(), r.name.clone().unwrap_or_default()))
                }) {
                    t.add(Touched::Pods(
                        [(ns.clone(), pod.metadata.name.clone().unwrap_or_default())].into(),
                    ));
                }
            }
            t
        }
        Object::TrafficTarget(tt) => {
            let dest = tt.spec.destination.name.clone();
            let mut t = pods_running_as(index, &[(ns.clone(), dest.clone())]);
            if index.mesh.permissive {
                // Permissive outbound views list every service whatever
                // the policy: only the destination's inbound changes.
                return t;
            }
            t.add(clients_of(index, &[(ns.clone(), dest.clone())].into()));
            // Clients of splits whose backends run as the destination.
            t.add(split_clients_for(index, &ns, &dest));
            t
        }
        Object::HttpRouteGroup(g) => {
            let name = g.metadata.name.clone().unwrap_or_default();
            let mut t = Touched::None;
            for ((tns, _), tt) in &index.traffic_targets {
                if *tns == ns && tt.spec.rules.iter().any(|r| r.name == name) {
                    t.add(touches(index, &Object::TrafficTarget(tt.clone())));
                }
            }
            for split in index.traffic_splits.values() {
                if split.metadata.namespace.as_deref() == Some(ns.as_str())
                    && split.spec.matches.iter().any(|m| m.name == name)
                {
                    t.add(touches(index, &Object::TrafficSplit(split.clone())));
                }
            }
            t
        }
        Object::TcpRoute(r) | Object::UdpRoute(r) => {
            let name = r.metadata.name.clone().unwrap_or_default();
            let mut t = Touched::None;
            for ((tns, _), tt) in &index.traffic_targets {
                if *tns == ns && tt.spec.rules.iter().any(|rule| rule.name == name) {
                    t.add(touches(index, &Object::TrafficTarget(tt.clone())));
                }
            }
            t
        }
        Object::TrafficSplit(split) => {
            let mut t = Touched::None;
            let root = crate::validate::root_service_name(&split.spec.service)
                .0
                .to_string();
            t.add(service_touch(index, &ns, &root));
            for b in &split.spec.backends {
                t.add(service_touch(index, &ns, &b.service));
            }
            t
        }
        Object::IngressBackend(ib) => ingress_touch(index, ib),
        Object::Egress(e) => subjects_touch(index, &ns, e.spec.sources.iter()),
        Object::Retry(r) => subjects_touch(index, &ns, std::iter::once(&r.spec.source)),
        Object::UpstreamTrafficSetting(u) => {
            let mut t = Touched::None;
            // The Services it names (by name or FQDN), and Egresses using it.
            let host = u.spec.host.trim_end_matches('.');
            let service = host.split('.').next().unwrap_or(host);
            t.add(service_touch(index, &ns, service));
            let name = u.metadata.name.clone().unwrap_or_default();
            for ((ens, _), e) in &index.egresses {
                if *ens == ns
                    && e.spec
                        .matches
                        .iter()
                        .any(|m| m.kind == "UpstreamTrafficSetting" && m.name == name)
                {
                    t.add(subjects_touch(index, ens, e.spec.sources.iter()));
                }
            }
            t
        }
        Object::HttpRoute(r) => route_touch(index, &MeshRoute::Http(r)),
        Object::GrpcRoute(r) => route_touch(index, &MeshRoute::Grpc(r)),
        Object::ServiceAccount(_)
        | Object::Deployment(_)
        | Object::StatefulSet(_)
        | Object::Job(_)
        | Object::ConfigMap(_)
        | Object::Secret(_) => Touched::None,
    }
}

/// A Gateway API route: everything that sees its parent Services and its
/// backends (their clients get the route, or the backends' endpoints).
fn route_touch(index: &Index, route: &MeshRoute<'_>) -> Touched {
    let route_ns = route.namespace();
    let mut t = Touched::None;
    for p in route.parent_refs().iter().filter(|p| p.is_service()) {
        t.add(service_touch(index, p.namespace_or(route_ns), &p.name));
    }
    for b in route.backend_refs() {
        let ns = b
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(route_ns);
        t.add(service_touch(index, ns, &b.name));
    }
    t
}

/// Pods running as the ServiceAccounts a policy names (namespace defaults
/// to the policy's).
fn subjects_touch<'a>(
    index: &Index,
    policy_ns: &str,
    subjects: impl Iterator<Item = &'a crate::resources::policy::Subject>,
) -> Touched {
    let sas: BTreeSet<(String, String)> = subjects
        .map(|s| {
            let ns = if s.namespace.is_empty() {
                policy_ns
            } else {
                &s.namespace
            };
            (ns.to_string(), s.name.clone())
        })
        .collect();
    pods_running_as(index, &sas)
}

/// Clients of split roots in `ns` with a backend running as `sa`.
fn split_clients_for(index: &Index, ns: &str, sa: &str) -> Touched {
    let mut t = Touched::None;
    for split in index.traffic_splits.values() {
        if split.metadata.namespace.as_deref() != Some(ns) {
            continue;
        }
        let backend_runs_as_sa = split.spec.backends.iter().any(|b| {
            index
                .services
                .get(&(ns.to_string(), b.service.clone()))
                .is_some_and(|svc| behind(index, svc).contains(&(ns.to_string(), sa.to_string())))
        });
        if backend_runs_as_sa {
            let root = crate::validate::root_service_name(&split.spec.service).0;
            t.add(service_touch(index, ns, root));
        }
    }
    t
}
