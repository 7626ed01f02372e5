//! Per-proxy subscriptions to compiled config.
//!
//! Each connected proxy has a `watch` channel holding its latest view (a
//! version and its keyed resources). A change recompiles only the proxies
//! it touches and replaces their views. The stream task of a proxy diffs
//! the view it last sent against the latest one, so a slow proxy gets one
//! coalesced batch with the net change, never an unbounded backlog.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use osm_api::{
    compile::{Compiler, Impact, ProxyId},
    protocol::{Delta, ResourceId, Resources, diff, update},
    resources::{Object, ObjectKey},
    v1,
};
use tokio::sync::watch;

mod log_level;

use log_level::FollowedLevel;
pub use log_level::log_filter_for;

/// OSM's default leaf lifetime.
pub const DEFAULT_CERT_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// What a proxy should have: its resources at a version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub version: u64,
    pub resources: Arc<Resources>,
    /// When the change that made this view was applied (push latency is
    /// measured from here); None for a first view.
    pub changed_at: Option<Instant>,
}

/// A proxy's subscription: its views, and the token that lets only this
/// subscription end itself (a reconnecting proxy may overlap its old one).
#[derive(Debug)]
pub struct Subscription {
    pub views: watch::Receiver<View>,
    pub token: u64,
}

/// Why a proxy cannot subscribe.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("{0}")]
    Compile(#[from] osm_api::compile::CompileError),
    #[error(
        "pod {0} already streams with a certificate issued to it; a certificate not bound to a pod \
         (from a controller before pod bindings) cannot replace that stream: renew it with Identity.Certify"
    )]
    HeldByBoundCertificate(String),
    #[error(
        "the controller serves at most {0} proxies (MeshConfig sidecar.maxDataPlaneConnections); \
         this one keeps its last config and retries"
    )]
    Full(u32),
}

/// The compiler and every proxy's subscription.
pub struct Hub {
    inner: Mutex<Inner>,
    log_level: Option<FollowedLevel>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    compiler: Compiler,
    /// What every proxy is sent as its trust bundle.
    trust_bundle: Option<String>,
    /// Every view from this version on carries `trust_bundle`.
    bundle_since: u64,
    version: u64,
    next_token: u64,
    subscribers: HashMap<ProxyId, Subscriber>,
}

/// One route's status for its Service parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStatus {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub parents: Vec<osm_api::compile::gateway::status::ParentStatus>,
}

#[derive(Debug)]
struct Subscriber {
    token: u64,
    views: watch::Sender<View>,
    /// Subscribed with a certificate bound to this pod (see
    /// [`osm_api::identity::pod`]).
    bound: bool,
}

impl Inner {
    fn view_of(&mut self, id: &ProxyId, changed_at: Option<Instant>) -> View {
        self.version += 1;
        View {
            version: self.version,
            // The compiler's own copy, shared: one per proxy in memory.
            resources: self.compiler.view(id).cloned().unwrap_or_default(),
            changed_at,
        }
    }

    fn publish(&mut self, impact: &Impact, changed_at: Instant) {
        for id in impact.changed.keys() {
            let view = self.view_of(id, Some(changed_at));
            if let Some(subscriber) = self.subscribers.get(id) {
                subscriber.views.send_replace(view);
            }
        }
    }
}

/// What every proxy gets as it is: the trust bundle.
fn common_resources(
    trust_bundle_pem: Option<String>,
) -> std::collections::BTreeMap<ResourceId, v1::Resource> {
    trust_bundle_pem
        .map(|pem| {
            (
                ResourceId::TrustBundle,
                v1::Resource {
                    kind: Some(v1::resource::Kind::TrustBundle(v1::TrustBundle { pem })),
                },
            )
        })
        .into_iter()
        .collect()
}

impl Hub {
    pub fn new(mut compiler: Compiler, trust_bundle_pem: Option<String>) -> Self {
        compiler.set_common(common_resources(trust_bundle_pem.clone()));
        Self {
            inner: Mutex::new(Inner {
                compiler,
                trust_bundle: trust_bundle_pem,
                bundle_since: 0,
                version: 0,
                next_token: 0,
                subscribers: HashMap::new(),
            }),
            log_level: None,
        }
    }

