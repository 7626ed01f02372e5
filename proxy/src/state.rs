//! The state every connection shares: the current config snapshot, the TLS
//! configurations, endpoint pools, metrics and the access log.
//!
//! Config and TLS state are immutable snapshots swapped atomically; the data
//! path only ever loads them (no lock). Applying a config is serialized and
//! either swaps in a complete new snapshot or changes nothing.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use arc_swap::{ArcSwap, ArcSwapOption};
use metrics::Label;
use osm_api::v1::ProxyConfig;

use crate::{
    config::{
        ConfigError, OnBadResource, Snapshot, build,
        store::{Changed, ConfigStore, FileResources},
    },
    identity::{Credentials, policy::TlsPolicy, tls::TlsState},
    resilience::breaker::Breaker,
    telemetry::{access_log::AccessLog, metrics::Metrics, trace::Tracer},
    upstream::{Connector, EndpointRegistry, HttpClient, Parked, Wire, http_client},
};

/// A circuit breaker as a map key: the same breaker, by identity.
#[derive(Debug, Clone)]
pub struct BreakerRef(pub Arc<Breaker>);

impl PartialEq for BreakerRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for BreakerRef {}

impl std::hash::Hash for BreakerRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

type PlainKey = (
    SocketAddr,
    bool,
    Option<BreakerRef>,
    Option<std::net::IpAddr>,
);

