//! The policy compiler: cluster state -> one proxy's config.
//!
//! `compile(index, proxy)` is pure: it reads the [`Index`] and returns the
//! `ProxyConfig` that proxy enforces, plus warnings about objects that could
//! not be used (a rule naming a missing route, a backend without the root's
//! port, ...). Invalid objects (see [`crate::validate`]) are skipped.
//!
//! Decisions (also in the README):
//! - pathRegex and header regexes match the whole value (as OSM did).
//! - A rule without `matches` covers every match of its HTTPRouteGroup (as
//!   the SMI spec says; OSM allowed nothing).
//! - In one TrafficTarget, TCPRoute rules select ports; if the target also has
//!   HTTPRouteGroup rules, HTTP requests on those ports must match one of them;
//!   a target with only TCPRoute rules allows all traffic on its ports; one with
//!   only HTTPRouteGroup rules applies on every port. A TCPRoute port matches a
//!   Service port or the pod port it maps to.
//! - Several TrafficSplits for one root: the first by name applies (warning).

mod endpoints;
pub mod gateway;
mod inbound;
pub mod incremental;
pub mod index;
mod intern;
mod outbound;
mod policy;
pub(crate) mod routes;
mod split;

pub use incremental::{Change, Compiler, Impact, View};
pub use index::{Index, MeshOptions};
pub use routes::wire_match;

use crate::v1;

/// The proxy to compile for: its pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProxyId {
    pub namespace: String,
    pub pod: String,
}

/// Why a proxy has no config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("pod {namespace}/{pod} is not known")]
    UnknownPod { namespace: String, pod: String },
    #[error("namespace {0} is not monitored by mesh {1}")]
    NotMonitored(String, String),
}

/// A proxy's config and what could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub config: v1::ProxyConfig,
    pub warnings: Vec<String>,
}

/// The SPIFFE ID of a ServiceAccount.
pub fn spiffe_id(trust_domain: &str, namespace: &str, service_account: &str) -> String {
    format!("spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}")
}

/// Compiles the config of one proxy.
pub fn compile(index: &Index, proxy: &ProxyId) -> Result<Compiled, CompileError> {
    let pod = index
        .pods
        .get(&(proxy.namespace.clone(), proxy.pod.clone()))
        .ok_or_else(|| CompileError::UnknownPod {
            namespace: proxy.namespace.clone(),
            pod: proxy.pod.clone(),
        })?;
    if !index.is_monitored(&proxy.namespace) {
        return Err(CompileError::NotMonitored(
            proxy.namespace.clone(),
            index.mesh.mesh_name.clone(),
        ));
    }
    let mut warnings = Vec::new();
    let inbound = inbound::compile(index, pod, &mut warnings);
    let (outbound, endpoints) = outbound::compile(index, pod, &mut warnings);
    let egress = policy::egress_rules(index, pod, &mut warnings);
    let access_log = policy::access_log(
        index
            .mesh_config
            .as_ref()
            .map(|m| &m.spec.observability.access_log),
        pod,
        &mut warnings,
    );
    warnings.sort();
    warnings.dedup();
    Ok(Compiled {
        config: v1::ProxyConfig {
            mesh: Some(v1::MeshSettings {
                permissive: index.mesh.permissive,
                egress: index.mesh.egress,
                trust_domain: index.mesh.trust_domain.clone(),
                connect_timeout_ms: 0,
                detect_timeout_ms: 0,
                request_timeout_ms: index
                    .mesh_config
                    .as_ref()
                    .map(|m| policy::millis(&m.spec.traffic.request_timeout))
                    .unwrap_or(0),
                access_log,
                tracing: index.mesh_config.as_ref().and_then(|m| {
                    policy::tracing(&m.spec.observability.tracing, &index.mesh.osm_namespace)
                }),
                ..policy::sidecar_settings(index.mesh_config.as_ref().map(|m| &m.spec.sidecar))
            }),
            trust_bundle: None,
            inbound,
            outbound,
            endpoints,
            egress,
        },
        warnings,
    })
}

#[cfg(test)]
mod tests;
