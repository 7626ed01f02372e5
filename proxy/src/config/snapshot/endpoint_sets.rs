//! Endpoint sets: each endpoint's address and the identity it must
//! prove, the names its metrics carry (one copy per set), and the limits
//! and outlier detection the set takes from the service that owns it.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use osm_api::v1;

use super::{Build, ConfigError, EndpointSet, Sets, err};
use crate::{
    identity::{SpiffeId, policy::TlsPolicy},
    resilience::{
        breaker::{Breaker, Limits},
        outlier::OutlierRule,
    },
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
    sets: impl IntoIterator<Item = v1::EndpointSet>,
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
