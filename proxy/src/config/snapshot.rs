//! Compiling a `ProxyConfig` into the immutable snapshot the data path reads.
//!
//! Everything is validated here, before the snapshot is swapped in: a config
//! with one bad field is refused whole, with the field named, and the
//! previous snapshot stays in force.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use osm_api::v1;
use rustls::pki_types::CertificateDer;

mod egress;
mod inbound;
mod outbound;
mod pod_addresses;
mod routes;

pub use routes::{Mirror, RouteBackend, RouteRule, Routes};

use self::{
    egress::build_egress,
    inbound::build_inbound,
    outbound::{build_endpoint_sets, build_outbound},
};
use super::Protocol;
use crate::{
    identity::policy::TlsPolicy,
    policy::{InboundPolicy, matcher::HttpMatcher},
    resilience::{breaker::Breaker, budget::RetryBudget, outlier::OutlierRule, retry::RetryRule},
    routing::{egress::EgressRule, split::WeightedChoice},
    upstream::{EndpointHandle, EndpointRegistry},
};

/// A config field that is not valid, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

/// What a resource that cannot be built does to the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadResource {
    /// The whole config is refused (a static config file: the operator
    /// fixes the file).
    Refuse,
    /// The resource is enforced fail-closed and the rest applies (the
    /// controller's stream: one tenant's resource must not hold back every
    /// other update): an inbound port denies every peer, an endpoint, a
    /// service or an egress rule is left out.
    FailClosed,
}

/// Collects what was left out in fail-closed mode.
struct Build {
    mode: OnBadResource,
    rejected: Vec<ConfigError>,
}

impl Build {
    /// The value, or (fail-closed) None with the error recorded.
    fn keep<T>(&mut self, built: Result<T, ConfigError>) -> Result<Option<T>, ConfigError> {
        match (built, self.mode) {
            (Ok(v), _) => Ok(Some(v)),
            (Err(e), OnBadResource::Refuse) => Err(e),
            (Err(e), OnBadResource::FailClosed) => {
                self.rejected.push(e);
                Ok(None)
            }
        }
    }
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
    /// Whole-request timeout for services that set none.
    pub request_timeout: Option<Duration>,
    /// TLS versions, suites and groups between proxies.
    pub tls: TlsPolicy,
    /// Reach the application on the pod's address for every port.
    pub app_on_pod_ip: bool,
    /// The log filter the config names (empty: leave the proxy's own).
    pub log_level: String,
}

/// An immutable, validated view of the proxy's config.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every config applied.
    pub version: u64,
    /// The config as given, for `/config_dump`.
    pub source: Arc<v1::ProxyConfig>,
    pub mesh: Mesh,
    pub trust_bundle: Vec<CertificateDer<'static>>,
    pub inbound: HashMap<u16, InboundPolicy>,
    pub outbound_by_addr: HashMap<SocketAddr, Arc<OutboundService>>,
    pub outbound_by_host: HashMap<Box<str>, Vec<Arc<OutboundService>>>,
    /// Destinations outside the mesh Egress policies admit.
    pub egress: Vec<EgressRule>,
    /// Every endpoint set, for [`Snapshot::activate`].
    pub endpoint_sets: Vec<Arc<EndpointSet>>,
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
    /// Retries of requests to this service, and their budget.
    pub retry: Option<Retries>,
    /// Whole-request timeout (its own, else the mesh default).
    pub request_timeout: Option<Duration>,
    /// Timeout of each try when the retry policy sets none.
    pub backend_request_timeout: Option<Duration>,
    /// Gateway API routes: when present they decide each HTTP request's
    /// backends and filters (the split is not used).
    pub routes: Option<Routes>,
}

/// A service's retry policy and the budget its retries draw on (kept
/// across configs).
#[derive(Debug)]
pub struct Retries {
    pub rule: RetryRule,
    pub budget: Arc<Mutex<RetryBudget>>,
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
    /// The service's circuit breaker (kept across configs while its limits
    /// stay the same); None without limits.
    pub breaker: Option<Arc<Breaker>>,
    pub outlier: Option<OutlierRule>,
}

// === impl Snapshot ===

