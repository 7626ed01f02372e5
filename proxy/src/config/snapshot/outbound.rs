//! Outbound services: the services by address and by host name, their
//! splits, A/B matches, retries and routes.

use std::{
    borrow::Cow,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use osm_api::v1;

use super::{
    Build, ConfigError, OutboundService, Retries, Sets, Split, compile_matches, err,
    host_names::{self, ByHost, SuffixLists},
    port_of, protocol_of,
};
use crate::{
    resilience::{budget::RetryBudget, outlier::OutlierRule, retry::RetryRule},
    routing::split::WeightedChoice,
    upstream::EndpointRegistry,
};

/// The services by address and by host name, and each service as built.
#[derive(Debug, Clone, Default)]
pub(super) struct OutboundIndexes {
    pub by_addr: imbl::OrdMap<SocketAddr, Arc<OutboundService>>,
    pub by_host: ByHost,
    // Keyed by the service's own key. Which addresses and host names it
    // is found by is not kept: [`OutboundIndexes::remove`] reads them
    // again from its resource (they were 1.7 MB at 10,000 services).
    pub services: imbl::OrdMap<Arc<str>, Arc<OutboundService>>,
    /// The host name suffix lists the services share, kept for updates
    /// (a service rebuilt in place shares its list too).
    pub suffixes: SuffixLists,
}

/// A service and the keys it is found by, until it is indexed.
#[derive(Debug)]
pub(super) struct Indexed<'s> {
    pub service: Arc<OutboundService>,
    pub addrs: Vec<SocketAddr>,
    /// Normalized (borrowed from the resource where it already was).
    pub hosts: Vec<Cow<'s, str>>,
}

pub(super) fn build_outbound(
    services: impl IntoIterator<Item = v1::OutboundService>,
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
    pub(super) fn insert(&mut self, indexed: Indexed<'_>) {
        for addr in &indexed.addrs {
            self.by_addr.insert(*addr, indexed.service.clone());
        }
        let names = self.suffixes.group(&indexed.hosts);
        host_names::insert(&mut self.by_host, names, &indexed.service);
        self.services
            .insert(indexed.service.key.clone(), indexed.service);
    }

    /// Takes the service `s` (the resource it was built from) out of
    /// every index; what it was.
    pub(super) fn remove(&mut self, s: &v1::OutboundService) -> Option<Arc<OutboundService>> {
        let old = self.services.remove(s.key.as_str())?;
        // They were read from the same resource when it was indexed.
        let (addrs, hosts) = lookup_keys("", s, old.port).unwrap_or_default();
        for addr in &addrs {
            if self.by_addr.get(addr).is_some_and(|s| Arc::ptr_eq(s, &old)) {
                self.by_addr.remove(addr);
            }
        }
        host_names::remove(&mut self.by_host, &hosts, &old);
        Some(old)
    }

    /// An address or host name already taken by another service.
    pub(super) fn conflicts(
        &self,
        at: &str,
        s: &v1::OutboundService,
        indexed: &Indexed<'_>,
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
            if let Some(other) = host_names::lookup(&self.by_host, host, port) {
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
pub(super) fn index_service<'s>(
    at: &str,
    s: &'s v1::OutboundService,
    sets: &Sets,
    registry: &EndpointRegistry,
    mesh_request_timeout: Option<Duration>,
) -> Result<Indexed<'s>, ConfigError> {
    let service = Arc::new(build_service(at, s, sets, registry, mesh_request_timeout)?);
    let (addrs, hosts) = lookup_keys(at, s, service.port)?;
    Ok(Indexed {
        service,
        addrs,
        hosts,
    })
}

/// The cluster addresses and host names `s` is found by on `port`.
type LookupKeys<'s> = (Vec<SocketAddr>, Vec<Cow<'s, str>>);

fn lookup_keys<'s>(
    at: &str,
    s: &'s v1::OutboundService,
    port: u16,
) -> Result<LookupKeys<'s>, ConfigError> {
    let mut addrs = Vec::with_capacity(s.vips.len());
    for (j, vip) in s.vips.iter().enumerate() {
        let ip: IpAddr = vip.parse().map_err(|_| {
            err(
                format!("{at}.vips[{j}]"),
                format!("{vip:?} is not an IP address"),
            )
        })?;
        addrs.push(SocketAddr::new(crate::policy::canonical_ip(ip), port));
    }
    let mut hosts = Vec::with_capacity(s.hostnames.len());
    for (j, host) in s.hostnames.iter().enumerate() {
        let field = format!("{at}.hostnames[{j}]");
        let (name, named_port) = crate::routing::normalize_authority(host, port)
            .ok_or_else(|| err(&field, format!("{host:?} is not a host name")))?;
        if named_port != port {
            return Err(err(
                &field,
                format!("{host:?} names port {named_port}, the service port is {port}"),
            ));
        }
        hosts.push(name);
    }
    Ok((addrs, hosts))
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
        // The service's own set has its key (as compiled configs name
        // them): one copy.
        key: if *endpoints.key == *s.key {
            endpoints.key.clone()
        } else {
            s.key.as_str().into()
        },
        namespace: s.namespace.as_str().into(),
        name: s.name.as_str().into(),
        port,
        protocol,
        cluster_addressed: !s.vips.is_empty(),
        endpoints,
        split: split.map(Box::new),
        split_matches: compile_matches(&format!("{at}.splitMatches"), &s.split_matches)?,
        retry: retry.map(Box::new),
        request_timeout: super::optional_ms(s.request_timeout_ms).or(mesh_request_timeout),
        backend_request_timeout: super::optional_ms(s.backend_request_timeout_ms),
        routes: super::routes::build_routes(at, &s.routes, sets, registry)?.map(Box::new),
    })
}
