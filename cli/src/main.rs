//! The osm binary.

use clap::{Parser, Subcommand};

/// The osm command line: the mesh on a cluster (`osm install`) and on this
/// machine (`osm local`).
#[derive(Debug, Parser)]
#[command(name = "osm", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Install(osm_cli::cluster::Install),
    /// Remove a mesh's control plane.
    #[command(subcommand)]
    Uninstall(osm_cli::cluster::UninstallCommand),
    /// The meshes of the cluster.
    #[command(subcommand)]
    Mesh(osm_cli::cluster::MeshCommand),
    /// Which namespaces are in a mesh.
    #[command(subcommand, visible_alias = "ns")]
    Namespace(osm_cli::cluster::NamespaceCommand),
    /// What the mesh's policy allows.
    #[command(subcommand)]
    Policy(osm_cli::cluster::PolicyCommand),
    /// A sidecar's admin endpoints.
    #[command(subcommand)]
    Proxy(osm_cli::cluster::ProxyCommand),
    /// Checks of a running mesh.
    #[command(subcommand)]
    Verify(osm_cli::cluster::VerifyCommand),
    /// Prometheus scraping of a namespace's sidecars.
    #[command(subcommand)]
    Metrics(osm_cli::cluster::MetricsCommand),
    /// The mesh's certificate authority: its roots, the certificates
    /// issued from each and who issues (`status`); a root rotation without
    /// a dropped request (`rotate`).
    #[command(subcommand)]
    Ca(osm_cli::cluster::CaCommand),
    Local(osm_cli::local::Local),
    /// Versions of the CLI and of the installed meshes.
    Version(osm_cli::cluster::Version),
    /// Help for maintainers.
    #[command(subcommand)]
    Support(osm_cli::cluster::SupportCommand),
    /// Grafana on localhost, through the API server's port-forward.
    Dashboard(osm_cli::cluster::Dashboard),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Install(install) => install.run().await,
        Command::Uninstall(command) => command.run().await,
        Command::Mesh(command) => command.run().await,
        Command::Namespace(command) => command.run().await,
        Command::Metrics(command) => command.run().await,
        Command::Policy(command) => command.run().await,
        Command::Proxy(command) => command.run().await,
        Command::Verify(command) => command.run().await,
        Command::Local(local) => osm_cli::local::run(local).await,
        Command::Version(command) => command.run().await,
        Command::Support(command) => command.run().await,
        Command::Dashboard(command) => command.run().await,
        Command::Ca(command) => command.run().await,
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
