//! `osm mesh list|upgrade` and `osm uninstall mesh`: the meshes of a
//! cluster, and removing one.

use super::{chart::manifests, client, install};

/// `osm mesh`: the meshes of the cluster.
#[derive(Debug, clap::Subcommand)]
pub enum MeshCommand {
    /// List every mesh installed: name, namespace, version, readiness.
    List,
    /// Re-apply the chart of this osm version to an installed mesh (values
    /// are not carried over: pass the same --set as at install).
    Upgrade {
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        #[arg(long, default_value = "osm-system")]
        osm_namespace: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

impl MeshCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let client = client().await?;
        let mut out = std::io::stdout();
        match self {
            MeshCommand::List => {
                install::list(&client, &mut out)
                    .await
                    .map_err(anyhow::Error::msg)?;
            }
            MeshCommand::Upgrade {
                mesh_name,
                osm_namespace,
                set,
                timeout,
            } => {
                let manifests = manifests(mesh_name, osm_namespace, set)?;
                install::upgrade(
                    &client,
                    &mut out,
                    &manifests,
                    mesh_name,
                    osm_namespace,
                    *timeout,
                    std::time::Duration::from_secs(2),
                )
                .await
                .map_err(anyhow::Error::msg)?;
                println!("mesh [{mesh_name}] upgraded");
            }
        }
        Ok(0)
    }
}

/// `osm uninstall mesh`.
#[derive(Debug, clap::Subcommand)]
pub enum UninstallCommand {
    /// Remove a mesh's control plane. CRDs and the CA's Secrets stay unless
    /// --delete-cluster-wide-resources (their loss drops every SMI object and
    /// every workload identity).
    #[command(visible_aliases = ["delete", "del"])]
    Mesh {
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        #[arg(long, default_value = "osm-system")]
        osm_namespace: String,
        /// Also the CRDs (and every SMI and policy object with them) and the
        /// Secrets osm-ca-bundle and osm-injector-tls.
        #[arg(short = 'a', long)]
        delete_cluster_wide_resources: bool,
        /// Also the control plane's namespace.
        #[arg(long)]
        delete_namespace: bool,
    },
}

impl UninstallCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let UninstallCommand::Mesh {
            mesh_name,
            osm_namespace,
            delete_cluster_wide_resources,
            delete_namespace,
        } = self;
        let client = client().await?;
        let existing = install::installed(&client, mesh_name)
            .await
            .map_err(anyhow::Error::msg)?;
        if !existing.contains(osm_namespace) {
            anyhow::bail!(
                "no mesh [{mesh_name}] in namespace [{osm_namespace}] (see `osm mesh list`)"
            );
        }
        let manifests = manifests(mesh_name, osm_namespace, &[])?;
        install::uninstall(
            &client,
            &mut std::io::stdout(),
            &manifests,
            osm_namespace,
            *delete_cluster_wide_resources,
            *delete_namespace,
        )
        .await
        .map_err(anyhow::Error::msg)?;
        println!("mesh [{mesh_name}] uninstalled from namespace [{osm_namespace}]");
        Ok(0)
    }
}
