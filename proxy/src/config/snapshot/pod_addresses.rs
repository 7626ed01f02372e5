//! Meshed pods addressed directly: a client that dials a pod's own address
//! and port (not its Service's) still gets mTLS to that pod and the pod's
//! identity checked, as Linkerd and Istio do, instead of a plaintext
//! passthrough its peer refuses. No route, split or retry applies (those
//! belong to the Service address); the pod is reached as itself.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use osm_api::v1;

use super::{EndpointSet, OutboundService, outbound::build_service};
use crate::upstream::EndpointRegistry;

/// Adds an entry to `by_addr` for every meshed endpoint of `services`
/// whose address no Service address already takes (the first Service
/// listing a pod names it in metrics).
pub(super) fn add_pod_addresses(
    services: &[v1::OutboundService],
    sets: &HashMap<String, Arc<EndpointSet>>,
    registry: &EndpointRegistry,
    mesh_request_timeout: Option<Duration>,
    by_addr: &mut HashMap<SocketAddr, Arc<OutboundService>>,
) {
    for s in services.iter().filter(|s| !s.vips.is_empty()) {
        let Some(set) = sets.get(&s.endpoints) else {
            continue;
        };
        for handle in set.endpoints.iter().filter(|h| h.spec.identity.is_some()) {
            let addr = SocketAddr::new(
                crate::policy::canonical_ip(handle.spec.addr.ip()),
                handle.spec.addr.port(),
            );
            if by_addr.contains_key(&addr) {
                continue;
            }
            let key = format!("{}@{addr}", s.key);
            let one = Arc::new(EndpointSet {
                key: key.as_str().into(),
                endpoints: vec![handle.clone()],
                breaker: set.breaker.clone(),
                outlier: None,
            });
            let wire = v1::OutboundService {
                key: key.clone(),
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                port: u32::from(addr.port()),
                vips: vec![addr.ip().to_string()],
                protocol: s.protocol,
                endpoints: key.clone(),
                ..Default::default()
            };
            let sets = HashMap::from([(key, one)]);
            // Built from a Service that was: it builds too; if not, the
            // pod is simply not reachable by its own address.
            if let Ok(service) =
                build_service("pod address", &wire, &sets, registry, mesh_request_timeout)
            {
                by_addr.insert(addr, Arc::new(service));
            }
        }
    }
}
