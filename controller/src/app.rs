//! Wiring: bind the listeners (so tests can use port 0), then run the
//! sources, the gRPC server and the admin endpoints until shutdown.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use osm_api::compile::{Compiler, Index, MeshOptions};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admin::{self, AdminState},
    ca::{Issuer, authority::Authority, ledger::Ledger},
    ca_driver::CaDriver,
    hub::Hub,
    metrics::Metrics,
    server::{self, ConfigService, IdentityService, live_tls::LiveTls},
    sources::files::FileSource,
    status::Proxies,
    token::TokenReviewer,
};

/// How long the controller's own serving certificate is valid; it is made
/// anew at every start and whenever the issuing root changes.
const SERVING_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// How to run a controller.
pub struct Settings {
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
    /// The validating webhook (HTTPS).
    pub webhook: SocketAddr,
    /// The mesh CA (and its rotation): it signs the controller's own
    /// certificates, and proxies' unless `issuer` is given.
    pub ca: Arc<Authority>,
    /// An external PKI (Vault, cert-manager) that signs proxies'
    /// certificates; its roots join the bundle proxies are sent.
    pub issuer: Option<Arc<dyn Issuer>>,
    pub reviewer: Arc<dyn TokenReviewer>,
    pub mesh: MeshOptions,
    pub source: Source,
    /// Names (DNS or IP) on the controller's certificate.
    pub server_names: Vec<String>,
    /// The SMI TrafficMetrics aggregated API (None: not served).
    pub traffic_metrics: Option<crate::traffic_metrics::Settings>,
    /// How long each phase of a root rotation lasts at least (several
    /// controller replicas: each must read the phase and its proxies
    /// follow before the next).
    pub rotation_min_phase: Duration,
    /// The controller's log filter, which MeshConfig
    /// `observability.osmLogLevel` sets; None leaves logging alone.
    pub log_filter: Option<Arc<dyn osm_api::logging::LogFilter>>,
}

/// Where the cluster state comes from.
pub enum Source {
    /// A directory of manifests, checked for changes every `poll` (local
    /// mode).
    Files { dir: PathBuf, poll: Duration },
    /// The Kubernetes API.
    Kubernetes(kube::Client),
    /// Nothing (tests that feed the hub themselves).
    None,
}

/// The addresses the controller bound.
#[derive(Debug, Clone, Copy)]
pub struct BoundAddrs {
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
    pub webhook: SocketAddr,
    pub traffic_metrics: Option<SocketAddr>,
}

/// The TrafficMetrics API, bound.
struct TrafficMetricsApi {
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    settings: crate::traffic_metrics::Settings,
}

/// A bound controller, ready to run.
pub struct Controller {
    grpc: TcpListener,
    admin: TcpListener,
    webhook: TcpListener,
    addrs: BoundAddrs,
    tls: Arc<rustls::ServerConfig>,
    webhook_tls: Arc<rustls::ServerConfig>,
    /// What the three TLS configs present, following the CA.
    live_tls: Arc<LiveTls>,
    server_names: Vec<String>,
    traffic_metrics: Option<TrafficMetricsApi>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    proxies: Arc<Proxies>,
    synced: Arc<AtomicBool>,
    ca: Arc<Authority>,
    issuer: Option<Arc<dyn Issuer>>,
    reviewer: Arc<dyn TokenReviewer>,
    source: Source,
    rotation_min_phase: Duration,
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

impl Controller {
    pub async fn bind(settings: Settings) -> anyhow::Result<Self> {
        let trust_bundle =
            crate::ca_driver::proxy_bundle(settings.issuer.as_deref(), &settings.ca.trust_bundle());
        let serving = settings
            .ca
            .current()
            .ca
            .serving_cert(&settings.server_names, SERVING_CERT_VALIDITY)
            .context("the controller's serving certificate")?;
        let live_tls = LiveTls::new(&serving, &trust_bundle)
            .map_err(anyhow::Error::msg)
            .context("the controller's TLS configuration")?;
        let tls = live_tls
            .grpc_config()
            .map_err(anyhow::Error::msg)
            .context("the controller's TLS configuration")?;
        let webhook_tls = live_tls
            .webhook_config()
            .map_err(anyhow::Error::msg)
            .context("the webhook's TLS configuration")?;
        let mut hub = Hub::new(Compiler::new(Index::new(settings.mesh)), Some(trust_bundle));
        if let Some(filter) = settings.log_filter {
            hub.follow_log_level(filter);
        }
        let hub = Arc::new(hub);
        let grpc = bind(settings.grpc).await?;
        let admin = bind(settings.admin).await?;
        let webhook = bind(settings.webhook).await?;
        let traffic_metrics = match settings.traffic_metrics {
            Some(settings) => Some(TrafficMetricsApi {
                listener: bind(settings.listen).await?,
                tls: crate::traffic_metrics::serve::tls_config(&live_tls, &settings.client_ca_pem)
                    .map_err(anyhow::Error::msg)
                    .context("the TrafficMetrics API's TLS configuration")?,
                settings,
            }),
            None => None,
        };
        let addrs = BoundAddrs {
            grpc: grpc.local_addr()?,
            admin: admin.local_addr()?,
            webhook: webhook.local_addr()?,
            traffic_metrics: match &traffic_metrics {
                Some(api) => Some(api.listener.local_addr()?),
                None => None,
            },
        };
        Ok(Self {
            grpc,
            admin,
            webhook,
            addrs,
            tls,
            webhook_tls,
            live_tls,
            server_names: settings.server_names,
            traffic_metrics,
            hub,
            metrics: Arc::new(Metrics::new()),
            proxies: Arc::new(Proxies::default()),
            synced: Arc::new(AtomicBool::new(false)),
            ca: settings.ca,
            issuer: settings.issuer,
            reviewer: settings.reviewer,
            source: settings.source,
            rotation_min_phase: settings.rotation_min_phase,
        })
    }

