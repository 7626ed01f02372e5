//! The osm-injector binary.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use clap::Parser;
use osm_injector::{
    lookup::{ClusterView, Files, Kubernetes},
    mutate::InjectorSettings,
    reload::{CertFiles, Watched},
    server::{State, serve},
};

/// The sidecar injector: a mutating admission webhook (AdmissionReview v1
/// over HTTPS, POST /mutate-pod-creation) that adds osm-init and osm-proxy
/// to the pods of namespaces labelled openservicemesh.io/monitored-by.
#[derive(Debug, Parser)]
#[command(name = "osm-injector", version)]
struct Args {
    #[arg(long, default_value = "0.0.0.0:9090")]
    listen: SocketAddr,

    /// The webhook's certificate chain (PEM); read again when it changes.
    #[arg(long, env = "OSM_INJECTOR_CERT")]
    cert: PathBuf,

    /// Its private key (PEM).
    #[arg(long, env = "OSM_INJECTOR_KEY")]
    key: PathBuf,

    /// The mesh's trust bundle the proxies check the controller against
    /// (PEM file); read again when it changes (a root rotation).
    #[arg(long, env = "OSM_TRUST_BUNDLE")]
    trust_bundle: PathBuf,

    #[arg(long, default_value = "osm")]
    mesh_name: String,

    /// The mesh's trust domain (the controller's --trust-domain): given to
    /// each proxy, whose certificate request names its identity in it.
    #[arg(long, default_value = "cluster.local")]
    trust_domain: String,

    #[arg(long, default_value = "osm-system")]
    osm_namespace: String,

    /// The controller's gRPC address as pods reach it; default
    /// osm-controller.<osm-namespace>.svc:15128.
    #[arg(long)]
    controller: Option<String>,

    #[arg(long, default_value = "openservicemesh/osm-proxy:latest")]
    proxy_image: String,

    #[arg(long, default_value = "openservicemesh/osm-init:latest")]
    init_image: String,

    /// Read namespaces and the MeshConfig from the Kubernetes API.
    #[arg(long, conflicts_with = "manifests")]
    kubernetes: bool,

    /// Local mode: read them from this directory of manifests.
    #[arg(long, required_unless_present = "kubernetes")]
    manifests: Option<PathBuf>,

    #[arg(long, env = "OSM_INJECTOR_LOG", default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    osm_serve::init_logging(&args.log_level)
        .map_err(anyhow::Error::msg)
        .context("--log-level")?;
    // Both read again when they change: a root rotation rewrites them.
    let tls = CertFiles::open(&args.cert, &args.key)
        .and_then(|files| files.server_config().map_err(anyhow::Error::msg))
        .context("--cert/--key")?;
    let trust_bundle = Watched::open(&args.trust_bundle)
        .with_context(|| format!("cannot read {}", args.trust_bundle.display()))?;
    let trust_bundle_pem = trust_bundle.text();
    let cluster: Box<dyn ClusterView> = match &args.manifests {
        Some(dir) if !args.kubernetes => Box::new(Files {
            dir: dir.clone(),
            osm_namespace: args.osm_namespace.clone(),
        }),
        _ => Box::new(Kubernetes {
            client: kube::Client::try_default()
                .await
                .context("cannot reach the Kubernetes API")?,
            osm_namespace: args.osm_namespace.clone(),
        }),
    };
    let settings = InjectorSettings {
        controller: args
            .controller
            .clone()
            .unwrap_or_else(|| format!("osm-controller.{}.svc:15128", args.osm_namespace)),
        mesh_name: args.mesh_name,
        osm_namespace: args.osm_namespace,
        proxy_image: args.proxy_image,
        init_image: args.init_image,
        trust_bundle_pem,
        trust_domain: args.trust_domain,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "serving");
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        tls,
        Arc::new(State {
            settings,
            cluster,
            trust_bundle: Some(trust_bundle),
        }),
        stop.clone(),
    ));
    osm_serve::shutdown_signal().await;
    stop.cancel();
    let _ = server.await;
    Ok(())
}
