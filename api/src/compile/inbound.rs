//! Inbound ports of a pod and the authorizations SMI TrafficTargets give them.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Index,
    routes::{selected_matches, tt_name},
    spiffe_id,
};
use crate::{
    k8s,
    resources::{Custom, MeshPod, smi},
    v1,
};

/// A pod port and the Service ports that send to it.
struct PortInfo {
    protocol: v1::Protocol,
    service_ports: BTreeSet<u16>,
    /// Services sending to the port, for their UpstreamTrafficSettings.
    services: Vec<String>,
}

pub fn compile(index: &Index, pod: &MeshPod, warnings: &mut Vec<String>) -> Vec<v1::InboundPort> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut ports: BTreeMap<u16, PortInfo> = BTreeMap::new();
    for ((_, name), service) in index.services.range((namespace.clone(), String::new())..) {
        if service.metadata.namespace.as_deref() != Some(namespace.as_str()) {
            break;
        }
        if !k8s::selects(service, pod) {
            continue;
        }
        for sp in service.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            if !k8s::is_tcp(sp) {
                continue;
            }
            let Some(app_port) = k8s::target_port(sp, Some(pod)) else {
                warnings.push(format!(
                    "Service {namespace}/{name}: port {}: target port {:?} is not a port of the pod",
                    sp.port, sp.target_port
                ));
                continue;
            };
            let protocol = k8s::protocol(sp);
            if let Some(existing) = ports.get(&app_port)
                && existing.protocol != protocol
            {
                warnings.push(format!(
                    "Service {namespace}/{name}: port {} names {} for pod port {app_port}, but Service {namespace}/{} already named {}; {} applies",
                    sp.port,
                    protocol.as_str_name(),
                    existing.services.first().map(String::as_str).unwrap_or("?"),
                    existing.protocol.as_str_name(),
                    existing.protocol.as_str_name(),
                ));
            }
            let info = ports.entry(app_port).or_insert_with(|| PortInfo {
                protocol,
                service_ports: BTreeSet::new(),
                services: Vec::new(),
            });
            info.service_ports.extend(u16::try_from(sp.port).ok());
            if !info.services.contains(name) {
                info.services.push(name.clone());
            }
        }
    }

    let service_account = k8s::service_account(pod);
    let targets: Vec<&Custom<smi::TrafficTarget>> = index
        .traffic_targets
        .range((namespace.clone(), String::new())..)
        .take_while(|((ns, _), _)| *ns == namespace)
        .map(|(_, tt)| tt)
        .filter(|tt| tt.spec.destination.name == service_account)
        .collect();

    let ingress = ingress_backends(index, pod, &namespace);
    ports
        .into_iter()
        .map(|(port, info)| {
            let mut inbound = v1::InboundPort {
                port: u32::from(port),
                protocol: info.protocol as i32,
                authorizations: targets
                    .iter()
                    .filter_map(|tt| authorization(index, tt, port, &info.service_ports, warnings))
                    .collect(),
                plaintext_sources: ingress_sources(index, &ingress, port, warnings),
                ..Default::default()
            };
            if let Some(uts) = info
                .services
                .iter()
                .find_map(|s| super::policy::upstream_setting(index, &namespace, s))
            {
                super::policy::apply_rate_limits(&mut inbound, uts);
            }
            inbound
        })
        .collect()
}

/// The IngressBackends naming a Service that selects this pod.
fn ingress_backends<'a>(
    index: &'a Index,
    pod: &MeshPod,
    namespace: &str,
) -> Vec<&'a Custom<crate::resources::policy::IngressBackendSpec>> {
    let enabled = index
        .mesh_config
        .as_ref()
        .is_none_or(|m| m.spec.feature_flags.enable_ingress_backend_policy);
    if !enabled {
        return Vec::new();
    }
    index
        .ingress_backends
        .range((namespace.to_string(), String::new())..)
        .take_while(|((ns, _), _)| ns == namespace)
        .map(|(_, ib)| ib)
        .filter(|ib| {
            ib.spec.backends.iter().any(|b| {
                index
                    .services
                    .get(&(namespace.to_string(), b.name.clone()))
                    .is_some_and(|svc| k8s::selects(svc, pod))
            })
        })
        .collect()
}

