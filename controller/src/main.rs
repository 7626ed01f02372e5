//! The osm-controller binary.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use osm_api::compile::MeshOptions;
use osm_controller::{
    app::{Controller, Settings, Source},
    ca::{authority::Authority, store::DirStore},
    kubernetes::{
        bootstrap::Bootstrap, ca_secret::SecretStore, front_proxy, token_review::KubeTokens,
    },
    server::tls::default_server_names,
    token::{LocalTokens, TokenReviewer},
    traffic_metrics::Settings as TrafficMetricsSettings,
};

/// The mesh's control plane: the certificate authority, the config stream
/// proxies subscribe to, and the sources of cluster state.
///
/// On Kubernetes: `--kubernetes`. Local mode: `--state-dir` keeps the CA (`ca-state.json`, mirrored
/// as `ca.crt`, `private.key` and `trust-bundle.crt`) and the
/// key local-mode tokens are signed with (`token.key`); `--manifests` is the
/// directory of Kubernetes manifests that stands for the cluster, re-read
/// when it changes.
#[derive(Debug, Parser)]
#[command(name = "osm-controller", version)]
struct Args {
    /// gRPC (Identity.Certify, Config.Stream) over TLS.
    #[arg(long, default_value = "0.0.0.0:15128")]
    grpc_listen: SocketAddr,

    /// Health (/healthz), readiness (/readyz), metrics (/metrics) and
    /// /debug/proxies.
    #[arg(long, default_value = "0.0.0.0:9091")]
    admin_listen: SocketAddr,

    /// The validating admission webhook for the mesh's CRDs (HTTPS,
    /// POST /validate).
    #[arg(long, default_value = "0.0.0.0:9093")]
    webhook_listen: SocketAddr,

    /// Run against the Kubernetes API (in-cluster or kubeconfig): watch the
    /// cluster, check tokens with TokenReview, keep the CA in the Secret
    /// osm-ca-bundle of --osm-namespace.
    #[arg(long, conflicts_with_all = ["state_dir", "manifests"])]
    kubernetes: bool,

    /// Local mode: where the CA and the local token key are kept (made on
    /// first start).
    #[arg(long, env = "OSM_STATE_DIR", required_unless_present = "kubernetes")]
    state_dir: Option<PathBuf>,

    /// Local mode: a directory of manifests to serve as the cluster's state.
    #[arg(long, env = "OSM_MANIFESTS")]
    manifests: Option<PathBuf>,

    /// How often --manifests is checked for changes.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    poll_interval: Duration,

    /// Namespaces labelled openservicemesh.io/monitored-by=<mesh-name> are meshed.
    #[arg(long, default_value = "osm")]
    mesh_name: String,

    /// The control plane's namespace (where osm-mesh-config lives).
    #[arg(long, default_value = "osm-system")]
    osm_namespace: String,

    /// Trust domain of the SPIFFE identities.
    #[arg(long, default_value = "cluster.local")]
    trust_domain: String,

    /// Lifetime of the root CA made on first start, and of each root a
    /// rotation makes.
    #[arg(long, default_value = "87600h", value_parser = humantime::parse_duration)]
    ca_validity: Duration,

    /// How long each phase of a root rotation (`osm ca rotate`) lasts at
    /// least: with several controller replicas, each reads the phase from
    /// the CA Secret (once a second) and its proxies follow before the
    /// next phase. Local mode's one controller runs with 0s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    ca_rotation_min_phase: Duration,

    /// Names (DNS or IP) on the controller's certificate; repeatable.
    /// Default: osm-controller.<osm-namespace>.svc and its variants,
    /// localhost, 127.0.0.1 and ::1.
    #[arg(long = "server-name")]
    server_names: Vec<String>,

    /// Serve the SMI TrafficMetrics aggregated API (metrics.smi-spec.io/
    /// v1alpha1) over HTTPS here, for the APIService the chart installs.
    /// Kubernetes only: callers must present the API server's front-proxy
    /// client certificate (kube-system/extension-apiserver-authentication).
    #[arg(long, requires = "kubernetes")]
    traffic_metrics_listen: Option<SocketAddr>,

    /// The TrafficMetrics window: every proxy's metrics are read this often
    /// and each answer covers the last window.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    traffic_metrics_window: Duration,

    #[command(flatten)]
    issuer: osm_controller::issuers::IssuerArgs,

