//! The services a proxy may send to, their names, addresses, splits and
//! endpoints.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service, ServicePort};

use super::{
    Index,
    endpoints::{endpoint_set, endpoints},
    gateway::{attached, compile_rules, parents_of_candidates},
    split::{compile_split, split_for},
};
use crate::{compat::SERVICE_NAME_LABEL, k8s, resources::MeshPod, v1};

/// The cluster's DNS domain.
const CLUSTER_DOMAIN: &str = "cluster.local";

type SaKey = (String, String);

pub fn compile(
    index: &Index,
    pod: &MeshPod,
    warnings: &mut Vec<String>,
) -> (Vec<v1::OutboundService>, Vec<v1::EndpointSet>) {
    let my_ns = pod.metadata.namespace.clone().unwrap_or_default();
    let allowed = authorized_destinations(index, &my_ns, k8s::service_account(pod));
    let mut sets: BTreeMap<String, v1::EndpointSet> = BTreeMap::new();
    let mut out = Vec::new();
    for (ns, name) in candidates(index, &allowed) {
        let Some(service) = index.services.get(&(ns.clone(), name.clone())) else {
            continue;
        };
        let (ns, name) = (&ns, &name);
        let split = split_for(index, ns, name, warnings);
        let headless = is_headless(service);
        for sp in service
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .filter(|p| k8s::is_tcp(p))
        {
            let Ok(port) = u16::try_from(sp.port) else {
                continue;
            };
            let own = endpoint_set(index, service, sp);
            let upstream = super::policy::upstream_setting(index, ns, name);
            let own_key = own.key.clone();
            let routes = attached(index, ns, name, port, &my_ns);
            let (split_backends, split_matches) = match split {
                Some(s) if !routes.is_empty() => {
                    warnings.push(format!(
                        "TrafficSplit {} does not apply to {ns}/{name}:{port}: {} routes it (Gateway API routes win)",
                        super::routes::tt_name(s),
                        routes[0].describe()
                    ));
                    (Vec::new(), Vec::new())
                }
                Some(s) => compile_split(index, s, name, port, &own_key, &mut sets, warnings),
                None => (Vec::new(), Vec::new()),
            };
            let routes = compile_rules(index, &routes, &mut sets, warnings);
            if headless {
                out.extend(per_pod_services(index, port, sp, &own, &my_ns, &mut sets));
            }
            out.push(v1::OutboundService {
                key: own_key.clone(),
                namespace: ns.clone(),
                name: name.clone(),
                port: u32::from(port),
                hostnames: hostnames(name, ns, &my_ns),
                vips: if headless {
                    Vec::new()
                } else {
                    cluster_ips(service)
                },
                protocol: k8s::protocol(sp) as i32,
                endpoints: own_key,
                split: split_backends,
                split_matches,
                retry: super::policy::retry(index, pod, ns, name),
                limits: upstream.and_then(super::policy::connection_limits),
                outlier_detection: upstream.and_then(super::policy::outlier_detection),
                // Timeouts are per route rule (Gateway API `timeouts`); the
                // mesh default applies to the rest.
                request_timeout_ms: 0,
                backend_request_timeout_ms: 0,
                routes,
            });
            sets.insert(own.key.clone(), own);
        }
    }
    (out, sets.into_values().collect())
}

/// The Services the proxy may reach: in permissive mode every Service of a
/// monitored namespace; otherwise those with a pod running as an authorized
/// ServiceAccount (selected, or named by an EndpointSlice), and the roots of
/// splits with such a backend.
fn candidates(index: &Index, allowed: &BTreeSet<SaKey>) -> BTreeSet<(String, String)> {
    if index.mesh.permissive {
        return index
            .services
            .keys()
            .filter(|(ns, _)| index.is_monitored(ns))
            .cloned()
            .collect();
    }
    let mut out = BTreeSet::new();
    for (ns, sa) in allowed {
        if !index.is_monitored(ns) {
            continue;
        }
        let Some(pods) = index.pods_by_service_account.get(&(ns.clone(), sa.clone())) else {
            continue;
        };
        let in_ns = |(n, _): &&(String, String)| n == ns;
        for pod_name in pods {
            let Some(pod) = index.pods.get(&(ns.clone(), pod_name.clone())) else {
                continue;
            };
            for (key, svc) in index
                .services
                .range((ns.clone(), String::new())..)
                .take_while(|(k, _)| in_ns(k))
            {
                if k8s::selects(svc, pod) {
                    out.insert(key.clone());
                }
            }
            for (_, slice) in index
                .endpoint_slices
                .range((ns.clone(), String::new())..)
                .take_while(|(k, _)| in_ns(k))
            {
                let names_pod = slice.endpoints.iter().any(|e| {
                    e.target_ref.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("Pod")
                            && r.name.as_deref() == Some(pod_name.as_str())
                    })
                });
                if let Some(svc) = slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .filter(|_| names_pod)
                {
                    out.insert((ns.clone(), svc.clone()));
                }
            }
        }
    }
    for ((ns, _), split) in &index.traffic_splits {
        if split
            .spec
            .backends
            .iter()
            .any(|b| out.contains(&(ns.clone(), b.service.clone())))
        {
            let root = crate::validate::root_service_name(&split.spec.service).0;
            out.insert((ns.clone(), root.to_string()));
        }
    }
    // Services whose Gateway API routes send to one of these (a
    // frontend Service without pods of its own).
    let parents = parents_of_candidates(index, &out);
    out.extend(parents.into_iter().filter(|(ns, _)| index.is_monitored(ns)));
    out.retain(|key| index.services.contains_key(key));
    out
}

