//! Outbound services and endpoint sets: the services by address and by
//! host name, their splits and A/B matches, and each endpoint's identity.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use osm_api::v1;

use super::{
    Build, ConfigError, EndpointSet, OutboundService, Retries, Split, compile_matches, err,
    port_of, protocol_of,
};
use crate::{
    identity::{SpiffeId, policy::TlsPolicy},
    resilience::{
        breaker::{Breaker, Limits},
        budget::RetryBudget,
        outlier::OutlierRule,
        retry::RetryRule,
    },
    routing::split::WeightedChoice,
    upstream::{EndpointRegistry, EndpointSpec},
};

/// What an endpoint set takes from the service that owns it.
#[derive(Default)]
struct SetPolicy {
    limits: Limits,
    outlier: Option<OutlierRule>,
}

/// The circuit-breaking limits and outlier detection of each service's
/// own endpoint set. A service whose settings are wrong is refused with
/// its other fields (in [`build_service`]); its set gets none.
fn set_policies(services: &[v1::OutboundService]) -> HashMap<&str, SetPolicy> {
    let mut out = HashMap::new();
    for s in services {
        let outlier = s
            .outlier_detection
            .as_ref()
            .and_then(|o| OutlierRule::from_config(o).ok().flatten());
        let limits = s
            .limits
            .as_ref()
            .map(Limits::from_config)
            .unwrap_or_default();
        out.entry(s.endpoints.as_str())
            .or_insert(SetPolicy { limits, outlier });
    }
    out
}

pub(super) fn build_endpoint_sets(
    sets: &[v1::EndpointSet],
    services: &[v1::OutboundService],
    registry: &EndpointRegistry,
    (mesh_connect_timeout, tls): (Duration, &Arc<TlsPolicy>),
    build: &mut Build,
) -> Result<HashMap<String, Arc<EndpointSet>>, ConfigError> {
    let policies = set_policies(services);
    let mut out = HashMap::new();
    for (i, set) in sets.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        if set.key.is_empty() {
            build.keep::<()>(Err(err(format!("{at}.key"), "must not be empty")))?;
            continue;
        }
        if out.contains_key(&set.key) {
            let twice = err(
                format!("{at}.key"),
                format!("{:?} is listed twice", set.key),
            );
            build.keep::<()>(Err(twice))?;
            continue;
        }
        let policy = policies.get(set.key.as_str());
        let limits = policy.map(|p| p.limits.clone()).unwrap_or_default();
        let connect_timeout = limits.connect_timeout.unwrap_or(mesh_connect_timeout);
        let breaker = (!limits.is_unlimited()).then(|| {
            registry
                .breakers
                .get_or((set.key.clone(), limits.clone()), || Breaker::new(limits))
        });
        let mut endpoints = Vec::new();
        for (j, e) in set.endpoints.iter().enumerate() {
            // Fail-closed: an endpoint that cannot be built gets no traffic.
            let built = endpoint_spec(
                &format!("{at}.endpoints[{j}]"),
                set,
                e,
                connect_timeout,
                tls,
            );
            if let Some(spec) = build.keep(built)? {
                endpoints.push(registry.get(spec));
            }
        }
        let value = Arc::new(EndpointSet {
            key: set.key.as_str().into(),
            endpoints,
            breaker,
            outlier: policy.and_then(|p| p.outlier.clone()),
        });
        out.insert(set.key.clone(), value);
    }
    Ok(out)
}

/// One endpoint: its address and the identity it must prove.
fn endpoint_spec(
    at: &str,
    set: &v1::EndpointSet,
    e: &v1::Endpoint,
    connect_timeout: Duration,
    tls: &Arc<TlsPolicy>,
) -> Result<EndpointSpec, ConfigError> {
    let addr: SocketAddr = e.address.parse().map_err(|_| {
        err(
            format!("{at}.address"),
            format!("{:?} is not an ip:port address", e.address),
        )
    })?;
    let identity = if e.identity.is_empty() {
        None
    } else {
        let id: SpiffeId = e
            .identity
            .parse()
            .map_err(|x: crate::identity::SpiffeIdError| {
                err(format!("{at}.identity"), x.to_string())
            })?;
        crate::identity::tls::server_name_for(&id)
            .map_err(|m| err(format!("{at}.identity"), m.to_string()))?;
        Some(id)
    };
    Ok(EndpointSpec {
        addr,
        identity,
        namespace: set.namespace.clone(),
        service: set.service.clone(),
        pod: e.pod.clone(),
        workload_kind: e.workload_kind.clone(),
        workload_name: e.workload_name.clone(),
        connect_timeout,
        tls: tls.clone(),
    })
}

pub(super) type OutboundIndexes = (
    HashMap<SocketAddr, Arc<OutboundService>>,
    HashMap<Box<str>, Vec<Arc<OutboundService>>>,
);

/// A service and the keys it is found by.
struct Indexed {
    service: Arc<OutboundService>,
    addrs: Vec<SocketAddr>,
    hosts: Vec<Box<str>>,
}

pub(super) fn build_outbound(
    services: &[v1::OutboundService],
    sets: &HashMap<String, Arc<EndpointSet>>,
    registry: &EndpointRegistry,
    mesh_request_timeout: Option<Duration>,
    build: &mut Build,
) -> Result<OutboundIndexes, ConfigError> {
    let mut by_addr = HashMap::new();
    let mut by_host: HashMap<Box<str>, Vec<Arc<OutboundService>>> = HashMap::new();
    let mut keys = HashSet::new();
    for (i, s) in services.iter().enumerate() {
        let at = format!("outbound[{i}]");
        let indexed =
            index_service(&at, s, sets, registry, mesh_request_timeout).and_then(|indexed| {
                if keys.contains(&s.key) {
                    return Err(err(
                        format!("{at}.key"),
                        format!("{:?} is listed twice", s.key),
                    ));
                }
                conflicts(&at, s, &indexed, &by_addr, &by_host)?;
                Ok(indexed)
            });
        // Fail-closed: a service that cannot be built is not routed to.
        let Some(indexed) = build.keep(indexed)? else {
            continue;
        };
        keys.insert(s.key.clone());
        for addr in indexed.addrs {
            by_addr.insert(addr, indexed.service.clone());
        }
        for host in indexed.hosts {
            by_host
                .entry(host)
                .or_default()
                .push(indexed.service.clone());
        }
    }
    Ok((by_addr, by_host))
}

