//! Compiling a `ProxyConfig` into the immutable snapshot the data path reads.
//!
//! Everything is validated here, before the snapshot is swapped in: a config
//! with one bad field is refused whole, with the field named, and the
//! previous snapshot stays in force.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use osm_api::v1;
use rustls::pki_types::CertificateDer;

use super::Protocol;
use crate::{
    identity::SpiffeId,
    policy::rate_limit::RateLimiter,
    policy::{Authorization, InboundPolicy, Traffic, matcher::HttpMatcher},
    routing::{
        egress::{EgressProtocol, EgressRule},
        split::WeightedChoice,
    },
    upstream::{EndpointHandle, EndpointRegistry, EndpointSpec},
};

/// A config field that is not valid, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// Mesh-wide settings with defaults applied.
#[derive(Debug, Clone)]
pub struct Mesh {
    pub permissive: bool,
    pub egress: bool,
    pub trust_domain: String,
    pub connect_timeout: Duration,
    pub detect_timeout: Duration,
}

/// An immutable, validated view of the proxy's config.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every config applied.
    pub version: u64,
    /// The config as given, for `/config_dump`.
    pub source: v1::ProxyConfig,
    pub mesh: Mesh,
    pub trust_bundle: Vec<CertificateDer<'static>>,
    pub inbound: HashMap<u16, InboundPolicy>,
    pub outbound_by_addr: HashMap<SocketAddr, Arc<OutboundService>>,
    pub outbound_by_host: HashMap<Box<str>, Vec<Arc<OutboundService>>>,
    /// Destinations outside the mesh Egress policies admit.
    pub egress: Vec<EgressRule>,
}

/// A service this proxy may send to, on one port.
#[derive(Debug)]
pub struct OutboundService {
    pub key: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub port: u16,
    pub protocol: Protocol,
    pub endpoints: Arc<EndpointSet>,
    pub split: Option<Split>,
    pub split_matches: Vec<HttpMatcher>,
}

/// TrafficSplit backends and their weights.
#[derive(Debug)]
pub struct Split {
    pub backends: Vec<Arc<EndpointSet>>,
    pub weights: WeightedChoice,
}

/// The endpoints of one service port.
#[derive(Debug)]
pub struct EndpointSet {
    pub key: Arc<str>,
    pub endpoints: Vec<Arc<EndpointHandle>>,
}

// === impl Snapshot ===

impl Snapshot {
    /// An empty config: no policy, no services; not permissive, no egress.
    pub fn empty() -> Self {
        Self {
            version: 0,
            source: v1::ProxyConfig::default(),
            mesh: mesh_settings(None),
            trust_bundle: Vec::new(),
            inbound: HashMap::new(),
            outbound_by_addr: HashMap::new(),
            outbound_by_host: HashMap::new(),
            egress: Vec::new(),
        }
    }
}

fn mesh_settings(mesh: Option<&v1::MeshSettings>) -> Mesh {
    let d = v1::MeshSettings::default();
    let m = mesh.unwrap_or(&d);
    let ms =
        |v: u32, default: u64| Duration::from_millis(if v == 0 { default } else { u64::from(v) });
    Mesh {
        permissive: m.permissive,
        egress: m.egress,
        trust_domain: if m.trust_domain.is_empty() {
            "cluster.local".into()
        } else {
            m.trust_domain.clone()
        },
        connect_timeout: ms(m.connect_timeout_ms, 1000),
        detect_timeout: ms(m.detect_timeout_ms, 500),
    }
}

/// Validates `config` and compiles it. Endpoint handles (connection pools,
/// load estimates) are taken from `registry`, so an endpoint that is still
/// present keeps its pooled connections across config changes.
pub fn build_snapshot(
    config: v1::ProxyConfig,
    version: u64,
    registry: &EndpointRegistry,
) -> Result<Snapshot, ConfigError> {
    let mesh = mesh_settings(config.mesh.as_ref());
    let trust_bundle = match &config.trust_bundle {
        Some(tb) if !tb.pem.trim().is_empty() => {
            let certs = crate::identity::parse_certificates(tb.pem.as_bytes())
                .map_err(|e| err("trustBundle.pem", e.to_string()))?;
            if certs.is_empty() {
                return Err(err("trustBundle.pem", "no certificate in the PEM data"));
            }
            certs
        }
        _ => Vec::new(),
    };
    let inbound = build_inbound(&config.inbound)?;
    let endpoint_sets = build_endpoint_sets(&config.endpoints, registry, mesh.connect_timeout)?;
    let (outbound_by_addr, outbound_by_host) = build_outbound(&config.outbound, &endpoint_sets)?;
    let egress = config
        .egress
        .iter()
        .enumerate()
        .map(|(i, r)| build_egress(&format!("egress[{i}]"), r))
        .collect::<Result<_, _>>()?;
    Ok(Snapshot {
        version,
        source: config,
        mesh,
        trust_bundle,
        inbound,
        outbound_by_addr,
        outbound_by_host,
        egress,
    })
}

fn port_of(field: &str, port: u32) -> Result<u16, ConfigError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| err(field, format!("{port} is not a port (1-65535)")))
}

fn protocol_of(field: &str, value: i32) -> Result<Protocol, ConfigError> {
    Protocol::from_proto(value).ok_or_else(|| err(field, format!("unknown protocol {value}")))
}

