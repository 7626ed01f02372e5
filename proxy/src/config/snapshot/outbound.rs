//! Outbound services and endpoint sets: the services by address and by
//! host name, their splits and A/B matches, and each endpoint's identity.

use std::{
    borrow::Cow,
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use osm_api::v1;

use super::{
    Build, ConfigError, EndpointSet, OutboundService, Retries, Sets, Split, compile_matches, err,
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

/// What an endpoint set takes from the service that owns it (the first
/// service, by key, whose own set it is).
#[derive(Default)]
pub(super) struct SetPolicy {
    limits: Limits,
    outlier: Option<OutlierRule>,
}

/// The circuit-breaking limits and outlier detection a service gives its
/// own endpoint set. A service whose settings are wrong is refused with
/// its other fields (in [`build_service`]); its set gets none.
pub(super) fn set_policy(s: &v1::OutboundService) -> SetPolicy {
    SetPolicy {
        limits: s
            .limits
            .as_ref()
            .map(Limits::from_config)
            .unwrap_or_default(),
        outlier: s
            .outlier_detection
            .as_ref()
            .and_then(|o| OutlierRule::from_config(o).ok().flatten()),
    }
}

/// What every endpoint of the config shares: the mesh's connect timeout
/// and TLS policy.
pub(super) type EndpointDefaults<'a> = (Duration, &'a Arc<TlsPolicy>);

pub(super) fn build_endpoint_sets<'a>(
    sets: impl IntoIterator<Item = Cow<'a, v1::EndpointSet>>,
    services: impl IntoIterator<Item = Cow<'a, v1::OutboundService>>,
    registry: &EndpointRegistry,
    defaults: EndpointDefaults<'_>,
    build: &mut Build,
) -> Result<Sets, ConfigError> {
    let mut policies = HashMap::new();
    for s in services {
        if !policies.contains_key(s.endpoints.as_str()) {
            policies.insert(s.endpoints.clone(), set_policy(&s));
        }
    }
    let mut out = Sets::new();
    for (i, set) in sets.into_iter().enumerate() {
        let at = format!("endpoints[{i}]");
        if out.contains_key(set.key.as_str()) {
            let twice = err(
                format!("{at}.key"),
                format!("{:?} is listed twice", set.key),
            );
            build.keep::<()>(Err(twice))?;
            continue;
        }
        let policy = policies.get(set.key.as_str());
        if let Some(value) = build_set(&at, &set, policy, registry, defaults, build)? {
            out.insert(value.key.clone(), value);
        }
    }
    Ok(out)
}

/// One endpoint set with the policy of the service that owns it; None
/// (fail-closed) without a key.
pub(super) fn build_set(
    at: &str,
    set: &v1::EndpointSet,
    policy: Option<&SetPolicy>,
    registry: &EndpointRegistry,
    (mesh_connect_timeout, tls): EndpointDefaults<'_>,
    build: &mut Build,
) -> Result<Option<Arc<EndpointSet>>, ConfigError> {
    if set.key.is_empty() {
        build.keep::<()>(Err(err(format!("{at}.key"), "must not be empty")))?;
        return Ok(None);
    }
    let limits = policy.map(|p| p.limits.clone()).unwrap_or_default();
    let connect_timeout = limits.connect_timeout.unwrap_or(mesh_connect_timeout);
    let breaker = (!limits.is_unlimited()).then(|| {
        registry
            .breakers
            .get_or((set.key.clone(), limits.clone()), || Breaker::new(limits))
    });
    let mut endpoints = Vec::new();
    let mut names = SetNames::of(set);
    for (j, e) in set.endpoints.iter().enumerate() {
        // Fail-closed: an endpoint that cannot be built gets no traffic.
        let built = endpoint_spec(
            &format!("{at}.endpoints[{j}]"),
            &mut names,
            e,
            connect_timeout,
            tls,
        );
        if let Some(spec) = build.keep(built)? {
            endpoints.push(registry.get(spec));
        }
    }
    Ok(Some(Arc::new(EndpointSet {
        key: set.key.as_str().into(),
        endpoints,
        breaker,
        outlier: policy.and_then(|p| p.outlier.clone()),
    })))
}

/// The names an endpoint set's endpoints have in common, one copy each:
/// the set's namespace and service, and what consecutive endpoints repeat
/// (a workload's pods are listed together).
struct SetNames {
    namespace: Arc<str>,
    service: Arc<str>,
    workload_kind: Option<Arc<str>>,
    workload_name: Option<Arc<str>>,
    identity: Option<SpiffeId>,
}

impl SetNames {
    fn of(set: &v1::EndpointSet) -> Self {
        Self {
            namespace: set.namespace.as_str().into(),
            service: set.service.as_str().into(),
            workload_kind: None,
            workload_name: None,
            identity: None,
        }
    }
}

/// `value`, as the copy `last` holds when it is the same.
fn shared(last: &mut Option<Arc<str>>, value: &str) -> Arc<str> {
    match last {
        Some(s) if **s == *value => s.clone(),
        _ => last.insert(value.into()).clone(),
    }
}