impl Snapshot {
    /// An empty config: no policy, no services; not permissive, no egress.
    pub fn empty() -> Self {
        Self {
            version: 0,
            source: Arc::default(),
            mesh: mesh_settings(None).expect("the default mesh settings are valid"),
            trust_bundle: Vec::new(),
            inbound: HashMap::new(),
            outbound_by_addr: HashMap::new(),
            outbound_by_host: HashMap::new(),
            egress: Vec::new(),
            endpoint_sets: Vec::new(),
        }
    }

    /// Hands each endpoint its service's circuit breaker, so the
    /// connections it opens from now on count against this config's
    /// limits. Called when the snapshot is swapped in (a refused config
    /// changes nothing).
    pub fn activate(&self) {
        for set in &self.endpoint_sets {
            for endpoint in &set.endpoints {
                endpoint.breaker.store(set.breaker.clone());
            }
        }
    }
}

fn mesh_settings(mesh: Option<&v1::MeshSettings>) -> Result<Mesh, ConfigError> {
    let d = v1::MeshSettings::default();
    let m = mesh.unwrap_or(&d);
    let ms =
        |v: u32, default: u64| Duration::from_millis(if v == 0 { default } else { u64::from(v) });
    Ok(Mesh {
        tls: TlsPolicy::from_config(m).map_err(|e| err("mesh", e))?,
        permissive: m.permissive,
        egress: m.egress,
        app_on_pod_ip: m.app_on_pod_ip,
        log_level: m.log_level.clone(),
        trust_domain: if m.trust_domain.is_empty() {
            "cluster.local".into()
        } else {
            m.trust_domain.clone()
        },
        connect_timeout: ms(m.connect_timeout_ms, 1000),
        detect_timeout: ms(m.detect_timeout_ms, 500),
        request_timeout: optional_ms(m.request_timeout_ms),
    })
}

/// A wire duration in milliseconds where 0 means "not set".
fn optional_ms(v: u32) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v.into()))
}

/// Validates `config` and compiles it; any bad field refuses it whole.
/// Endpoint handles (connection pools, load estimates) are taken from
/// `registry`, so an endpoint that is still present keeps its pooled
/// connections across config changes.
pub fn build_snapshot(
    config: v1::ProxyConfig,
    version: u64,
    registry: &EndpointRegistry,
) -> Result<Snapshot, ConfigError> {
    build(Arc::new(config), version, registry, OnBadResource::Refuse).map(|(s, _)| s)
}

/// Compiles `config`; with [`OnBadResource::FailClosed`], the resources that
/// cannot be built are enforced fail-closed and returned with why. The
/// mesh settings and trust bundle are never optional.
pub fn build(
    config: Arc<v1::ProxyConfig>,
    version: u64,
    registry: &EndpointRegistry,
    mode: OnBadResource,
) -> Result<(Snapshot, Vec<ConfigError>), ConfigError> {
    let mut build = Build {
        mode,
        rejected: Vec::new(),
    };
    let mesh = mesh_settings(config.mesh.as_ref())?;
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
    let inbound = build_inbound(&config.inbound, &mut build)?;
    let endpoint_sets = build_endpoint_sets(
        &config.endpoints,
        &config.outbound,
        registry,
        (mesh.connect_timeout, &Arc::new(mesh.tls.clone())),
        &mut build,
    )?;
    let (mut outbound_by_addr, outbound_by_host) = build_outbound(
        &config.outbound,
        &endpoint_sets,
        registry,
        mesh.request_timeout,
        &mut build,
    )?;
    pod_addresses::add_pod_addresses(
        &config.outbound,
        &endpoint_sets,
        registry,
        mesh.request_timeout,
        &mut outbound_by_addr,
    );
    let mut egress = Vec::new();
    for (i, r) in config.egress.iter().enumerate() {
        egress.extend(build.keep(build_egress(&format!("egress[{i}]"), r, registry))?);
    }
    let snapshot = Snapshot {
        version,
        source: config,
        mesh,
        trust_bundle,
        inbound,
        outbound_by_addr,
        outbound_by_host,
        egress,
        endpoint_sets: endpoint_sets.into_values().collect(),
    };
    Ok((snapshot, build.rejected))
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

fn compile_matches(at: &str, matches: &[v1::HttpMatch]) -> Result<Vec<HttpMatcher>, ConfigError> {
    matches
        .iter()
        .enumerate()
        .map(|(k, m)| {
            HttpMatcher::compile(m).map_err(|e| err(format!("{at}[{k}].{}", e.field), e.message))
        })
        .collect()
}

#[cfg(test)]
mod tests;