fn build_inbound(ports: &[v1::InboundPort]) -> Result<HashMap<u16, InboundPolicy>, ConfigError> {
    let mut out = HashMap::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("inbound[{i}]");
        let port = port_of(&format!("{at}.port"), p.port)?;
        let protocol = protocol_of(&format!("{at}.protocol"), p.protocol)?;
        let mut authorizations = Vec::new();
        for (j, a) in p.authorizations.iter().enumerate() {
            authorizations.push(build_authorization(
                &format!("{at}.authorizations[{j}]"),
                a,
            )?);
        }
        let mut plaintext_sources = Vec::new();
        for (j, cidr) in p.plaintext_sources.iter().enumerate() {
            plaintext_sources.push(parse_cidr(cidr).ok_or_else(|| {
                err(
                    format!("{at}.plaintextSources[{j}]"),
                    format!("{cidr:?} is not an IP address or CIDR"),
                )
            })?);
        }
        let mut policy = InboundPolicy::new(port, protocol, authorizations, plaintext_sources);
        policy.limits = build_rate_limits(&at, p)?;
        if out.insert(port, policy).is_some() {
            return Err(err(
                format!("{at}.port"),
                format!("port {port} is listed twice"),
            ));
        }
    }
    Ok(out)
}

fn build_http_limit(
    at: &str,
    spec: &v1::HttpRateLimit,
) -> Result<Option<crate::policy::HttpLimit>, ConfigError> {
    let Some(limiter) = spec.bucket.as_ref().and_then(RateLimiter::new) else {
        return Ok(None);
    };
    let status = match spec.status_code {
        0 => http::StatusCode::TOO_MANY_REQUESTS,
        code => http::StatusCode::from_u16(u16::try_from(code).unwrap_or(0))
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .ok_or_else(|| {
                err(
                    format!("{at}.statusCode"),
                    format!("{code} is not within 400-599"),
                )
            })?,
    };
    let mut headers = Vec::new();
    for (name, value) in &spec.response_headers {
        let field = format!("{at}.responseHeaders[{name:?}]");
        let n = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| err(&field, "not a valid header name"))?;
        let v = http::HeaderValue::from_str(value)
            .map_err(|_| err(&field, "not a valid header value"))?;
        headers.push((n, v));
    }
    Ok(Some(crate::policy::HttpLimit {
        limiter: Arc::new(limiter),
        status,
        headers,
    }))
}

fn build_rate_limits(
    at: &str,
    p: &v1::InboundPort,
) -> Result<crate::policy::RateLimits, ConfigError> {
    let mut limits = crate::policy::RateLimits {
        tcp: p
            .tcp_rate_limit
            .as_ref()
            .and_then(RateLimiter::new)
            .map(Arc::new),
        http: match &p.http_rate_limit {
            Some(spec) => build_http_limit(&format!("{at}.httpRateLimit"), spec)?,
            None => None,
        },
        routes: Vec::new(),
    };
    for (i, route) in p.route_rate_limits.iter().enumerate() {
        let rat = format!("{at}.routeRateLimits[{i}]");
        let re = crate::policy::matcher::full_match_regex(&route.path_regex)
            .map_err(|m| err(format!("{rat}.pathRegex"), m))?;
        if let Some(spec) = &route.limit
            && let Some(limit) = build_http_limit(&format!("{rat}.limit"), spec)?
        {
            limits.routes.push((re, limit));
        }
    }
    Ok(limits)
}

fn build_egress(at: &str, r: &v1::EgressRule) -> Result<EgressRule, ConfigError> {
    let mut cidrs = Vec::new();
    for (j, c) in r.cidrs.iter().enumerate() {
        cidrs.push(parse_cidr(c).ok_or_else(|| {
            err(
                format!("{at}.cidrs[{j}]"),
                format!("{c:?} is not an IP address or CIDR"),
            )
        })?);
    }
    let mut ports = Vec::new();
    for (j, p) in r.ports.iter().enumerate() {
        let number = port_of(&format!("{at}.ports[{j}].number"), p.number)?;
        let protocol = EgressProtocol::parse(&p.protocol).ok_or_else(|| {
            err(
                format!("{at}.ports[{j}].protocol"),
                format!(
                    "{:?} is not http, https, tcp or tcp-server-first",
                    p.protocol
                ),
            )
        })?;
        ports.push((number, protocol));
    }
    Ok(EgressRule {
        name: r.name.as_str().into(),
        hosts: r
            .hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        cidrs,
        ports,
        matches: compile_matches(&format!("{at}.matches"), &r.matches)?,
    })
}

fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

fn build_authorization(at: &str, a: &v1::Authorization) -> Result<Authorization, ConfigError> {
    let mut sources = HashSet::new();
    for (k, s) in a.sources.iter().enumerate() {
        let id: SpiffeId = s.parse().map_err(|e: crate::identity::SpiffeIdError| {
            err(format!("{at}.sources[{k}]"), e.to_string())
        })?;
        sources.insert(id);
    }
    let traffic = match &a.traffic {
        None => Traffic::Nothing,
        Some(v1::authorization::Traffic::All(_)) => Traffic::All,
        Some(v1::authorization::Traffic::Http(routes)) => Traffic::Http(compile_matches(
            &format!("{at}.http.matches"),
            &routes.matches,
        )?),
    };
    Ok(Authorization {
        name: a.name.as_str().into(),
        sources,
        traffic,
    })
}

fn compile_matches(at: &str, matches: &[v1::HttpMatch]) -> Result<Vec<HttpMatcher>, ConfigError> {
    matches
        .iter()
        .enumerate()
        .map(|(k, m)| {
            HttpMatcher::compile(m).map_err(|e| err(format!("{at}[{k}].{}", e.field), e.message))
        })
        .collect()
}

fn build_endpoint_sets(
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
                    .map_err(|m| err(format!("{eat}.identity"), m))?;
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

type OutboundIndexes = (
    HashMap<SocketAddr, Arc<OutboundService>>,
    HashMap<Box<str>, Vec<Arc<OutboundService>>>,
);

fn build_outbound(
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

#[cfg(test)]
mod tests;
