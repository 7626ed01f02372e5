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

mod describe;
mod egress;
mod endpoint_sets;
mod host_names;
mod inbound;
mod key_set;
mod outbound;
mod pod_addresses;
mod references;
mod routes;
mod update;

pub use endpoint_sets::EndpointSet;
pub use pod_addresses::PodTarget;
pub use routes::{Mirror, RouteBackend, RouteRule, Routes};
pub use update::update;

use self::{
    egress::build_egress, endpoint_sets::build_endpoint_sets, inbound::build_inbound,
    outbound::build_outbound, pod_addresses::PodIndex, references::References,
};
use super::store::{ConfigSource, ConfigStore, FileResources};
use super::{Protocol, packed::packed};
use crate::{
    identity::policy::TlsPolicy,
    policy::{InboundPolicy, matcher::HttpMatcher},
    resilience::{budget::RetryBudget, retry::RetryRule},
    routing::{egress::EgressRule, split::WeightedChoice},
    upstream::EndpointRegistry,
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
    /// Span export; None: tracing off.
    pub tracing: Option<crate::telemetry::trace::Settings>,
    /// The access log's format; None: the proxy's own (`--access-log`).
    pub access_log: Option<crate::telemetry::access_log::LogFormat>,
}

/// Endpoint sets by key (the set's own key: one copy).
pub(crate) type Sets = imbl::OrdMap<Arc<str>, Arc<EndpointSet>>;

/// An immutable, validated view of the proxy's config. Its maps are
/// persistent: the next snapshot shares what did not change (see
/// [`update`]).
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every config applied.
    pub version: u64,
    /// The config as given, for `/config_dump`.
    pub source: ConfigStore,
    pub mesh: Mesh,
    pub trust_bundle: Vec<CertificateDer<'static>>,
    pub inbound: Arc<HashMap<u16, InboundPolicy>>,
    /// Services by cluster address and port.
    pub outbound_by_addr: imbl::OrdMap<SocketAddr, Arc<OutboundService>>,
    /// Services by host name (see [`Snapshot::service_by_host`]).
    pub outbound_by_host: host_names::ByHost,
    /// Destinations outside the mesh Egress policies admit.
    pub egress: Arc<Vec<EgressRule>>,
    pub endpoint_sets: Sets,
    /// What updating in place needs.
    built: Built,
    /// The sets [`Snapshot::activate`] warms: every set of a whole build,
    /// the rebuilt ones of an update.
    fresh_sets: Vec<Arc<EndpointSet>>,
}

/// How the snapshot was built, for [`update`].
#[derive(Debug, Clone, Default)]
struct Built {
    /// Nothing was enforced fail-closed: the snapshot is exactly its
    /// source, so a change can be applied to it in place (otherwise every
    /// change rebuilds it whole).
    clean: bool,
    /// Each service as built, with its addresses and host names.
    services: imbl::OrdMap<Arc<str>, Arc<OutboundService>>,
    /// The host name suffix lists of the services (a whole build starts
    /// them afresh).
    suffixes: host_names::SuffixLists,
    /// Which services each endpoint set matters to.
    references: References,
    pods: PodIndex,
    /// Shared by every endpoint of the config.
    tls: Arc<TlsPolicy>,
}

/// A service this proxy may send to, on one port.
#[derive(Debug)]
pub struct OutboundService {
    pub key: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub port: u16,
    pub protocol: Protocol,
    /// Reached at cluster addresses (not headless): its meshed pods are
    /// reached by their own addresses through it.
    pub cluster_addressed: bool,
    pub endpoints: Arc<EndpointSet>,
    // What most services do not set is boxed: a service was 296 bytes,
    // and a big cluster's config holds 10,000 of them.
    pub split: Option<Box<Split>>,
    pub split_matches: Vec<HttpMatcher>,
    /// Retries of requests to this service, and their budget.
    pub retry: Option<Box<Retries>>,
    /// Whole-request timeout (its own, else the mesh default).
    pub request_timeout: Option<Duration>,
    /// Timeout of each try when the retry policy sets none.
    pub backend_request_timeout: Option<Duration>,
    /// Gateway API routes: when present they decide each HTTP request's
    /// backends and filters (the split is not used).
    pub routes: Option<Box<Routes>>,
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

// === impl Snapshot ===

impl Snapshot {
    /// An empty config: no policy, no services; not permissive, no egress.
    pub fn empty() -> Self {
        Self {
            version: 0,
            source: ConfigStore::default(),
            mesh: mesh_settings(None).expect("the default mesh settings are valid"),
            trust_bundle: Vec::new(),
            inbound: Arc::default(),
            outbound_by_addr: imbl::OrdMap::new(),
            outbound_by_host: imbl::OrdMap::new(),
            egress: Arc::default(),
            endpoint_sets: Sets::new(),
            built: Built::default(),
            fresh_sets: Vec::new(),
        }
    }

