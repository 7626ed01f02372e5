//! Meshed pods addressed directly: a client that dials a pod's own address
//! and port (not its Service's) still gets mTLS to that pod and the pod's
//! identity checked, as Linkerd and Istio do, instead of a plaintext
//! passthrough its peer refuses. No route, split or retry applies (those
//! belong to the Service address); the pod is reached as itself.
//!
//! A pod address is claimed by every Service (with a cluster address)
//! that lists the pod; the first by key names it in metrics. Its service
//! is built on first use: a big cluster has many pods and few of them are
//! dialled by address.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use super::{EndpointSet, OutboundService, key_set::KeySet, outbound::Indexed};
use crate::upstream::EndpointHandle;

/// One meshed pod reached by its own address.
#[derive(Debug)]
pub struct PodTarget {
    /// The Service that names it.
    owner: Arc<OutboundService>,
    handle: Arc<EndpointHandle>,
    request_timeout: Option<Duration>,
    service: OnceLock<Arc<OutboundService>>,
}

impl PodTarget {
    fn new(
        owner: &Arc<OutboundService>,
        handle: &Arc<EndpointHandle>,
        request_timeout: Option<Duration>,
    ) -> Arc<Self> {
        Arc::new(Self {
            owner: owner.clone(),
            handle: handle.clone(),
            request_timeout,
            service: OnceLock::new(),
        })
    }

    /// The pod as a service of its own (built once, on first use).
    pub fn service(&self) -> &Arc<OutboundService> {
        self.service.get_or_init(|| {
            let addr = pod_addr(&self.handle);
            let key: Arc<str> = format!("{}@{addr}", self.owner.key).into();
            Arc::new(OutboundService {
                key: key.clone(),
                namespace: self.owner.namespace.clone(),
                name: self.owner.name.clone(),
                port: addr.port(),
                protocol: self.owner.protocol,
                endpoints: Arc::new(EndpointSet {
                    key,
                    endpoints: vec![self.handle.clone()],
                    breaker: self.owner.endpoints.breaker.clone(),
                    outlier: None,
                }),
                split: None,
                split_matches: Vec::new(),
                retry: None,
                request_timeout: self.request_timeout,
                backend_request_timeout: None,
                routes: None,
            })
        })
    }
}

/// The meshed pods a service lists in its own set: none without a
/// cluster address (a headless Service's pods are reached through their
/// own entries).
pub(super) fn claimed(
    indexed: &Indexed,
) -> impl Iterator<Item = (SocketAddr, &Arc<EndpointHandle>)> + '_ {
    let endpoints = if indexed.addrs.is_empty() {
        &[][..]
    } else {
        &indexed.service.endpoints.endpoints[..]
    };
    endpoints
        .iter()
        .filter(|h| h.spec.identity.is_some())
        .map(|h| (pod_addr(h), h))
}

fn pod_addr(handle: &EndpointHandle) -> SocketAddr {
    SocketAddr::new(
        crate::policy::canonical_ip(handle.spec.addr.ip()),
        handle.spec.addr.port(),
    )
}

type Services = imbl::OrdMap<Arc<str>, Arc<Indexed>>;

/// The pod addresses and which services claim each.
#[derive(Debug, Clone, Default)]
pub(super) struct PodIndex {
    pub targets: imbl::OrdMap<SocketAddr, Arc<PodTarget>>,
    claims: imbl::OrdMap<SocketAddr, KeySet>,
}

impl PodIndex {
    /// Every pod address of `services`. They are read in key order, so
    /// the first service to claim an address is the one [`Self::refresh`]
    /// would pick: each target is made once, here (a second pass of
    /// refreshes was a tenth of a cold build).
    pub fn build(services: &Services, mesh_request_timeout: Option<Duration>) -> Self {
        let mut index = Self::default();
        for indexed in services.values() {
            for (addr, handle) in claimed(indexed) {
                index.claim(&indexed.service.key, addr);
                if !index.targets.contains_key(&addr) {
                    let target = PodTarget::new(&indexed.service, handle, mesh_request_timeout);
                    index.targets.insert(addr, target);
                }
            }
        }
        index
    }

    pub fn claim(&mut self, key: &Arc<str>, addr: SocketAddr) {
        self.claims.entry(addr).or_default().insert(key);
    }

    pub fn unclaim(&mut self, key: &str, addr: SocketAddr) {
        let now_empty = self.claims.get_mut(&addr).is_some_and(|keys| {
            keys.remove(key);
            keys.is_empty()
        });
        if now_empty {
            self.claims.remove(&addr);
        }
    }

    /// Sets `addr`'s target from its claims: the first claiming service by
    /// key.
    pub fn refresh(
        &mut self,
        addr: SocketAddr,
        services: &Services,
        mesh_request_timeout: Option<Duration>,
    ) {
        let target = self.claims.get(&addr).and_then(|keys| {
            keys.iter().find_map(|key| {
                let owner = services.get(&**key)?;
                let (_, handle) = claimed(owner).find(|(a, _)| *a == addr)?;
                Some(PodTarget::new(&owner.service, handle, mesh_request_timeout))
            })
        });
        match target {
            Some(t) => {
                self.targets.insert(addr, t);
            }
            None => {
                self.targets.remove(&addr);
            }
        }
    }
}