/// (namespace, ServiceAccount) of every destination some TrafficTarget lets
/// the proxy's identity reach.
fn authorized_destinations(index: &Index, my_ns: &str, my_sa: &str) -> BTreeSet<SaKey> {
    index
        .traffic_targets
        .iter()
        .filter(|((tt_ns, _), tt)| {
            tt.spec.sources.iter().any(|s| {
                s.kind == "ServiceAccount"
                    && s.name == my_sa
                    && s.namespace
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(tt_ns)
                        == my_ns
            })
        })
        .map(|((tt_ns, _), tt)| (tt_ns.clone(), tt.spec.destination.name.clone()))
        .collect()
}

/// The ServiceAccounts of the pods behind a Service.
pub(super) fn behind(index: &Index, service: &Service) -> BTreeSet<SaKey> {
    let ns = service.metadata.namespace.clone().unwrap_or_default();
    service
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .flat_map(|sp| endpoints(index, service, sp))
        .filter_map(|(_, pod)| pod)
        .map(|pod| (ns.clone(), k8s::service_account(pod).to_string()))
        .collect()
}

fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn cluster_ips(service: &Service) -> Vec<String> {
    let spec = service.spec.as_ref();
    let mut ips: Vec<String> = spec
        .and_then(|s| s.cluster_ips.clone())
        .or_else(|| spec.and_then(|s| s.cluster_ip.clone()).map(|ip| vec![ip]))
        .unwrap_or_default();
    ips.retain(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    ips
}

/// Names that reach a Service: the short name only from its own namespace
/// (the DNS search path), the qualified ones from everywhere.
fn hostnames(name: &str, ns: &str, my_ns: &str) -> Vec<String> {
    let mut names = Vec::new();
    if ns == my_ns {
        names.push(name.to_string());
    }
    names.push(format!("{name}.{ns}"));
    names.push(format!("{name}.{ns}.svc"));
    names.push(format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}"));
    names
}

/// A headless Service's pods are dialled by their own addresses and names
/// (StatefulSet `pod.svc.ns.svc.cluster.local`): one entry per pod.
fn per_pod_services(
    index: &Index,
    port: u16,
    sp: &ServicePort,
    own: &v1::EndpointSet,
    my_ns: &str,
    sets: &mut BTreeMap<String, v1::EndpointSet>,
) -> Vec<v1::OutboundService> {
    let ns = own.namespace.clone();
    let name = own.service.clone();
    let mut out = Vec::new();
    for ep in &own.endpoints {
        let pod_name = if ep.pod.is_empty() {
            ep.address.replace([':', '.', '[', ']'], "-")
        } else {
            ep.pod.clone()
        };
        let host = index
            .pods
            .get(&(ns.clone(), ep.pod.clone()))
            .and_then(|p| p.hostname.clone())
            .unwrap_or_else(|| pod_name.clone());
        let key = format!("{}/{pod_name}", own.key);
        let ip = ep
            .address
            .rsplit_once(':')
            .map(|(ip, _)| ip.trim_matches(['[', ']']).to_string());
        sets.insert(
            key.clone(),
            v1::EndpointSet {
                key: key.clone(),
                namespace: ns.clone(),
                service: name.clone(),
                endpoints: vec![ep.clone()],
            },
        );
        let mut hostnames = vec![
            format!("{host}.{name}.{ns}"),
            format!("{host}.{name}.{ns}.svc"),
            format!("{host}.{name}.{ns}.svc.{CLUSTER_DOMAIN}"),
        ];
        if ns == my_ns {
            hostnames.insert(0, format!("{host}.{name}"));
        }
        out.push(v1::OutboundService {
            key: key.clone(),
            namespace: ns.clone(),
            name: name.clone(),
            port: u32::from(port),
            hostnames,
            vips: ip.into_iter().collect(),
            protocol: k8s::protocol(sp) as i32,
            endpoints: key,
            split: Vec::new(),
            split_matches: Vec::new(),
            retry: None,
            limits: None,
            outlier_detection: None,
            request_timeout_ms: 0,
            backend_request_timeout_ms: 0,
            // A pod's own name is not a Service parent: routes do not apply.
            routes: Vec::new(),
        });
    }
    out
}