/// Plaintext sources IngressBackends admit on one pod port: IP ranges, and
/// the pod IPs of source Services.
fn ingress_sources(
    index: &Index,
    backends: &[&Custom<crate::resources::policy::IngressBackendSpec>],
    port: u16,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let mut out = BTreeSet::new();
    for ib in backends {
        if !ib
            .spec
            .backends
            .iter()
            .any(|b| b.port.number == u32::from(port))
        {
            continue;
        }
        for source in &ib.spec.sources {
            match source.kind.as_str() {
                "IPRange" => {
                    out.insert(source.name.clone());
                }
                "Service" => {
                    let ns = if source.namespace.is_empty() {
                        ib.metadata.namespace.clone().unwrap_or_default()
                    } else {
                        source.namespace.clone()
                    };
                    match index.services.get(&(ns.clone(), source.name.clone())) {
                        Some(svc) => out.extend(
                            index
                                .pods
                                .values()
                                .filter(|p| k8s::selects(svc, p))
                                .filter_map(|p| k8s::pod_ip(p).map(str::to_string)),
                        ),
                        None => warnings.push(format!(
                            "IngressBackend {}: source Service {ns}/{} does not exist",
                            tt_name(ib),
                            source.name
                        )),
                    }
                }
                _ => warnings.push(format!(
                    "IngressBackend {}: {} sources are not supported yet; only IPRange and Service admit traffic",
                    tt_name(ib),
                    source.kind
                )),
            }
        }
    }
    out.into_iter().collect()
}

/// What one TrafficTarget allows on one pod port, if anything.
fn authorization(
    index: &Index,
    tt: &Custom<smi::TrafficTarget>,
    port: u16,
    service_ports: &BTreeSet<u16>,
    warnings: &mut Vec<String>,
) -> Option<v1::Authorization> {
    let namespace = tt.metadata.namespace.clone().unwrap_or_default();
    let name = tt_name(tt);
    let on_port = |p: u16| p == port || service_ports.contains(&p);
    if tt.spec.destination_port.is_some_and(|p| !on_port(p)) {
        return None;
    }
    let mut http = Vec::new();
    let (mut has_http, mut has_tcp, mut tcp_on_port) = (false, false, false);
    for rule in &tt.spec.rules {
        let key = (namespace.clone(), rule.name.clone());
        match rule.kind.as_str() {
            "HTTPRouteGroup" => {
                has_http = true;
                let Some(group) = index.http_route_groups.get(&key) else {
                    warnings.push(format!(
                        "TrafficTarget {name}: HTTPRouteGroup {namespace}/{} does not exist",
                        rule.name
                    ));
                    continue;
                };
                http.extend(selected_matches(
                    group,
                    rule.matches.as_deref(),
                    &name,
                    warnings,
                ));
            }
            "TCPRoute" => {
                has_tcp = true;
                let Some(route) = index.tcp_routes.get(&key) else {
                    warnings.push(format!(
                        "TrafficTarget {name}: TCPRoute {namespace}/{} does not exist",
                        rule.name
                    ));
                    continue;
                };
                if route.spec.ports.is_empty() || route.spec.ports.iter().any(|p| on_port(*p)) {
                    tcp_on_port = true;
                }
            }
            _ => {}
        }
    }
    if has_tcp && !tcp_on_port {
        return None;
    }
    let traffic = if has_http {
        v1::authorization::Traffic::Http(v1::HttpRoutes { matches: http })
    } else if has_tcp {
        v1::authorization::Traffic::All(v1::AllTraffic {})
    } else {
        return None;
    };
    let td = &index.mesh.trust_domain;
    Some(v1::Authorization {
        name,
        sources: tt
            .spec
            .sources
            .iter()
            .map(|s| {
                spiffe_id(
                    td,
                    s.namespace
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(&namespace),
                    &s.name,
                )
            })
            .collect(),
        traffic: Some(traffic),
    })
}
