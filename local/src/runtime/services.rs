//! What kube-proxy does, as data: the host's nat rules that balance a
//! Service's virtual IP over its ready endpoints (for pods without a
//! sidecar, and for the proxies' egress) (pure). Names are in
//! [`super::hosts`].

use std::{collections::BTreeSet, fmt::Write as _, net::Ipv4Addr};

use k8s_openapi::api::core::v1::{Pod, Service};
use osm_api::k8s;

use crate::state::Instance;

/// A pod as the service rules see it.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    pub pod: &'a Pod,
    pub ip: Ipv4Addr,
    pub ready: bool,
}

/// One balanced port of a Service: its VIP and the endpoints behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balanced {
    pub namespace: String,
    pub service: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub protocol: String,
    pub backends: Vec<(Ipv4Addr, u16)>,
}

pub(crate) fn vip(service: &Service) -> Option<Ipv4Addr> {
    service.spec.as_ref()?.cluster_ip.as_deref()?.parse().ok()
}

/// Every Service port with a VIP, and its ready endpoints.
pub fn balanced(services: &[Service], endpoints: &[Endpoint<'_>]) -> Vec<Balanced> {
    let mut out = Vec::new();
    for service in services {
        let Some(vip) = vip(service) else { continue };
        for port in service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
        {
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            // The protocol goes into an iptables rule: only what Kubernetes
            // allows (apply refuses the rest; a stored one is skipped).
            let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
            if crate::names::protocol(&protocol).is_err() {
                continue;
            }
            let backends = endpoints
                .iter()
                .filter(|e| e.ready && k8s::selects(service, e.pod))
                .filter_map(|e| Some((e.ip, k8s::target_port(port, Some(e.pod))?)))
                .collect();
            out.push(Balanced {
                namespace: service.metadata.namespace.clone().unwrap_or_default(),
                service: service.metadata.name.clone().unwrap_or_default(),
                vip,
                port: number,
                protocol: protocol.to_lowercase(),
                backends,
            });
        }
    }
    out
}

/// FNV-1a, for short stable chain names.
fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08X}", h as u32)
}

/// What a pod that a Service sent a connection to sees as its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceSource {
    /// The client pod's address, as on a cluster (kube-proxy keeps it):
    /// the host passes bridged traffic through iptables
    /// (`net.bridge.bridge-nf-call-iptables=1`, as kubeadm requires), so
    /// the server's replies, bridged straight to the client, are
    /// translated back on their way. Only a pod sent to itself through a
    /// Service is masqueraded (its reply would never leave it).
    Preserved,
    /// The bridge's gateway address: the host does not pass bridged
    /// traffic through iptables, so replies must come back through the
    /// host to be translated.
    Masqueraded,
}

impl ServiceSource {
    /// What this host can do.
    pub fn of_host() -> Self {
        match std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables") {
            Ok(v) if v.trim() == "1" => Self::Preserved,
            _ => Self::Masqueraded,
        }
    }
}