/// A service with its addresses and host names, checked on their own.
fn index_service(
    at: &str,
    s: &v1::OutboundService,
    sets: &HashMap<String, Arc<EndpointSet>>,
    registry: &EndpointRegistry,
    mesh_request_timeout: Option<Duration>,
) -> Result<Indexed, ConfigError> {
    let service = Arc::new(build_service(at, s, sets, registry, mesh_request_timeout)?);
    let mut addrs = Vec::new();
    for (j, vip) in s.vips.iter().enumerate() {
        let ip: IpAddr = vip.parse().map_err(|_| {
            err(
                format!("{at}.vips[{j}]"),
                format!("{vip:?} is not an IP address"),
            )
        })?;
        addrs.push(SocketAddr::new(
            crate::policy::canonical_ip(ip),
            service.port,
        ));
    }
    let mut hosts = Vec::new();
    for (j, host) in s.hostnames.iter().enumerate() {
        let field = format!("{at}.hostnames[{j}]");
        let (name, port) = crate::routing::normalize_authority(host, service.port)
            .ok_or_else(|| err(&field, format!("{host:?} is not a host name")))?;
        if port != service.port {
            return Err(err(
                &field,
                format!(
                    "{host:?} names port {port}, the service port is {}",
                    service.port
                ),
            ));
        }
        hosts.push(name.as_ref().into());
    }
    Ok(Indexed {
        service,
        addrs,
        hosts,
    })
}

/// An address or host name already taken by another service.
fn conflicts(
    at: &str,
    s: &v1::OutboundService,
    indexed: &Indexed,
    by_addr: &HashMap<SocketAddr, Arc<OutboundService>>,
    by_host: &HashMap<Box<str>, Vec<Arc<OutboundService>>>,
) -> Result<(), ConfigError> {
    for (j, addr) in indexed.addrs.iter().enumerate() {
        if let Some(other) = by_addr.get(addr) {
            return Err(err(
                format!("{at}.vips[{j}]"),
                format!("{addr} is already the address of {}", other.key),
            ));
        }
    }
    for (j, host) in indexed.hosts.iter().enumerate() {
        let port = indexed.service.port;
        if let Some(other) = by_host
            .get(host)
            .into_iter()
            .flatten()
            .find(|o| o.port == port)
        {
            return Err(err(
                format!("{at}.hostnames[{j}]"),
                format!("{:?} already names {}", s.hostnames[j], other.key),
            ));
        }
    }
    Ok(())
}

pub(super) fn build_service(
    at: &str,
    s: &v1::OutboundService,
    sets: &HashMap<String, Arc<EndpointSet>>,
    registry: &EndpointRegistry,
    mesh_request_timeout: Option<Duration>,
) -> Result<OutboundService, ConfigError> {
    if s.key.is_empty() {
        return Err(err(format!("{at}.key"), "must not be empty"));
    }
    let port = port_of(&format!("{at}.port"), s.port)?;
    let protocol = protocol_of(&format!("{at}.protocol"), s.protocol)?;
    let lookup = |field: String, key: &str| {
        sets.get(key)
            .cloned()
            .ok_or_else(|| err(field, format!("no endpoint set has the key {key:?}")))
    };
    let endpoints = lookup(format!("{at}.endpoints"), &s.endpoints)?;
    let split = if s.split.is_empty() {
        None
    } else {
        let mut backends = Vec::new();
        let mut weights = Vec::new();
        for (j, b) in s.split.iter().enumerate() {
            backends.push(lookup(format!("{at}.split[{j}].endpoints"), &b.endpoints)?);
            weights.push(b.weight);
        }
        let weights = WeightedChoice::new(&weights)
            .ok_or_else(|| err(format!("{at}.split"), "the weights add up to 0"))?;
        Some(Split { backends, weights })
    };
    if !s.split_matches.is_empty() && split.is_none() {
        return Err(err(
            format!("{at}.splitMatches"),
            "A/B matches need a split",
        ));
    }
    if let Some(outlier) = &s.outlier_detection {
        OutlierRule::from_config(outlier).map_err(|m| err(format!("{at}.outlierDetection"), m))?;
    }
    let retry = match &s.retry {
        Some(policy) => Some(Retries {
            rule: RetryRule::from_config(policy).map_err(|m| err(format!("{at}.retry"), m))?,
            budget: registry
                .budgets
                .get_or(s.key.clone(), || Mutex::new(RetryBudget::default())),
        }),
        None => None,
    };
    Ok(OutboundService {
        key: s.key.as_str().into(),
        namespace: s.namespace.as_str().into(),
        name: s.name.as_str().into(),
        port,
        protocol,
        endpoints,
        split,
        split_matches: compile_matches(&format!("{at}.splitMatches"), &s.split_matches)?,
        retry,
        request_timeout: super::optional_ms(s.request_timeout_ms).or(mesh_request_timeout),
        backend_request_timeout: super::optional_ms(s.backend_request_timeout_ms),
        routes: super::routes::build_routes(at, &s.routes, sets, registry)?,
    })
}