    /// Log filter (RUST_LOG syntax).
    #[arg(long, env = "OSM_CONTROLLER_LOG", default_value = "info")]
    log_level: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let log_filter = osm_serve::init_logging(&args.log_level)
        .map_err(anyhow::Error::msg)
        .context("--log-level")?;
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(args, log_filter))
}

async fn run(args: Args, log_filter: Arc<dyn osm_api::logging::LogFilter>) -> anyhow::Result<()> {
    let (ca, reviewer, source): (Authority, Arc<dyn TokenReviewer>, Source) = match &args.state_dir
    {
        Some(dir) if !args.kubernetes => {
            let store = DirStore::new(dir);
            let stored = store
                .load_or_create(args.ca_validity)
                .and_then(|stored| Authority::new(stored, Arc::new(store), args.ca_validity))
                .with_context(|| format!("the CA in {}", dir.display()))?;
            let tokens = LocalTokens::load_or_create(dir)
                .with_context(|| format!("the token key in {}", dir.display()))?;
            let source = match &args.manifests {
                Some(dir) => Source::Files {
                    dir: dir.clone(),
                    poll: args.poll_interval,
                },
                None => Source::None,
            };
            (stored, Arc::new(tokens), source)
        }
        _ => {
            let client = kube::Client::try_default()
                .await
                .context("cannot reach the Kubernetes API (in-cluster config or kubeconfig)")?;
            let store = SecretStore::new(client.clone(), &args.osm_namespace);
            let ca = store
                .load_or_create(&args.mesh_name, args.ca_validity)
                .await
                .and_then(|stored| Authority::new(stored, Arc::new(store), args.ca_validity))
                .context("the mesh CA")?;
            (
                ca,
                Arc::new(KubeTokens::new(client.clone())),
                Source::Kubernetes(client),
            )
        }
    };
    let ca = Arc::new(ca);
    // On Kubernetes the controller also keeps the injector's certificate,
    // the webhooks' CA bundle and osm-mesh-config (from the preset) in place.
    let stop_bootstrap = tokio_util::sync::CancellationToken::new();
    if let Source::Kubernetes(client) = &source {
        let bootstrap = Bootstrap {
            client: client.clone(),
            namespace: args.osm_namespace.clone(),
            mesh_name: args.mesh_name.clone(),
            ca: ca.clone(),
        };
        tokio::spawn(bootstrap.keep(Duration::from_secs(60), stop_bootstrap.clone()));
    }
    let traffic_metrics = match (&source, args.traffic_metrics_listen) {
        (Source::Kubernetes(client), Some(listen)) => {
            match front_proxy::read(client.clone()).await {
                Ok(front) => Some(TrafficMetricsSettings {
                    listen,
                    client_ca_pem: front.client_ca_pem,
                    allowed_names: front.allowed_names,
                    window: args.traffic_metrics_window,
                }),
                Err(e) => {
                    // Traffic goes on without it; say why `kubectl get
                    // trafficmetrics` will not answer, once.
                    tracing::warn!(
                        error = %e,
                        "the TrafficMetrics API is not served (the chart's \
                         osm.trafficMetrics.enabled=false leaves it out)"
                    );
                    None
                }
            }
        }
        _ => None,
    };
    let kube_client = match &source {
        Source::Kubernetes(client) => Some(client.clone()),
        _ => None,
    };
    let issuer = args
        .issuer
        .build(kube_client.as_ref(), &args.osm_namespace)
        .await
        .context("--certificate-provider")?;
    let server_names = if args.server_names.is_empty() {
        default_server_names(&args.osm_namespace)
    } else {
        args.server_names
    };
    let controller = Controller::bind(Settings {
        grpc: args.grpc_listen,
        admin: args.admin_listen,
        webhook: args.webhook_listen,
        ca,
        reviewer,
        mesh: MeshOptions {
            mesh_name: args.mesh_name,
            trust_domain: args.trust_domain,
            osm_namespace: args.osm_namespace,
            ..MeshOptions::default()
        },
        source,
        server_names,
        traffic_metrics,
        rotation_min_phase: args.ca_rotation_min_phase,
        issuer,
        log_filter: Some(log_filter),
    })
    .await?;
    let addrs = controller.addrs();
    tracing::info!(grpc = %addrs.grpc, admin = %addrs.admin, "serving");
    controller.run(osm_serve::shutdown_signal()).await;
    stop_bootstrap.cancel();
    Ok(())
}

/// Every proxy holds a connection: take the hard limit on open files,
/// not the soft default (often 1024).
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(error = %e, soft, hard, "cannot raise the open files limit");
    }
}
