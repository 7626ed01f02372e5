//! Meshed pods addressed directly: a client that dials a pod's own address
//! and port (not its Service's) still gets mTLS to that pod and the pod's
//! identity checked, as Linkerd and Istio do, instead of a plaintext
//! passthrough its peer refuses. No route, split or retry applies (those
//! belong to the Service address); the pod is reached as itself.
//!
//! A pod address is claimed by every Service (with a cluster address)
//! that lists the pod; the first by key names it in metrics. Its target
//! and service are made on first use: a big cluster has many pods and few
//! of them are dialled by address.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use super::{EndpointSet, OutboundService, key_set::KeySet};
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
            let addr = pod_addr(self.handle.spec.addr);
            let key: Arc<str> = format!("{}@{addr}", self.owner.key).into();
            Arc::new(OutboundService {
                key: key.clone(),
                namespace: self.owner.namespace.clone(),
                name: self.owner.name.clone(),
                port: addr.port(),
                protocol: self.owner.protocol,
                cluster_addressed: false,
                endpoints: Arc::new(EndpointSet::with_endpoints(
                    key,
                    vec![self.handle.clone()],
                    self.owner.endpoints.breaker.clone(),
                )),
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

/// The addresses of the meshed pods a service lists in its own set
/// (their handles are not made): none without a cluster address (a
/// headless Service's pods are reached through their own entries).
pub(super) fn claimed(service: &OutboundService) -> Vec<SocketAddr> {
    if !service.cluster_addressed {
        return Vec::new();
    }
    let mut addrs = service.endpoints.meshed_addrs();
    for addr in &mut addrs {
        *addr = pod_addr(*addr);
    }
    addrs
}

fn pod_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(crate::policy::canonical_ip(addr.ip()), addr.port())
}

/// The handle of `owner`'s meshed endpoint at `addr` (the owner's
/// endpoints are made if they were not).
fn claimed_handle(owner: &OutboundService, addr: &SocketAddr) -> Option<Arc<EndpointHandle>> {
    if !owner.cluster_addressed {
        return None;
    }
    owner
        .endpoints
        .endpoints()
        .iter()
        .find(|h| h.spec.identity.is_some() && pod_addr(h.spec.addr) == *addr)
        .cloned()
}

type Services = imbl::OrdMap<Arc<str>, Arc<OutboundService>>;

/// The pod addresses and which services claim each.
#[derive(Debug, Clone, Default)]
pub(super) struct PodIndex {
    // One map: the claims and the target of an address side by side (two
    // maps of 30,000 addresses were 6 MB of B-tree nodes).
    entries: imbl::OrdMap<SocketAddr, PodEntry>,
}

/// The services that claim one pod address, and its target once asked
/// for: most pod addresses of a big cluster are never dialled, and a
/// target made for each was 80 bytes an address.
#[derive(Debug, Clone, Default)]
struct PodEntry {
    claims: KeySet,
    target: OnceLock<Arc<PodTarget>>,
}

impl PodIndex {
    /// Every pod address of `services`, in a map with full nodes.
    pub fn build(services: &Services) -> Self {
        let mut claims: Vec<(SocketAddr, &Arc<str>)> = Vec::new();
        for service in services.values() {
            claims.extend(
                claimed(service)
                    .into_iter()
                    .map(|addr| (addr, &service.key)),
            );
        }
        // Stable: an address's claims stay in key order.
        claims.sort_by_key(|(addr, _)| *addr);
        let mut entries: Vec<(SocketAddr, PodEntry)> = Vec::new();
        for (addr, key) in claims {
            match entries.last_mut() {
                Some((last, entry)) if *last == addr => entry.claims.insert(key),
                _ => {
                    let mut entry = PodEntry::default();
                    entry.claims.insert(key);
                    entries.push((addr, entry));
                }
            }
        }
        Self {
            entries: crate::config::packed::packed_from(entries),
        }
    }

    pub fn claim(&mut self, key: &Arc<str>, addr: SocketAddr) {
        self.entries.entry(addr).or_default().claims.insert(key);
    }

    /// Takes `key`'s claim off `addr`; [`Self::refresh`] then drops an
    /// address nobody claims.
    pub fn unclaim(&mut self, key: &str, addr: SocketAddr) {
        if let Some(entry) = self.entries.get_mut(&addr) {
            entry.claims.remove(key);
        }
    }

    /// After `addr`'s claims or its claimants changed: its target is made
    /// again when next asked for, or the address is dropped when nobody
    /// claims it any more.
    pub fn refresh(&mut self, addr: SocketAddr) {
        let unclaimed = self.entries.get_mut(&addr).is_some_and(|entry| {
            entry.target = OnceLock::new();
            entry.claims.is_empty()
        });
        if unclaimed {
            self.entries.remove(&addr);
        }
    }

    /// The pod at `addr`, named after the first service that claims it by
    /// key.
    pub fn target(
        &self,
        addr: &SocketAddr,
        services: &Services,
        mesh_request_timeout: Option<Duration>,
    ) -> Option<&Arc<PodTarget>> {
        let entry = self.entries.get(addr)?;
        if let Some(target) = entry.target.get() {
            return Some(target);
        }
        let made = entry.claims.iter().find_map(|key| {
            let owner = services.get(&**key)?;
            let handle = claimed_handle(owner, addr)?;
            Some(PodTarget::new(owner, &handle, mesh_request_timeout))
        })?;
        Some(entry.target.get_or_init(|| made))
    }

    /// Every claimed pod address.
    pub fn addrs(&self) -> impl Iterator<Item = &SocketAddr> {
        self.entries.keys()
    }
}
