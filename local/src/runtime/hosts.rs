//! What cluster DNS answers, as each pod's hosts file (pure): the pod
//! itself, the control plane on the gateway, every Service with a virtual
//! IP by its names, and the names a headless Service gives its pods.

use std::{collections::BTreeMap, fmt::Write as _, net::Ipv4Addr};

use k8s_openapi::api::core::v1::Service;
use osm_api::k8s;

use super::services::{Endpoint, vip};
use crate::state::{Instance, OSM_NAMESPACE};

/// A pod's hosts file: itself, the control plane on the gateway, and
/// every Service by its full names (short name within its namespace).
pub fn hosts_file(
    instance: &Instance,
    namespace: &str,
    pod: &str,
    pod_ip: Option<Ipv4Addr>,
    services: &[Service],
    endpoints: &[Endpoint<'_>],
) -> String {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(ip) = pod_ip {
        let _ = writeln!(text, "{ip}\t{pod}");
    }
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let gateway = instance.gateway().to_string();
    for component in ["osm-controller", "osm-injector"] {
        let entry = names.entry(gateway.clone()).or_default();
        entry.push(format!("{component}.{OSM_NAMESPACE}.svc.cluster.local"));
        entry.push(format!("{component}.{OSM_NAMESPACE}.svc"));
        entry.push(format!("{component}.{OSM_NAMESPACE}"));
        if namespace == OSM_NAMESPACE {
            entry.push(component.to_string());
        }
    }
    for service in services {
        let Some(ip) = vip(service) else { continue };
        let name = service.metadata.name.clone().unwrap_or_default();
        let ns = service.metadata.namespace.clone().unwrap_or_default();
        let entry = names.entry(ip.to_string()).or_default();
        entry.push(format!("{name}.{ns}.svc.cluster.local"));
        entry.push(format!("{name}.{ns}.svc"));
        entry.push(format!("{name}.{ns}"));
        if ns == namespace {
            entry.push(name);
        }
    }
    for (ip, more) in headless_names(namespace, services, endpoints) {
        names.entry(ip).or_default().extend(more);
    }
    for (ip, names) in names {
        let _ = writeln!(text, "{ip}\t{}", names.join(" "));
    }
    text
}

/// The names a headless Service (`clusterIP: None`) gives, as the
/// cluster's DNS answers them: the Service's name resolves to each ready
/// pod it selects, and a pod whose `subdomain` is the Service resolves
/// as `<hostname>.<service>.<namespace>.svc.cluster.local` (a
/// StatefulSet's pods), ready or not. Seen from a pod of `namespace`.
fn headless_names(
    namespace: &str,
    services: &[Service],
    endpoints: &[Endpoint<'_>],
) -> BTreeMap<String, Vec<String>> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let qualified = |short: String, ns: &str| {
        let mut out = vec![
            format!("{short}.{ns}.svc.cluster.local"),
            format!("{short}.{ns}.svc"),
            format!("{short}.{ns}"),
        ];
        if ns == namespace {
            out.push(short);
        }
        out
    };
    for service in services {
        let headless = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
        if !headless {
            continue;
        }
        let name = service.metadata.name.clone().unwrap_or_default();
        let ns = service.metadata.namespace.clone().unwrap_or_default();
        for e in endpoints {
            let pod_ns = e.pod.metadata.namespace.as_deref().unwrap_or_default();
            if pod_ns != ns {
                continue;
            }
            if e.ready && k8s::selects(service, e.pod) {
                names
                    .entry(e.ip.to_string())
                    .or_default()
                    .extend(qualified(name.clone(), &ns));
            }
            let spec = e.pod.spec.as_ref();
            if let (Some(host), Some(sub)) = (
                spec.and_then(|s| s.hostname.as_deref()),
                spec.and_then(|s| s.subdomain.as_deref()),
            ) && sub == name
            {
                names
                    .entry(e.ip.to_string())
                    .or_default()
                    .extend(qualified(format!("{host}.{name}"), &ns));
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;

    fn service(ns: &str, name: &str, ip: &str, selector: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "selector": selector, "ports": []}}))
        .unwrap()
    }

    fn pod(ns: &str, name: &str, labels: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c"}]}}),
        )
        .unwrap()
    }

    #[test]
    fn hosts_name_services_fully_and_shortly_within_the_namespace() {
        let instance = Instance::default();
        let svcs = [
            service("shop", "web", "10.214.0.5", json!({})),
            service("bank", "ledger", "10.214.0.6", json!({})),
        ];
        let text = hosts_file(
            &instance,
            "shop",
            "web-1",
            Some("10.213.0.9".parse().unwrap()),
            &svcs,
            &[],
        );
        assert!(text.contains("10.213.0.9\tweb-1\n"));
        assert!(
            text.contains("10.214.0.5\tweb.shop.svc.cluster.local web.shop.svc web.shop web\n")
        );
        assert!(
            text.contains(
                "10.214.0.6\tledger.bank.svc.cluster.local ledger.bank.svc ledger.bank\n"
            )
        );
        assert!(text.contains(
            "10.213.0.1\tosm-controller.osm-system.svc.cluster.local osm-controller.osm-system.svc"
        ));
    }

    #[test]
    fn a_headless_service_names_its_ready_pods_and_each_stateful_pod() {
        let instance = Instance::default();
        let svcs = [service("shop", "db", "None", json!({"app": "db"}))];
        let stateful = |name: &str| {
            let mut p = pod("shop", name, json!({"app": "db"}));
            let spec = p.spec.as_mut().unwrap();
            spec.hostname = Some(name.into());
            spec.subdomain = Some("db".into());
            p
        };
        let (db0, db1) = (stateful("db-0"), stateful("db-1"));
        let elsewhere = pod("bank", "db-x", json!({"app": "db"}));
        let endpoints = [
            Endpoint {
                pod: &db0,
                ip: "10.213.0.20".parse().unwrap(),
                ready: true,
            },
            Endpoint {
                pod: &db1,
                ip: "10.213.0.21".parse().unwrap(),
                ready: false,
            },
            Endpoint {
                pod: &elsewhere,
                ip: "10.213.0.22".parse().unwrap(),
                ready: true,
            },
        ];
        let text = hosts_file(&instance, "bank", "client", None, &svcs, &endpoints);
        assert!(
            text.contains(
                "10.213.0.20\tdb.shop.svc.cluster.local db.shop.svc db.shop \
                 db-0.db.shop.svc.cluster.local db-0.db.shop.svc db-0.db.shop\n"
            ),
            "{text}"
        );
        // Not ready: not behind the Service's name, but its own name
        // resolves (a StatefulSet's peers find each other while starting).
        assert!(
            text.contains(
                "10.213.0.21\tdb-1.db.shop.svc.cluster.local db-1.db.shop.svc db-1.db.shop\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("10.213.0.22"),
            "another namespace's pod: {text}"
        );
        assert!(!text.contains("None"), "{text}");
        // From the Service's namespace, the short names too.
        let inside = hosts_file(&instance, "shop", "client", None, &svcs, &endpoints);
        assert!(
            inside.contains(" db db-0.db.shop.svc.cluster.local"),
            "{inside}"
        );
    }
}
