//! Endpoint sets: each endpoint's address and the identity it must
//! prove, the names its metrics carry (one copy per set), and the limits
//! and outlier detection the set takes from the service that owns it.
//!
//! A set is checked whole when its config arrives, but its endpoints'
//! handles are made at its first use, from the set's kept encoding: most
//! sets of a big cluster are never called by a given proxy, and their
//! handles and specs were a third of its config's memory (Linkerd, too,
//! resolves a destination's endpoints when it is first asked for).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use osm_api::v1;

use super::{Build, ConfigError, Sets, err};
use crate::{
    config::store::Encoded,
    identity::{SpiffeId, policy::TlsPolicy},
    resilience::{
        breaker::{Breaker, Limits},
        outlier::OutlierRule,
    },
    upstream::{EndpointHandle, EndpointRegistry, EndpointSpec, Handles},
};

/// The endpoints of one service port.
#[derive(Debug)]
pub struct EndpointSet {
    pub key: Arc<str>,
    /// The service's circuit breaker (kept across configs while its limits
    /// stay the same); None without limits.
    pub breaker: Option<Arc<Breaker>>,
    // Boxed, as the endpoints: a big cluster's config holds 10,000 sets,
    // few with outlier detection.
    pub outlier: Option<Box<OutlierRule>>,
    endpoints: OnceLock<Box<[Arc<EndpointHandle>]>>,
    /// What makes them on first use; None for a set made with them.
    source: Option<SetSource>,
}

/// What a set's endpoints are made from: its checked encoding, and what
/// every endpoint of the config shares.
#[derive(Debug)]
struct SetSource {
    encoded: Encoded,
    handles: Arc<Handles>,
    connect_timeout: Duration,
    tls: Arc<TlsPolicy>,
}

impl EndpointSet {
    /// A set of these endpoints, made now, without outlier detection.
    pub fn with_endpoints(
        key: Arc<str>,
        endpoints: Vec<Arc<EndpointHandle>>,
        breaker: Option<Arc<Breaker>>,
    ) -> Self {
        Self {
            key,
            breaker,
            outlier: None,
            endpoints: OnceLock::from(endpoints.into_boxed_slice()),
            source: None,
        }
    }

    /// Its endpoints, their handles made on the first call (each is
    /// handed the set's breaker then: the set belongs to the config in
    /// force, or, warmed by [`super::Snapshot::activate`], to the one
    /// being swapped in).
    pub fn endpoints(&self) -> &[Arc<EndpointHandle>] {
        self.endpoints.get_or_init(|| {
            let Some(source) = &self.source else {
                return Box::default();
            };
            let endpoints = source.handles();
            for endpoint in &endpoints {
                endpoint.breaker.store(self.breaker.clone());
            }
            endpoints.into()
        })
    }

    /// Whether its endpoints' handles are made (it was used).
    pub fn is_used(&self) -> bool {
        self.endpoints.get().is_some()
    }

    /// The addresses of its meshed endpoints (those with an identity),
    /// without making their handles.
    pub(super) fn meshed_addrs(&self) -> Vec<SocketAddr> {
        let meshed = |spec: &EndpointSpec| spec.identity.is_some().then_some(spec.addr);
        match (self.endpoints.get(), &self.source) {
            (Some(made), _) => made.iter().filter_map(|h| meshed(&h.spec)).collect(),
            (None, Some(source)) => source.specs().iter().filter_map(meshed).collect(),
            (None, None) => Vec::new(),
        }
    }
}

impl SetSource {
    /// The endpoints that build (the others were refused, or left out
    /// fail-closed, when the set was checked).
    fn specs(&self) -> Vec<EndpointSpec> {
        let Some(set) = self.encoded.endpoint_set() else {
            return Vec::new();
        };
        let mut names = SetNames::of(&set);
        set.endpoints
            .iter()
            .enumerate()
            .filter_map(|(j, e)| {
                endpoint_spec(("", j), &mut names, e, self.connect_timeout, &self.tls).ok()
            })
            .collect()
    }

    fn handles(&self) -> Vec<Arc<EndpointHandle>> {
        self.specs()
            .into_iter()
            .map(|spec| self.handles.get(spec))
            .collect()
    }
}

/// What an endpoint set takes from the service that owns it (the first
/// service, by key, whose own set it is).
#[derive(Default)]
pub(super) struct SetPolicy {
    limits: Limits,
    outlier: Option<OutlierRule>,
}

/// The circuit-breaking limits and outlier detection a service gives its
/// own endpoint set. A service whose settings are wrong is refused with
/// its other fields (in [`super::outbound::build_service`]); its set gets
/// none.
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

pub(super) fn build_endpoint_sets(
    sets: impl IntoIterator<Item = (v1::EndpointSet, Encoded)>,
    services: impl IntoIterator<Item = v1::OutboundService>,
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
    for (i, (set, encoded)) in sets.into_iter().enumerate() {
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
        if let Some(value) = build_set(&at, &set, encoded, policy, registry, defaults, build)? {
            out.insert(value.key.clone(), value);
        }
    }
    Ok(out)
}

/// One endpoint set with the policy of the service that owns it, every
/// endpoint checked (its handles are made at its first use); None
/// (fail-closed) without a key.
pub(super) fn build_set(
    at: &str,
    set: &v1::EndpointSet,
    encoded: Encoded,
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
    let mut names = SetNames::of(set);
    for (j, e) in set.endpoints.iter().enumerate() {
        // Fail-closed: an endpoint that cannot be built gets no traffic
        // (and is left out again when the handles are made).
        let built = endpoint_spec((at, j), &mut names, e, connect_timeout, tls);
        build.keep(built.map(drop))?;
    }
    Ok(Some(Arc::new(EndpointSet {
        key: set.key.as_str().into(),
        breaker,
        outlier: policy.and_then(|p| p.outlier.clone()).map(Box::new),
        endpoints: OnceLock::new(),
        source: Some(SetSource {
            encoded,
            handles: registry.handles().clone(),
            connect_timeout,
            tls: tls.clone(),
        }),
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

/// One endpoint (the `j`th of the set at `at`): its address and the
/// identity it must prove.
fn endpoint_spec(
    (at, j): (&str, usize),
    names: &mut SetNames,
    e: &v1::Endpoint,
    connect_timeout: Duration,
    tls: &Arc<TlsPolicy>,
) -> Result<EndpointSpec, ConfigError> {
    let field = || format!("{at}.endpoints[{j}]");
    let addr: SocketAddr = e.address.parse().map_err(|_| {
        err(
            format!("{}.address", field()),
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
                err(format!("{}.identity", field()), x.to_string())
            })?;
        crate::identity::tls::server_name_for(&id)
            .map_err(|m| err(format!("{}.identity", field()), m.to_string()))?;
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