/// The nat table of the instance (for `iptables-restore --noflush`):
/// each VIP port jumps to a chain that picks an endpoint uniformly at
/// random, as kube-proxy's iptables mode does; what leaves the host is
/// masqueraded, and what was translated as `source` says.
pub fn nat_rules(
    instance: &Instance,
    ports: &[Balanced],
    stale_chains: &[String],
    source: ServiceSource,
) -> String {
    let services = instance.chain("SERVICES");
    let post = instance.chain("POSTROUTING");
    let mut text = String::from("*nat\n");
    let _ = writeln!(text, ":{services} - [0:0]\n:{post} - [0:0]");
    let mut chains = Vec::new();
    for p in ports.iter().filter(|p| !p.backends.is_empty()) {
        let chain = instance.chain(&format!(
            "SVC-{}",
            digest(&format!(
                "{}/{}:{}/{}",
                p.namespace, p.service, p.port, p.protocol
            ))
        ));
        let _ = writeln!(text, ":{chain} - [0:0]");
        chains.push((p, chain));
    }
    for stale in stale_chains {
        if !chains.iter().any(|(_, c)| c == stale) {
            let _ = writeln!(text, ":{stale} - [0:0]");
        }
    }
    for (p, chain) in &chains {
        let _ = writeln!(
            text,
            "-A {services} -d {}/32 -p {} --dport {} -m comment --comment \"{}/{}:{}\" -j {chain}",
            p.vip, p.protocol, p.port, p.namespace, p.service, p.port
        );
        let n = p.backends.len();
        for (i, (ip, port)) in p.backends.iter().enumerate() {
            let remaining = n - i;
            let pick = if remaining > 1 {
                format!(
                    "-m statistic --mode random --probability {:.11} ",
                    1.0 / remaining as f64
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                text,
                "-A {chain} -p {} {pick}-j DNAT --to-destination {ip}:{port}",
                p.protocol
            );
        }
    }
    let pods = instance.pod_cidr;
    let bridge = instance.bridge();
    match source {
        ServiceSource::Masqueraded => {
            let _ = writeln!(
                text,
                "-A {post} -s {pods} -m conntrack --ctstate DNAT -j MASQUERADE"
            );
        }
        ServiceSource::Preserved => {
            // A pod sent to itself (kube-proxy's hairpin masquerade).
            let backends: BTreeSet<Ipv4Addr> = chains
                .iter()
                .flat_map(|(p, _)| p.backends.iter().map(|(ip, _)| *ip))
                .collect();
            for ip in backends {
                let _ = writeln!(
                    text,
                    "-A {post} -s {ip}/32 -d {ip}/32 -m conntrack --ctstate DNAT -j MASQUERADE"
                );
            }
        }
    }
    // What leaves the host; not the host's own traffic to the gateway
    // address (inside the pod range, delivered on loopback).
    let _ = writeln!(
        text,
        "-A {post} -s {pods} ! -d {pods} ! -o {bridge} -j MASQUERADE"
    );
    for stale in stale_chains {
        if !chains.iter().any(|(_, c)| c == stale) {
            let _ = writeln!(text, "-X {stale}");
        }
    }
    text.push_str("COMMIT\n");
    text
}

/// The filter table of the instance: pod traffic is forwarded (whatever
/// the host's FORWARD policy), pods reach the control plane on the
/// gateway, and a VIP port without endpoints is refused at once, not left
/// to time out.
pub fn filter_rules(instance: &Instance, ports: &[Balanced]) -> String {
    let forward = instance.chain("FORWARD");
    let input = instance.chain("INPUT");
    let bridge = instance.bridge();
    let mut text = String::from("*filter\n");
    let _ = writeln!(text, ":{forward} - [0:0]\n:{input} - [0:0]");
    for p in ports.iter().filter(|p| p.backends.is_empty()) {
        let _ = writeln!(
            text,
            "-A {forward} -d {}/32 -p {} --dport {} -m comment --comment \"{}/{}:{} has no endpoints\" -j REJECT{}",
            p.vip,
            p.protocol,
            p.port,
            p.namespace,
            p.service,
            p.port,
            if p.protocol == "tcp" {
                " --reject-with tcp-reset"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        text,
        "-A {forward} -i {bridge} -j ACCEPT\n-A {forward} -o {bridge} -j ACCEPT\n-A {input} -i {bridge} -j ACCEPT"
    );
    text.push_str("COMMIT\n");
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(
        ns: &str,
        name: &str,
        ip: &str,
        selector: serde_json::Value,
        ports: serde_json::Value,
    ) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "selector": selector, "ports": ports}}))
        .unwrap()
    }

    fn pod(ns: &str, name: &str, labels: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "web", "containerPort": 8080}]}]}}))
        .unwrap()
    }

    #[test]
    fn ready_selected_pods_back_each_port_with_named_target_ports() {
        let svc = service(
            "shop",
            "web",
            "10.214.0.5",
            json!({"app": "web"}),
            json!([{"port": 80, "targetPort": "web"}, {"port": 81, "targetPort": 9000}]),
        );
        let a = pod("shop", "a", json!({"app": "web"}));
        let b = pod("shop", "b", json!({"app": "web"}));
        let other_ns = pod("else", "c", json!({"app": "web"}));
        let endpoints = [
            Endpoint {
                pod: &a,
                ip: "10.213.0.2".parse().unwrap(),
                ready: true,
            },
            Endpoint {
                pod: &b,
                ip: "10.213.0.3".parse().unwrap(),
                ready: false,
            },
            Endpoint {
                pod: &other_ns,
                ip: "10.213.0.4".parse().unwrap(),
                ready: true,
            },
        ];
        let ports = balanced(&[svc], &endpoints);
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].backends, [("10.213.0.2".parse().unwrap(), 8080)]);
        assert_eq!(ports[1].backends, [("10.213.0.2".parse().unwrap(), 9000)]);
    }

    #[test]
    fn nat_rules_balance_uniformly_and_remove_stale_chains() {
        let instance = Instance::default();
        let port = Balanced {
            namespace: "shop".into(),
            service: "web".into(),
            vip: "10.214.0.5".parse().unwrap(),
            port: 80,
            protocol: "tcp".into(),
            backends: vec![
                ("10.213.0.2".parse().unwrap(), 8080),
                ("10.213.0.3".parse().unwrap(), 8080),
                ("10.213.0.4".parse().unwrap(), 8080),
            ],
        };
        let text = nat_rules(
            &instance,
            std::slice::from_ref(&port),
            &["OSM-SVC-DEADBEEF".into()],
            ServiceSource::Masqueraded,
        );
        assert!(
            text.contains("--probability 0.33333333333 -j DNAT --to-destination 10.213.0.2:8080"),
            "{text}"
        );
        assert!(
            text.contains("--probability 0.50000000000 -j DNAT --to-destination 10.213.0.3:8080")
        );
        assert!(text.contains("-p tcp -j DNAT --to-destination 10.213.0.4:8080"));
        assert!(text.contains("-A OSM-SERVICES -d 10.214.0.5/32 -p tcp --dport 80"));
        assert!(text.contains(":OSM-SVC-DEADBEEF - [0:0]") && text.contains("-X OSM-SVC-DEADBEEF"));
        assert!(text.ends_with("COMMIT\n"));
        assert!(text.contains("-s 10.213.0.0/16 -m conntrack --ctstate DNAT -j MASQUERADE"));

        // Sources kept: only a pod sent to itself is masqueraded, and what
        // leaves the host.
        let text = nat_rules(&instance, &[port], &[], ServiceSource::Preserved);
        assert!(!text.contains("-s 10.213.0.0/16 -m conntrack"), "{text}");
        for ip in ["10.213.0.2", "10.213.0.3", "10.213.0.4"] {
            assert!(
                text.contains(&format!(
                    "-s {ip}/32 -d {ip}/32 -m conntrack --ctstate DNAT -j MASQUERADE"
                )),
                "{text}"
            );
        }
        assert!(
            text.contains("-s 10.213.0.0/16 ! -d 10.213.0.0/16 ! -o osm-br -j MASQUERADE"),
            "{text}"
        );
    }

    #[test]
    fn a_port_without_endpoints_is_rejected_in_filter() {
        let instance = Instance::default();
        let port = Balanced {
            namespace: "shop".into(),
            service: "web".into(),
            vip: "10.214.0.5".parse().unwrap(),
            port: 80,
            protocol: "tcp".into(),
            backends: vec![],
        };
        let text = filter_rules(&instance, std::slice::from_ref(&port));
        assert!(text.contains("-d 10.214.0.5/32 -p tcp --dport 80"));
        assert!(text.contains("REJECT --reject-with tcp-reset"));
        assert!(!nat_rules(&instance, &[port], &[], ServiceSource::Preserved).contains("-j DNAT"));
    }
}
