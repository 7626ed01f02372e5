//! Where an inbound connection to a pod port is delivered: no port is
//! reachable through the proxy that Kubernetes would not expose.
//!
//! - The proxy's own listeners (admin, outbound, inbound) are never a
//!   destination: the network must not reach them through the inbound side
//!   (the outbound listener would lend the pod's identity to a stranger).
//! - A port the pod's containers declare is delivered on loopback, as OSM
//!   did (applications listening on 127.0.0.1 keep working).
//! - Any other port is delivered to the pod's own address, as Kubernetes
//!   would: an application listening only on loopback stays private.
//! - With no declared ports known (an older injector, a static config),
//!   every port is delivered on loopback.
//! - MeshConfig `sidecar.localProxyMode: PodIP` delivers every port to the
//!   pod's address (applications that bind only to it, like ZooKeeper or
//!   Kafka); loopback only when the address is unknown.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use crate::refusal::Refusal;

/// What the proxy knows of its pod's ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodPorts {
    /// The pod's address (`POD_IP`).
    pub pod_ip: Option<IpAddr>,
    /// Ports the pod's containers declare (`OSM_APP_PORTS`); None: unknown.
    pub declared: Option<Arc<[u16]>>,
    /// The proxy's own listener ports.
    pub own: Arc<[u16]>,
}

/// The address the application is reached at for a connection that was
/// sent to `orig_dst`.
pub fn app_addr(
    orig_dst: SocketAddr,
    ports: &PodPorts,
    on_pod_ip: bool,
) -> Result<SocketAddr, Refusal> {
    let port = orig_dst.port();
    if ports.own.contains(&port) {
        return Err(Refusal::ProxyPort { port });
    }
    let loopback = match orig_dst {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    if on_pod_ip {
        return Ok(SocketAddr::new(ports.pod_ip.unwrap_or(loopback), port));
    }
    let declared = match &ports.declared {
        None => return Ok(SocketAddr::new(loopback, port)),
        Some(declared) => declared.contains(&port),
    };
    match (declared, ports.pod_ip) {
        (true, _) => Ok(SocketAddr::new(loopback, port)),
        (false, Some(ip)) => Ok(SocketAddr::new(ip, port)),
        (false, None) => Err(Refusal::UndeclaredPort { port }),
    }
}

/// `8080,9090` as the injector writes `OSM_APP_PORTS`; empty: none
/// declared (every port goes to the pod address).
pub fn parse_declared(text: &str) -> Result<Arc<[u16]>, String> {
    osm_api::compat::exclusions::port_list(text)
        .map(Into::into)
        .map_err(|e| format!("OSM_APP_PORTS: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pod_port_goes_where_kubernetes_would_deliver_it() {
        let pod_ip: IpAddr = "10.244.1.7".parse().unwrap();
        let ports = |declared: Option<&[u16]>, ip: Option<IpAddr>| PodPorts {
            pod_ip: ip,
            declared: declared.map(Into::into),
            own: Arc::from([15000, 15001, 15003]),
        };
        let to = |port: u16| SocketAddr::new(pod_ip, port);
        let lo = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let cases: Vec<(&str, PodPorts, u16, Result<SocketAddr, Refusal>)> = vec![
            (
                "the proxy's admin",
                ports(Some(&[8080]), Some(pod_ip)),
                15000,
                Err(Refusal::ProxyPort { port: 15000 }),
            ),
            (
                "the proxy's outbound listener, even undeclared-ports-unknown",
                ports(None, None),
                15001,
                Err(Refusal::ProxyPort { port: 15001 }),
            ),
            (
                "a declared port: loopback",
                ports(Some(&[8080]), Some(pod_ip)),
                8080,
                Ok(lo(8080)),
            ),
            (
                "an undeclared port: the pod address",
                ports(Some(&[8080]), Some(pod_ip)),
                6060,
                Ok(to(6060)),
            ),
            (
                "an undeclared port, no pod address: refused",
                ports(Some(&[8080]), None),
                6060,
                Err(Refusal::UndeclaredPort { port: 6060 }),
            ),
            (
                "nothing declared known: loopback",
                ports(None, Some(pod_ip)),
                6060,
                Ok(lo(6060)),
            ),
        ];
        for (case, ports, port, want) in cases {
            assert_eq!(app_addr(to(port), &ports, false), want, "{case}");
        }
        // localProxyMode PodIP: every port on the pod address, the proxy's
        // own still refused.
        let pod_ip_mode: Vec<(PodPorts, u16, Result<SocketAddr, Refusal>)> = vec![
            (ports(Some(&[8080]), Some(pod_ip)), 8080, Ok(to(8080))),
            (ports(None, Some(pod_ip)), 2181, Ok(to(2181))),
            (ports(None, None), 2181, Ok(lo(2181))),
            (
                ports(Some(&[8080]), Some(pod_ip)),
                15001,
                Err(Refusal::ProxyPort { port: 15001 }),
            ),
        ];
        for (ports, port, want) in pod_ip_mode {
            assert_eq!(app_addr(to(port), &ports, true), want, "PodIP mode, {port}");
        }
        assert_eq!(&*parse_declared("8080, 9090").unwrap(), &[8080, 9090]);
        assert!(parse_declared("").unwrap().is_empty());
        assert!(
            parse_declared("http")
                .unwrap_err()
                .starts_with("OSM_APP_PORTS")
        );
    }
}
