//! The mesh on a Kubernetes cluster: `osm install` (so far `--dry-run`,
//! which prints the manifests the chart renders to).

pub mod chart;
pub mod metrics;
pub mod namespace;
pub mod policy;
pub mod table;
pub mod values;

use clap::Args;

/// Install the mesh's control plane: the chart in deploy/chart/osm,
/// rendered with its values and `--set` overrides.
#[derive(Debug, Args)]
pub struct Install {
    /// The mesh's name (namespaces labelled
    /// openservicemesh.io/monitored-by=<name> join it).
    #[arg(long, default_value = "osm")]
    pub mesh_name: String,
    /// The control plane's namespace.
    #[arg(long, default_value = "osm-system")]
    pub osm_namespace: String,
    /// A chart value, key=value (repeatable): osm.controller.replicas=2,
    /// osm.enablePermissiveTrafficPolicy=false, ...
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the manifests instead of applying them.
    #[arg(long)]
    pub dry_run: bool,
}

impl Install {
    pub fn run(&self) -> anyhow::Result<i32> {
        let mut values = chart::default_values().map_err(anyhow::Error::msg)?;
        values::set(&mut values, &format!("osm.meshName={}", self.mesh_name))
            .map_err(anyhow::Error::msg)?;
        for assignment in &self.set {
            values::set(&mut values, assignment).map_err(anyhow::Error::msg)?;
        }
        let manifests = chart::render(&values, &self.osm_namespace)
            .map_err(|e| anyhow::anyhow!("rendering the chart: {e}"))?;
        if self.dry_run {
            print!("{manifests}");
            return Ok(0);
        }
        anyhow::bail!(
            "applying to a cluster is not built yet: use --dry-run and apply the output with \
             kubectl apply --server-side -f -, or helm install osm deploy/chart/osm -n {}",
            self.osm_namespace
        )
    }
}

/// A client for the cluster the kubeconfig (or the pod's service account)
/// points at.
pub async fn client() -> anyhow::Result<kube::Client> {
    kube::Client::try_default().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach a Kubernetes cluster ({e}): set KUBECONFIG or the current context, \
             or try the mesh on this machine with `osm local demo`"
        )
    })
}

/// `osm namespace`: which namespaces are in a mesh.
#[derive(Debug, clap::Subcommand)]
pub enum NamespaceCommand {
    /// Put namespaces in the mesh: new pods get a sidecar (unless
    /// --disable-sidecar-injection) and their traffic is governed by it.
    Add {
        #[arg(required = true)]
        namespaces: Vec<String>,
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        /// The control plane's namespace, which can never join.
        #[arg(long, default_value = "osm-system")]
        osm_namespace: String,
        /// Monitor the namespace without injecting sidecars.
        #[arg(long)]
        disable_sidecar_injection: bool,
    },
    /// Take a namespace out of the mesh (running pods keep their sidecar
    /// until restarted).
    Remove {
        namespace: String,
        #[arg(long, default_value = "osm")]
        mesh_name: String,
    },
    /// List the namespaces in a mesh (every mesh without --mesh-name).
    List {
        #[arg(long)]
        mesh_name: Option<String>,
    },
    /// Keep namespaces out of every mesh (label openservicemesh.io/ignore).
    Ignore {
        #[arg(required = true)]
        namespaces: Vec<String>,
    },
}

/// `osm metrics`: Prometheus scraping of the sidecars of a namespace.
#[derive(Debug, clap::Subcommand)]
pub enum MetricsCommand {
    /// Annotate namespaces so new pods are scraped.
    Enable {
        #[arg(long = "namespace", short = 'n', required = true, num_args = 1..)]
        namespaces: Vec<String>,
    },
    /// Stop annotating new pods of namespaces for scraping.
    Disable {
        #[arg(long = "namespace", short = 'n', required = true, num_args = 1..)]
        namespaces: Vec<String>,
    },
}

fn code(ok: bool) -> i32 {
    if ok { 0 } else { 1 }
}

impl NamespaceCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let client = client().await?;
        let mut out = std::io::stdout();
        Ok(match self {
            NamespaceCommand::Add {
                namespaces,
                mesh_name,
                osm_namespace,
                disable_sidecar_injection,
            } => code(
                namespace::add(
                    client,
                    &mut out,
                    namespaces,
                    mesh_name,
                    osm_namespace,
                    *disable_sidecar_injection,
                )
                .await?,
            ),
            NamespaceCommand::Remove {
                namespace: ns,
                mesh_name,
            } => code(namespace::remove(client, &mut out, ns, mesh_name).await?),
            NamespaceCommand::List { mesh_name } => {
                namespace::list(client, &mut out, mesh_name.as_deref())
                    .await
                    .map_err(anyhow::Error::msg)?;
                0
            }
            NamespaceCommand::Ignore { namespaces } => {
                code(namespace::ignore(client, &mut out, namespaces).await?)
            }
        })
    }
}

impl MetricsCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let client = client().await?;
        let mut out = std::io::stdout();
        let (namespaces, enable) = match self {
            MetricsCommand::Enable { namespaces } => (namespaces, true),
            MetricsCommand::Disable { namespaces } => (namespaces, false),
        };
        Ok(code(
            metrics::set(client, &mut out, namespaces, enable).await?,
        ))
    }
}

/// `osm policy`: what the mesh's policy allows.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Whether SRC may send traffic to DST (NAMESPACE/POD each), and which
    /// TrafficTarget and routes allow it; exits 1 when it may not.
    CheckPods {
        source: String,
        destination: String,
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        /// Where osm-mesh-config lives.
        #[arg(long, default_value = "osm-system")]
        osm_namespace: String,
    },
}

impl PolicyCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let PolicyCommand::CheckPods {
            source,
            destination,
            mesh_name,
            osm_namespace,
        } = self;
        let client = client().await?;
        let mesh = osm_api::compile::MeshOptions {
            mesh_name: mesh_name.clone(),
            osm_namespace: osm_namespace.clone(),
            ..Default::default()
        };
        let allowed =
            policy::check_pods(client, &mut std::io::stdout(), source, destination, mesh).await?;
        Ok(code(allowed))
    }
}