    /// The meshed pod reached at its own `addr` (address and port).
    pub fn pod_at(&self, addr: &SocketAddr) -> Option<&Arc<PodTarget>> {
        self.built
            .pods
            .target(addr, &self.built.services, self.mesh.request_timeout)
    }

    /// Makes the endpoints of each new set whose predecessor in
    /// `previous` was used, so their handles (pools, load, outlier state)
    /// are taken over while `previous` still holds them, and hands them
    /// the set's circuit breaker: the connections they open from now on
    /// count against this config's limits. Called when the snapshot is
    /// swapped in (a refused config changes nothing); a set used later
    /// does the same then.
    pub fn activate(&self, previous: &Snapshot) {
        for set in &self.fresh_sets {
            if previous
                .endpoint_sets
                .get(&set.key)
                .is_some_and(|was| was.is_used())
            {
                set.endpoints();
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
        access_log: match m.access_log.as_str() {
            "" => None,
            other => Some(
                crate::telemetry::access_log::LogFormat::parse(other).ok_or_else(|| {
                    err(
                        "mesh.accessLog",
                        format!("{other:?} is not off, json or text"),
                    )
                })?,
            ),
        },
        tracing: m
            .tracing
            .as_ref()
            .map(crate::telemetry::trace::Settings::from_config)
            .transpose()
            .map_err(|e| err("mesh.tracing", e))?,
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
    build_file_snapshot(FileResources::from_config(config), version, registry)
}

/// Compiles a config file's resources whole, refusing it if any is bad.
pub fn build_file_snapshot(
    file: FileResources,
    version: u64,
    registry: &EndpointRegistry,
) -> Result<Snapshot, ConfigError> {
    let (mut snapshot, _) = build(
        &file,
        ConfigStore::default(),
        version,
        registry,
        OnBadResource::Refuse,
    )?;
    snapshot.source = file.into_store();
    Ok(snapshot)
}

/// Compiles `config` whole, keeping `source` (the same config as kept
/// resources, or empty for the caller to fill); with
/// [`OnBadResource::FailClosed`], the resources that cannot be built are
/// enforced fail-closed and returned with why. The mesh settings and
/// trust bundle are never optional.
pub fn build(
    config: &impl ConfigSource,
    source: ConfigStore,
    version: u64,
    registry: &EndpointRegistry,
    mode: OnBadResource,
) -> Result<(Snapshot, Vec<ConfigError>), ConfigError> {
    let mut build = Build {
        mode,
        rejected: Vec::new(),
    };
    let mesh = mesh_settings(config.mesh().as_ref())?;
    let trust_bundle = trust_bundle(config.trust_bundle().as_ref())?;
    let inbound = build_inbound(config.inbound_ports(), &mut build)?;
    let tls = Arc::new(mesh.tls.clone());
    let endpoint_sets = build_endpoint_sets(
        config.endpoint_sets(),
        config.services(),
        registry,
        (mesh.connect_timeout, &tls),
        &mut build,
    )?;
    // The references are read off the same pass: a store decodes each
    // service every time it is iterated.
    let mut references = references::Gathered::default();
    let outbound = build_outbound(
        config.services().inspect(|s| references.add(s)),
        &endpoint_sets,
        registry,
        mesh.request_timeout,
        &mut build,
    )?;
    let pods = PodIndex::build(&outbound.services);
    let egress = build_egress_rules(config.egress_rules(), registry, &mut build)?;
    let snapshot = Snapshot {
        version,
        source,
        inbound: Arc::new(inbound),
        outbound_by_addr: packed(outbound.by_addr),
        outbound_by_host: packed(outbound.by_host),
        egress: Arc::new(egress),
        fresh_sets: endpoint_sets.values().cloned().collect(),
        endpoint_sets: packed(endpoint_sets),
        built: Built {
            clean: build.rejected.is_empty(),
            services: packed(outbound.services),
            suffixes: outbound.suffixes,
            references: references.finish(),
            pods,
            tls,
        },
        mesh,
        trust_bundle,
    };
    crate::memory::release_free_memory();
    Ok((snapshot, build.rejected))
}

fn trust_bundle(
    bundle: Option<&v1::TrustBundle>,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    Ok(match bundle {
        Some(tb) if !tb.pem.trim().is_empty() => {
            let certs = crate::identity::parse_certificates(tb.pem.as_bytes())
                .map_err(|e| err("trustBundle.pem", e.to_string()))?;
            if certs.is_empty() {
                return Err(err("trustBundle.pem", "no certificate in the PEM data"));
            }
            certs
        }
        _ => Vec::new(),
    })
}

fn build_egress_rules(
    rules: impl IntoIterator<Item = v1::EgressRule>,
    registry: &EndpointRegistry,
    build: &mut Build,
) -> Result<Vec<EgressRule>, ConfigError> {
    let mut egress = Vec::new();
    for (i, r) in rules.into_iter().enumerate() {
        egress.extend(build.keep(build_egress(&format!("egress[{i}]"), &r, registry))?);
    }
    Ok(egress)
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
#[cfg(test)]
mod update_tests;