/// One endpoint: its address and the identity it must prove.
fn endpoint_spec(
    at: &str,
    names: &mut SetNames,
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
    } else if let Some(same) = names
        .identity
        .as_ref()
        .filter(|id| id.as_str() == e.identity)
    {
        // Checked when it was first parsed.
        Some(same.clone())
    } else {
        let id: SpiffeId = e
            .identity
            .parse()
            .map_err(|x: crate::identity::SpiffeIdError| {
                err(format!("{at}.identity"), x.to_string())
            })?;
        crate::identity::tls::server_name_for(&id)
            .map_err(|m| err(format!("{at}.identity"), m.to_string()))?;
        names.identity = Some(id.clone());
        Some(id)
    };
    Ok(EndpointSpec {
        addr,
        identity,
        namespace: names.namespace.clone(),
        service: names.service.clone(),
        pod: e.pod.as_str().into(),
        workload_kind: shared(&mut names.workload_kind, &e.workload_kind),
        workload_name: shared(&mut names.workload_name, &e.workload_name),
        connect_timeout,
        tls: tls.clone(),
    })
}

/// The services by address and by host name, and each service as built.
#[derive(Debug, Clone, Default)]
pub(super) struct OutboundIndexes {
    pub by_addr: imbl::OrdMap<SocketAddr, Arc<OutboundService>>,
    pub by_host: imbl::OrdMap<Arc<str>, Vec<Arc<OutboundService>>>,
    // Keyed by the service's own key, and host names shared with
    // `Indexed::hosts`: one copy of each string.
    pub services: imbl::OrdMap<Arc<str>, Arc<Indexed>>,
}

/// A service and the keys it is found by.
#[derive(Debug)]
pub(super) struct Indexed {
    pub service: Arc<OutboundService>,
    pub addrs: Vec<SocketAddr>,
    pub hosts: Vec<Arc<str>>,
}

pub(super) fn build_outbound<'a>(
    services: impl IntoIterator<Item = Cow<'a, v1::OutboundService>>,
    sets: &Sets,
    registry: &EndpointRegistry,
    mesh_request_timeout: Option<Duration>,
    build: &mut Build,
) -> Result<OutboundIndexes, ConfigError> {
    let mut out = OutboundIndexes::default();
    for (i, s) in services.into_iter().enumerate() {
        let at = format!("outbound[{i}]");
        let indexed =
            index_service(&at, &s, sets, registry, mesh_request_timeout).and_then(|indexed| {
                if out.services.contains_key(s.key.as_str()) {
                    return Err(err(
                        format!("{at}.key"),
                        format!("{:?} is listed twice", s.key),
                    ));
                }
                out.conflicts(&at, &s, &indexed)?;
                Ok(indexed)
            });
        // Fail-closed: a service that cannot be built is not routed to.
        if let Some(indexed) = build.keep(indexed)? {
            out.insert(indexed);
        }
    }
    Ok(out)
}

impl OutboundIndexes {
    /// Adds a service that [`OutboundIndexes::conflicts`] passed.
    pub(super) fn insert(&mut self, indexed: Indexed) {
        for addr in &indexed.addrs {
            self.by_addr.insert(*addr, indexed.service.clone());
        }
        for host in &indexed.hosts {
            self.by_host
                .entry(host.clone())
                .or_default()
                .push(indexed.service.clone());
        }
        self.services
            .insert(indexed.service.key.clone(), Arc::new(indexed));
    }

    /// Takes a service out of every index; what it was.
    pub(super) fn remove(&mut self, key: &str) -> Option<Arc<Indexed>> {
        let old = self.services.remove(key)?;
        for addr in &old.addrs {
            if self
                .by_addr
                .get(addr)
                .is_some_and(|s| Arc::ptr_eq(s, &old.service))
            {
                self.by_addr.remove(addr);
            }
        }
        for host in &old.hosts {
            let now_empty = self.by_host.get_mut(host).is_some_and(|list| {
                list.retain(|s| !Arc::ptr_eq(s, &old.service));
                list.is_empty()
            });
            if now_empty {
                self.by_host.remove(host);
            }
        }
        Some(old)
    }

    /// An address or host name already taken by another service.
    pub(super) fn conflicts(
        &self,
        at: &str,
        s: &v1::OutboundService,
        indexed: &Indexed,
    ) -> Result<(), ConfigError> {
        for (j, addr) in indexed.addrs.iter().enumerate() {
            if let Some(other) = self.by_addr.get(addr) {
                return Err(err(
                    format!("{at}.vips[{j}]"),
                    format!("{addr} is already the address of {}", other.key),
                ));
            }
        }
        for (j, host) in indexed.hosts.iter().enumerate() {
            let port = indexed.service.port;
            if let Some(other) = self
                .by_host
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
}

/// A service with its addresses and host names, checked on their own.
pub(super) fn index_service(
    at: &str,
    s: &v1::OutboundService,
    sets: &Sets,
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

pub(super) fn build_service(
    at: &str,
    s: &v1::OutboundService,
    sets: &Sets,
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