    pub fn addrs(&self) -> BoundAddrs {
        self.addrs
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn proxies(&self) -> &Arc<Proxies> {
        &self.proxies
    }

    /// Serves until `shutdown` completes; then every connection closes.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        match self.source {
            Source::Files { dir, poll } => {
                tasks.spawn(watch_manifests(
                    FileSource::new(dir),
                    self.hub.clone(),
                    self.metrics.clone(),
                    self.synced.clone(),
                    poll,
                    stop.clone(),
                ));
            }
            Source::Kubernetes(client) => {
                tasks.spawn(crate::sources::route_status::run(
                    client.clone(),
                    self.hub.clone(),
                    stop.clone(),
                ));
                tasks.spawn(crate::sources::kubernetes::run(
                    client,
                    self.hub.clone(),
                    self.metrics.clone(),
                    self.synced.clone(),
                    stop.clone(),
                ));
            }
            // Nothing to sync: the (empty) state is complete.
            Source::None => self.synced.store(true, Ordering::Release),
        }
        let ledger = Arc::new(Ledger::default());
        tasks.spawn(
            CaDriver {
                authority: self.ca.clone(),
                hub: self.hub.clone(),
                proxies: self.proxies.clone(),
                ledger: ledger.clone(),
                tls: self.live_tls.clone(),
                server_names: self.server_names.clone(),
                metrics: self.metrics.clone(),
                synced: self.synced.clone(),
                min_phase: self.rotation_min_phase,
                issuer: self.issuer.clone(),
            }
            .run(stop.clone()),
        );
        let issuer: Arc<dyn Issuer> = match &self.issuer {
            Some(external) => external.clone(),
            None => self.ca.clone(),
        };
        let issuer_health = Arc::new(crate::ca::health::IssuerHealth::new(issuer.kind()));
        let identity = IdentityService {
            hub: self.hub.clone(),
            reviewer: self.reviewer.clone(),
            issuer,
            metrics: self.metrics.clone(),
            reviews: Default::default(),
            ledger: ledger.clone(),
            health: issuer_health.clone(),
        };
        let config = ConfigService::new(
            self.hub.clone(),
            self.proxies.clone(),
            self.metrics.clone(),
            ledger.clone(),
            self.synced.clone(),
        );
        tasks.spawn(server::serve(
            self.grpc,
            self.tls.clone(),
            identity,
            config,
            stop.clone(),
        ));
        tasks.spawn(crate::webhook::serve(
            self.webhook,
            self.webhook_tls.clone(),
            self.hub.clone(),
            self.metrics.clone(),
            stop.clone(),
        ));
        tasks.spawn(admin::serve(
            self.admin,
            AdminState {
                metrics: self.metrics.clone(),
                proxies: self.proxies.clone(),
                synced: self.synced.clone(),
                hub: self.hub.clone(),
                ledger,
                authority: self.ca.clone(),
                issuer_health,
            },
            stop.clone(),
        ));
        if let Some(api) = self.traffic_metrics {
            let readings = Arc::new(crate::traffic_metrics::Readings::default());
            tasks.spawn(crate::traffic_metrics::keep_reading(
                self.hub.clone(),
                readings.clone(),
                api.settings.window,
                self.synced.clone(),
                stop.clone(),
            ));
            tasks.spawn(crate::traffic_metrics::serve::serve(
                api.listener,
                api.tls,
                readings,
                Arc::new(api.settings.allowed_names),
                stop.clone(),
            ));
        }
        let metrics = self.metrics.clone();
        let upkeep_stop = stop.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => metrics.run_upkeep(),
                    _ = upkeep_stop.cancelled() => return,
                }
            }
        });
        shutdown.await;
        tracing::info!("stopping");
        stop.cancel();
        tasks.close();
        tasks.wait().await;
    }
}

/// Syncs the manifests directory into the hub every `interval`. Problems
/// are logged when they change, not at every pass.
async fn watch_manifests(
    source: FileSource,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    synced: Arc<AtomicBool>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut source = Some(source);
    let mut reported: BTreeSet<String> = BTreeSet::new();
    loop {
        let Some(mut current) = source.take() else {
            return;
        };
        let hub_for_sync = hub.clone();
        let started = std::time::Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let report = current.sync(&hub_for_sync);
            (current, report)
        })
        .await;
        let took = started.elapsed();
        let Ok((current, report)) = joined else {
            tracing::error!("the manifest sync panicked; the file source stops");
            metrics.error("source");
            return;
        };
        source = Some(current);
        if !report.applied.is_empty() || !report.deleted.is_empty() {
            tracing::info!(
                applied = report.applied.len(),
                deleted = report.deleted.len(),
                took_ms = took.as_millis() as u64,
                "manifests synced"
            );
        }
        for key in &report.applied {
            tracing::debug!(object = %key, "applied");
        }
        for key in &report.deleted {
            tracing::debug!(object = %key, "deleted");
        }
        let problems: BTreeSet<String> = report.problems.into_iter().collect();
        for p in problems.difference(&reported) {
            tracing::warn!(problem = %p, "manifest skipped");
        }
        metrics.source_synced("files", problems.len());
        reported = problems;
        synced.store(true, Ordering::Release);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}
