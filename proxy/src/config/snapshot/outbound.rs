//! Outbound services and endpoint sets: the services by address and by
//! host name, their splits and A/B matches, and each endpoint's identity.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use osm_api::v1;

use super::{
    ConfigError, EndpointSet, OutboundService, Split, compile_matches, err, port_of, protocol_of,
};
use crate::{
    identity::SpiffeId,
    routing::split::WeightedChoice,
    upstream::{EndpointRegistry, EndpointSpec},
};

pub(super) fn build_endpoint_sets(
    sets: &[v1::EndpointSet],
    registry: &EndpointRegistry,
    connect_timeout: Duration,
) -> Result<HashMap<String, Arc<EndpointSet>>, ConfigError> {
    let mut out = HashMap::new();
    for (i, set) in sets.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        if set.key.is_empty() {
            return Err(err(format!("{at}.key"), "must not be empty"));
        }
        let mut endpoints = Vec::new();
        for (j, e) in set.endpoints.iter().enumerate() {
            let eat = format!("{at}.endpoints[{j}]");
            let addr: SocketAddr = e.address.parse().map_err(|_| {
                err(
                    format!("{eat}.address"),
                    format!("{:?} is not an ip:port address", e.address),
                )
            })?;
            let identity = if e.identity.is_empty() {
                None
            } else {
                let id: SpiffeId =
                    e.identity
                        .parse()
                        .map_err(|x: crate::identity::SpiffeIdError| {
                            err(format!("{eat}.identity"), x.to_string())
                        })?;
                crate::identity::tls::server_name_for(&id)
                    .map_err(|m| err(format!("{eat}.identity"), m.to_string()))?;
                Some(id)
            };
            endpoints.push(registry.get(EndpointSpec {
                addr,
                identity,
                namespace: set.namespace.clone(),
                service: set.service.clone(),
                pod: e.pod.clone(),
                workload_kind: e.workload_kind.clone(),
                workload_name: e.workload_name.clone(),
                connect_timeout,
            }));
        }
        let value = Arc::new(EndpointSet {
            key: set.key.as_str().into(),
            endpoints,
        });
        if out.insert(set.key.clone(), value).is_some() {
            return Err(err(
                format!("{at}.key"),
                format!("{:?} is listed twice", set.key),
            ));
        }
    }
    Ok(out)
}

pub(super) type OutboundIndexes = (
    HashMap<SocketAddr, Arc<OutboundService>>,
    HashMap<Box<str>, Vec<Arc<OutboundService>>>,
);

pub(super) fn build_outbound(
    services: &[v1::OutboundService],
    sets: &HashMap<String, Arc<EndpointSet>>,
) -> Result<OutboundIndexes, ConfigError> {
    let mut by_addr = HashMap::new();
    let mut by_host: HashMap<Box<str>, Vec<Arc<OutboundService>>> = HashMap::new();
    let mut keys = HashSet::new();
    for (i, s) in services.iter().enumerate() {
        let at = format!("outbound[{i}]");
        let service = Arc::new(build_service(&at, s, sets)?);
        if !keys.insert(s.key.clone()) {
            return Err(err(
                format!("{at}.key"),
                format!("{:?} is listed twice", s.key),
            ));
        }
        for (j, vip) in s.vips.iter().enumerate() {
            let ip: IpAddr = vip.parse().map_err(|_| {
                err(
                    format!("{at}.vips[{j}]"),
                    format!("{vip:?} is not an IP address"),
                )
            })?;
            let addr = SocketAddr::new(crate::policy::canonical_ip(ip), service.port);
            if let Some(other) = by_addr.insert(addr, service.clone()) {
                return Err(err(
                    format!("{at}.vips[{j}]"),
                    format!("{addr} is already the address of {}", other.key),
                ));
            }
        }
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
            let entry = by_host.entry(name.as_ref().into()).or_default();
            if let Some(other) = entry.iter().find(|o| o.port == port) {
                return Err(err(&field, format!("{host:?} already names {}", other.key)));
            }
            entry.push(service.clone());
        }
    }
    Ok((by_addr, by_host))
}

fn build_service(
    at: &str,
    s: &v1::OutboundService,
    sets: &HashMap<String, Arc<EndpointSet>>,
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
    Ok(OutboundService {
        key: s.key.as_str().into(),
        namespace: s.namespace.as_str().into(),
        name: s.name.as_str().into(),
        port,
        protocol,
        endpoints,
        split,
        split_matches: compile_matches(&format!("{at}.splitMatches"), &s.split_matches)?,
    })
}
