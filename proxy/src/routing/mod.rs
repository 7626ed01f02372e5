//! Outbound routing decisions: pure functions over a config snapshot.

pub mod balance;
pub mod egress;
pub mod http_route;
pub mod route_filters;
pub mod split;

use std::{net::SocketAddr, sync::Arc};

use crate::config::{EndpointSet, OutboundService, Snapshot};
use crate::policy::HttpRequestView;
use crate::upstream::EndpointHandle;

/// The service addressed by an intercepted connection's original
/// destination: a Service's cluster address, else a meshed pod's own.
pub fn service_by_addr(snapshot: &Snapshot, addr: SocketAddr) -> Option<&Arc<OutboundService>> {
    let addr = SocketAddr::new(crate::policy::canonical_ip(addr.ip()), addr.port());
    snapshot
        .outbound_by_addr
        .get(&addr)
        .or_else(|| Some(snapshot.pod_at(&addr)?.service()))
}

/// Splits an authority into a lower-case host without a trailing dot, and a
/// port (`default_port` when absent).
pub fn normalize_authority(
    authority: &str,
    default_port: u16,
) -> Option<(std::borrow::Cow<'_, str>, u16)> {
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal without a port, "[::1]", has ':' inside brackets.
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
        _ => (authority, default_port),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    };
    Some((host, port))
}

/// The service an HTTP authority (Host header or :authority) names.
pub fn service_by_authority<'a>(
    snapshot: &'a Snapshot,
    authority: &str,
) -> Option<&'a Arc<OutboundService>> {
    let (host, port) = normalize_authority(authority, 80)?;
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        return service_by_addr(snapshot, SocketAddr::new(ip, port));
    }
    snapshot.service_by_host(&host, port)
}

/// Picks the endpoint set a request (or, with `request: None`, a TCP
/// connection) goes to: without A/B matches everything follows the split;
/// with them, only matching requests do and the rest (TCP connections
/// included, which carry nothing to match) go to the service's own
/// endpoints. `random` is uniform in `0..u64::MAX`.
pub fn choose_backend<'a>(
    service: &'a OutboundService,
    request: Option<&HttpRequestView<'_>>,
    random: u64,
) -> &'a Arc<EndpointSet> {
    let Some(split) = &service.split else {
        return &service.endpoints;
    };
    if !service.split_matches.is_empty() {
        let follows_split = request.is_some_and(|r| {
            crate::policy::matcher::any_matches(
                &service.split_matches,
                r.method,
                r.path,
                r.authority,
                r.headers,
            )
        });
        if !follows_split {
            return &service.endpoints;
        }
    }
    &split.backends[split.weights.pick(random)]
}

/// The endpoint of `set` for the next request or connection: power of two
/// choices over load, passing over endpoints outlier detection ejected
/// (unless every one is). None when the set is empty.
pub fn choose_endpoint(set: &EndpointSet) -> Option<&Arc<EndpointHandle>> {
    let endpoints = set.endpoints();
    if endpoints.is_empty() {
        return None;
    }
    let chosen =
        &endpoints[balance::p2c(endpoints.len(), fastrand::u64(..), fastrand::u64(..), |i| {
            endpoints[i].load_cost()
        })];
    if set.outlier.is_none() {
        return Some(chosen);
    }
    let now = crate::resilience::now();
    if !chosen.is_ejected(now) {
        return Some(chosen);
    }
    // Rare (an ejection is in force): choose among the others.
    let healthy: Vec<&Arc<EndpointHandle>> =
        endpoints.iter().filter(|e| !e.is_ejected(now)).collect();
    if healthy.is_empty() {
        return Some(chosen);
    }
    Some(
        healthy[balance::p2c(healthy.len(), fastrand::u64(..), fastrand::u64(..), |i| {
            healthy[i].load_cost()
        })],
    )
}

/// An endpoint of `set` other than `avoid` (which just left a request
/// unprocessed), by power of two choices over the others that are not
/// ejected; `avoid` itself when it is the only one. Power of two choices
/// alone would favour it: an endpoint failing fast carries the least load.
pub fn choose_other_endpoint<'a>(
    set: &'a EndpointSet,
    avoid: &Arc<EndpointHandle>,
) -> Option<&'a Arc<EndpointHandle>> {
    let now = crate::resilience::now();
    let others: Vec<&Arc<EndpointHandle>> = set
        .endpoints()
        .iter()
        .filter(|e| !Arc::ptr_eq(e, avoid))
        .filter(|e| set.outlier.is_none() || !e.is_ejected(now))
        .collect();
    if others.is_empty() {
        return choose_endpoint(set);
    }
    Some(
        others[balance::p2c(others.len(), fastrand::u64(..), fastrand::u64(..), |i| {
            others[i].load_cost()
        })],
    )
}

#[cfg(test)]
mod tests;
