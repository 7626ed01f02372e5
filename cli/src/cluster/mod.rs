//! The mesh on a Kubernetes cluster: `osm install` (so far `--dry-run`,
//! which prints the manifests the chart renders to).

pub mod chart;
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