    /// Replaces the trust bundle every proxy gets (a root rotation's
    /// phases) and sends it to every connected proxy, as any change.
    pub fn set_trust_bundle(&self, pem: String) {
        let changed_at = Instant::now();
        let mut inner = self.lock();
        inner
            .compiler
            .set_common(common_resources(Some(pem.clone())));
        inner.trust_bundle = Some(pem);
        inner.bundle_since = inner.version + 1;
        let ids: Vec<ProxyId> = inner.subscribers.keys().cloned().collect();
        for id in &ids {
            let view = inner.view_of(id, Some(changed_at));
            if let Some(subscriber) = inner.subscribers.get(id) {
                subscriber.views.send_replace(view);
            }
        }
        tracing::info!(proxies = ids.len(), "trust bundle sent");
    }

    /// The trust bundle proxies are sent (PEM).
    pub fn trust_bundle(&self) -> Option<String> {
        self.lock().trust_bundle.clone()
    }

    /// The first config version that carries the current trust bundle: a
    /// proxy that acknowledged it (or a later one) holds the bundle.
    pub fn bundle_since(&self) -> u64 {
        self.lock().bundle_since
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes a proxy whose certificate is bound to its pod; its
    /// first view is its full config. A second subscription for the same
    /// proxy replaces the first (a restarted proxy's new stream).
    pub fn subscribe(&self, id: ProxyId) -> Result<Subscription, SubscribeError> {
        self.subscribe_as(id, true)
    }

    /// Subscribes a proxy whose certificate names its ServiceAccount but
    /// no pod (issued before pod bindings): it may not replace a stream
    /// of a bound certificate, which a sibling pod of the same
    /// ServiceAccount could otherwise evict.
    pub fn subscribe_unbound(&self, id: ProxyId) -> Result<Subscription, SubscribeError> {
        self.subscribe_as(id, false)
    }

    fn subscribe_as(&self, id: ProxyId, bound: bool) -> Result<Subscription, SubscribeError> {
        let mut inner = self.lock();
        if !bound && inner.subscribers.get(&id).is_some_and(|s| s.bound) {
            return Err(SubscribeError::HeldByBoundCertificate(format!(
                "{}/{}",
                id.namespace, id.pod
            )));
        }
        // A proxy replacing its own stream does not count twice.
        let max = inner
            .compiler
            .index
            .mesh_config
            .as_ref()
            .map_or(0, |m| m.spec.sidecar.max_data_plane_connections);
        if max > 0
            && !inner.subscribers.contains_key(&id)
            && inner.subscribers.len() >= max as usize
        {
            return Err(SubscribeError::Full(max));
        }
        inner.compiler.add_proxy(id.clone())?;
        let view = inner.view_of(&id, None);
        tracing::trace!(pod = %format!("{}/{}", id.namespace, id.pod), resources = view.resources.len(), "subscribed");
        let (tx, views) = watch::channel(view);
        inner.next_token += 1;
        let token = inner.next_token;
        inner.subscribers.insert(
            id,
            Subscriber {
                token,
                views: tx,
                bound,
            },
        );
        Ok(Subscription { views, token })
    }

    /// Ends a subscription, unless a newer one for the proxy replaced it.
    pub fn unsubscribe(&self, id: &ProxyId, token: u64) {
        let mut inner = self.lock();
        if inner.subscribers.get(id).is_some_and(|s| s.token == token) {
            inner.subscribers.remove(id);
            inner.compiler.remove_proxy(id);
        }
    }

    /// Applies a cluster change and publishes the views it alters.
    pub fn apply(&self, object: Object) -> Impact {
        let started = Instant::now();
        let key = object.key();
        let mut inner = self.lock();
        let impact = inner.compiler.apply(object);
        let compiled = started.elapsed();
        inner.publish(&impact, started);
        tracing::debug!(
            object = %key,
            recompiled = impact.recompiled,
            changed = impact.changed.len(),
            compile_ms = compiled.as_secs_f64() * 1000.0,
            publish_ms = (started.elapsed() - compiled).as_secs_f64() * 1000.0,
            "applied"
        );
        drop(inner);
        self.apply_log_level();
        impact
    }

    pub fn delete(&self, key: &ObjectKey) -> Impact {
        let mut inner = self.lock();
        let impact = inner.compiler.delete(key);
        inner.publish(&impact, Instant::now());
        impact
    }

    /// Every Gateway API route's status for its Service parents, as the
    /// index stands now ([`osm_api::compile::gateway::status`]).
    pub fn route_statuses(&self) -> Vec<RouteStatus> {
        use osm_api::compile::gateway::{all_routes, status::route_status};
        let inner = self.lock();
        let index = &inner.compiler.index;
        all_routes(index)
            .map(|route| RouteStatus {
                kind: route.kind(),
                namespace: route.namespace().to_string(),
                name: route.name().to_string(),
                generation: route.metadata().generation.unwrap_or(1),
                parents: route_status(index, &route),
            })
            .collect()
    }

    /// The warnings `object` draws from a TrafficSplit or Gateway API
    /// routes on the same Service ([`osm_api::compile::gateway::conflicts`]).
    pub fn split_conflicts(&self, object: &Object) -> Vec<String> {
        osm_api::compile::gateway::conflicts::split_conflicts(&self.lock().compiler.index, object)
    }

    /// The ServiceAccount a known pod runs as (`default` when unset).
    pub fn pod_service_account(&self, namespace: &str, pod: &str) -> Option<String> {
        let inner = self.lock();
        let pod = inner
            .compiler
            .index
            .pods
            .get(&(namespace.to_string(), pod.to_string()))?;
        Some(osm_api::k8s::service_account(pod).to_string())
    }

    /// `look` at every known pod, under the hub's lock (keep it short).
    pub fn with_pods<R>(
        &self,
        look: impl FnOnce(
            &std::collections::BTreeMap<(String, String), Arc<osm_api::resources::MeshPod>>,
        ) -> R,
    ) -> R {
        look(&self.lock().compiler.index.pods)
    }

    /// Pods (`namespace/name`) whose proxy should be connected: injected,
    /// in a monitored namespace, neither finished nor being deleted.
    pub fn meshed_pods(&self) -> std::collections::BTreeSet<String> {
        let inner = self.lock();
        let index = &inner.compiler.index;
        index
            .pods
            .iter()
            .filter(|((namespace, _), pod)| {
                let finished = pod
                    .phase
                    .as_deref()
                    .is_some_and(|p| p == "Succeeded" || p == "Failed");
                index.is_monitored(namespace)
                    && osm_api::k8s::has_proxy(pod)
                    && !finished
                    && pod.metadata.deletion_timestamp.is_none()
            })
            .map(|((namespace, name), _)| format!("{namespace}/{name}"))
            .collect()
    }

    /// Leaf certificate lifetime: the MeshConfig's
    /// `certificate.serviceCertValidityDuration`, read at each signing so a
    /// change applies to the next certificate.
    pub fn cert_validity(&self) -> Duration {
        let inner = self.lock();
        inner
            .compiler
            .index
            .mesh_config
            .as_ref()
            .and_then(|m| m.spec.certificate.service_cert_validity().ok())
            .unwrap_or(DEFAULT_CERT_VALIDITY)
    }

    /// The mesh's trust domain.
    pub fn trust_domain(&self) -> String {
        self.lock().compiler.index.mesh.trust_domain.clone()
    }

    /// MeshConfig `observability.enableDebugServer` (off by default, as
    /// in OSM): whether the controller serves its debug endpoints.
    pub fn debug_server_enabled(&self) -> bool {
        self.lock()
            .compiler
            .index
            .mesh_config
            .as_ref()
            .is_some_and(|m| m.spec.observability.enable_debug_server)
    }

    /// The config a connected proxy is being served: its view's version
    /// and resources.
    pub fn current_view(&self, id: &ProxyId) -> Option<View> {
        self.lock()
            .subscribers
            .get(id)
            .map(|s| s.views.borrow().clone())
    }

    /// How many proxies are subscribed.
    pub fn subscribers(&self) -> usize {
        self.lock().subscribers.len()
    }
}

impl crate::certify::Membership for Hub {
    fn check(&self, namespace: &str, pod: &str) -> Result<(), crate::certify::NotMeshed> {
        use crate::certify::NotMeshed;
        let inner = self.lock();
        let index = &inner.compiler.index;
        let name = format!("{namespace}/{pod}");
        let found = index
            .pods
            .get(&(namespace.to_string(), pod.to_string()))
            .ok_or_else(|| NotMeshed::UnknownPod(name.clone()))?;
        if !index.is_monitored(namespace) {
            return Err(NotMeshed::NotMonitored {
                pod: name,
                namespace: namespace.into(),
            });
        }
        if !osm_api::k8s::has_proxy(found) {
            return Err(NotMeshed::NoProxy(name));
        }
        Ok(())
    }
}

/// The batch that takes a proxy from `sent` (None: nothing yet) to `latest`.
pub fn next_update(sent: Option<&View>, latest: &View) -> v1::ConfigUpdate {
    match sent {
        None => update(
            latest.version,
            true,
            Delta {
                upserts: latest
                    .resources
                    .values()
                    .map(|r| osm_api::v1::Resource::clone(r))
                    .collect(),
                removals: Vec::new(),
            },
        ),
        Some(sent) => update(
            latest.version,
            false,
            diff(&sent.resources, &latest.resources),
        ),
    }
}

#[cfg(test)]
mod tests;