/// Shared proxy state.
pub struct Shared {
    config: ArcSwap<Snapshot>,
    tls: Arc<ArcSwapOption<TlsState>>,
    credentials: ArcSwapOption<Credentials>,
    registry: EndpointRegistry,
    /// Clients for destinations outside the mesh, by address, HTTP/2, and
    /// the circuit breaker of the Egress rule that lets them out (its
    /// connections count against that rule's limits).
    plain_clients: ArcSwap<HashMap<PlainKey, HttpClient>>,
    apply: Mutex<()>,
    /// The version of each config applied, for connections whose fate
    /// depends on it.
    versions: tokio::sync::watch::Sender<u64>,
    pub metrics: Metrics,
    pub access_log: AccessLog,
    pub tracer: Tracer,
    pub log_filter: Option<Arc<dyn crate::logging::LogFilter>>,
    /// The log level the config last named.
    config_log_level: Mutex<String>,
    /// Resolves the hosts egress rules name (destinations are pinned).
    pub resolver: crate::resolve::Resolver,
    /// Whether HTTP/1.1 requests to peer proxies share HTTP/2 connections
    /// (`--multiplex-http1`).
    multiplex_http1: bool,
    /// The application's idle connections, by address, that no inbound
    /// connection keeps (a few ports).
    app_parked: Mutex<HashMap<SocketAddr, Arc<Parked>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config_version", &self.config.load().version)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(
        metrics: Metrics,
        access_log: AccessLog,
        log_filter: Option<Arc<dyn crate::logging::LogFilter>>,
    ) -> Self {
        let tls = Arc::new(ArcSwapOption::empty());
        Self {
            config: ArcSwap::from_pointee(Snapshot::empty()),
            registry: EndpointRegistry::new(tls.clone()),
            tls,
            credentials: ArcSwapOption::empty(),
            plain_clients: ArcSwap::default(),
            apply: Mutex::new(()),
            versions: tokio::sync::watch::Sender::new(0),
            tracer: Tracer::new(metrics.pod(), metrics.trace_counters()),
            metrics,
            access_log,
            log_filter,
            config_log_level: Mutex::default(),
            resolver: crate::resolve::Resolver::default(),
            multiplex_http1: false,
            app_parked: Mutex::default(),
        }
    }

    /// Whether HTTP/1.1 requests to and from peer proxies share HTTP/2
    /// connections (off unless turned on; a peer that does not offer or
    /// accept it gets HTTP/1.1).
    pub fn multiplexing_http1(mut self, on: bool) -> Self {
        self.multiplex_http1 = on;
        self
    }

    /// Idle HTTP/1.1 connections to endpoints and to the application
    /// that no downstream connection keeps.
    pub fn parked_connections(&self) -> usize {
        let apps = self.app_parked.lock().unwrap_or_else(|e| e.into_inner());
        let to_apps: usize = apps.values().map(|p| p.len()).sum();
        to_apps + self.registry.handles().parked_connections()
    }

    /// The idle connections to the application at `addr`.
    pub fn app_parked(&self, addr: SocketAddr) -> Arc<Parked> {
        let mut parked = self.app_parked.lock().unwrap_or_else(|e| e.into_inner());
        parked.entry(addr).or_default().clone()
    }

    /// Whether it does ([`Self::multiplexing_http1`]).
    pub fn multiplexes_http1(&self) -> bool {
        self.multiplex_http1
    }

    /// The current config.
    pub fn config(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.config.load()
    }

    /// Wakes on every config applied.
    pub fn config_updates(&self) -> tokio::sync::watch::Receiver<u64> {
        self.versions.subscribe()
    }

    /// The current TLS state; None until the proxy has credentials and a
    /// trust bundle.
    pub fn tls(&self) -> Option<Arc<TlsState>> {
        self.tls.load_full()
    }

    /// Ready once it holds a certificate and a config.
    pub fn is_ready(&self) -> bool {
        self.tls.load().is_some() && self.config.load().version > 0
    }

    /// Validates and applies a complete config; returns its version. On
    /// error nothing changes.
    pub fn apply_config(&self, config: ProxyConfig) -> Result<u64, ConfigError> {
        self.apply_file(FileResources::from_config(config))
    }

    /// Applies a config file's resources ([`crate::config::parse_file`]).
    pub fn apply_file(&self, file: FileResources) -> Result<u64, ConfigError> {
        self.swap_in(|_, version, registry| {
            crate::config::build_file_snapshot(file, version, registry).map(|s| (s, Vec::new()))
        })
        .map(|(version, _)| version)
    }

    /// Applies a config from the controller (`source`, which a batch that
    /// `changed` what it did made from `base`): in place when it can, else
    /// built whole with a resource that cannot be built enforced
    /// fail-closed instead of holding back the rest. Returns the version
    /// and what was rejected (also counted in
    /// `osm_config_resources_rejected`).
    pub fn apply_batch(
        &self,
        base: &ConfigStore,
        source: ConfigStore,
        changed: &Changed,
    ) -> Result<(u64, Vec<ConfigError>), ConfigError> {
        let applied = self.swap_in(|current, version, registry| {
            let in_place =
                crate::config::update(current, base, source.clone(), changed, version, registry);
            match in_place {
                Some(snapshot) => Ok((snapshot, Vec::new())),
                None => build(
                    &source,
                    source.clone(),
                    version,
                    registry,
                    OnBadResource::FailClosed,
                ),
            }
        })?;
        self.metrics
            .gauge(crate::telemetry::metrics::CONFIG_RESOURCES_REJECTED, vec![])
            .set(applied.1.len() as f64);
        Ok(applied)
    }

    /// Builds the next snapshot from the current one and swaps it in, or
    /// changes nothing.
    fn swap_in(
        &self,
        next: impl FnOnce(
            &Snapshot,
            u64,
            &EndpointRegistry,
        ) -> Result<(Snapshot, Vec<ConfigError>), ConfigError>,
    ) -> Result<(u64, Vec<ConfigError>), ConfigError> {
        let _serial = self.apply.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.config.load_full();
        let version = current.version + 1;
        let (snapshot, rejected) = next(&current, version, &self.registry)?;
        let tls = self.tls_for(&snapshot.trust_bundle, &snapshot.mesh.tls)?;
        // Swap TLS first: a connection that sees the new config also sees
        // the trust bundle it names.
        if let Some(tls) = tls {
            self.tls.store(Some(tls));
        }
        snapshot.activate(&current);
        drop(current);
        self.follow_log_level(&snapshot.mesh.log_level);
        self.tracer.configure(snapshot.mesh.tracing.clone());
        self.access_log.follow(snapshot.mesh.access_log);
        self.config.store(Arc::new(snapshot));
        self.versions.send_replace(version);
        self.metrics
            .counter(
                crate::telemetry::metrics::CONFIG_RELOADS_TOTAL,
                vec![Label::new("result", "applied")],
            )
            .increment(1);
        Ok((version, rejected))
    }

    /// Sets the log filter the config names when that name changes (so a
    /// filter set through `/logging` holds until the config's changes).
    fn follow_log_level(&self, level: &str) {
        let (Some(filter), false) = (&self.log_filter, level.is_empty()) else {
            return;
        };
        let mut applied = self
            .config_log_level
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if applied.as_str() == level {
            return;
        }
        match filter.set(level) {
            Ok(()) => tracing::info!(%level, "log level set by the mesh config"),
            Err(e) => {
                tracing::warn!(%level, error = %e, "log level from the mesh config not applied")
            }
        }
        *applied = level.to_string();
    }

    /// Counts a refused config.
    pub fn record_rejected_config(&self) {
        self.metrics
            .counter(
                crate::telemetry::metrics::CONFIG_RELOADS_TOTAL,
                vec![Label::new("result", "rejected")],
            )
            .increment(1);
    }

    /// A new TLS state when the trust bundle changed, None when unchanged.
    fn tls_for(
        &self,
        bundle: &[rustls::pki_types::CertificateDer<'static>],
        policy: &TlsPolicy,
    ) -> Result<Option<Arc<TlsState>>, ConfigError> {
        let current = self.tls.load();
        if current
            .as_ref()
            .is_some_and(|t| t.trust_bundle == bundle && t.policy == *policy)
        {
            return Ok(None);
        }
        let Some(credentials) = self.credentials.load_full() else {
            return Ok(None);
        };
        if bundle.is_empty() {
            return Ok(None);
        }
        TlsState::new(
            Credentials::clone(&credentials),
            bundle,
            policy,
            self.multiplex_http1,
        )
        .map(|t| Some(Arc::new(t)))
        .map_err(|e| ConfigError {
            field: "trustBundle.pem".into(),
            message: e.to_string(),
        })
    }

    /// Installs (or rotates) the proxy's certificate and key. New
    /// connections use them; established ones are not disturbed.
    pub fn set_credentials(
        &self,
        credentials: Credentials,
    ) -> Result<(), crate::identity::tls::TlsError> {
        let _serial = self.apply.lock().unwrap_or_else(|e| e.into_inner());
        let config = self.config.load();
        let bundle = config.trust_bundle.clone();
        if !bundle.is_empty() {
            let tls = TlsState::new(
                credentials.clone(),
                &bundle,
                &config.mesh.tls,
                self.multiplex_http1,
            )?;
            self.tls.store(Some(Arc::new(tls)));
        } else {
            // Check the credentials now; TLS is built once a bundle arrives.
            crate::identity::tls::spiffe_id_of(credentials.chain.first().ok_or_else(|| {
                crate::identity::tls::TlsError::Credentials("empty certificate chain".into())
            })?)?;
        }
        self.credentials.store(Some(Arc::new(credentials)));
        Ok(())
    }

    /// The proxy's current certificate and key.
    pub fn credentials(&self) -> Option<Arc<Credentials>> {
        self.credentials.load_full()
    }

    /// What opens connections to `addr` outside the mesh (or to the
    /// application): plaintext, counted against `breaker`, from `source`.
    pub fn plain_connector(
        &self,
        addr: SocketAddr,
        wire: Wire,
        breaker: Option<&Arc<Breaker>>,
        source: Option<std::net::IpAddr>,
    ) -> Connector {
        let timeout = breaker
            .and_then(|b| b.limits.connect_timeout)
            .unwrap_or_else(|| self.config.load().mesh.connect_timeout);
        let gate = Arc::new(ArcSwapOption::new(breaker.cloned()));
        Connector::new(addr, None, self.tls.clone(), wire, timeout)
            .with_breaker(gate)
            .with_source(source)
    }

    /// A pooled plaintext client to `addr`: the local application (from
    /// `source`, [`crate::upstream::app_source`]), or an egress destination.
    // The key holds a breaker (interior mutability) but hashes and compares
    // it by identity, which never changes.
    #[allow(clippy::mutable_key_type)]
    pub fn plain_client(
        &self,
        addr: SocketAddr,
        http2: bool,
        breaker: Option<&Arc<Breaker>>,
        source: Option<std::net::IpAddr>,
    ) -> HttpClient {
        let key = (addr, http2, breaker.map(|b| BreakerRef(b.clone())), source);
        if let Some(client) = self.plain_clients.load().get(&key) {
            return client.clone();
        }
        let wire = if http2 { Wire::Http2 } else { Wire::Http1 };
        let client = http_client(self.plain_connector(addr, wire, breaker, source), wire);
        self.plain_clients.rcu(|clients| {
            let mut clients = HashMap::clone(clients);
            // Clients of breakers no config holds any more go: then only
            // the key and the client's own connector hold the breaker.
            clients
                .retain(|(_, _, b, _), _| b.as_ref().is_none_or(|b| Arc::strong_count(&b.0) > 2));
            clients.entry(key.clone()).or_insert_with(|| client.clone());
            clients
        });
        client
    }
}
