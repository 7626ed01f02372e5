//! The mesh on a Kubernetes cluster: each verb's arguments with its code
//! (`install`, `mesh`, `uninstall`, `namespace`, `metrics`, `policy`,
//! `proxy`, `verify`, `support`, `dashboard`, `version`); `local` points
//! the verbs that have one at local mode instead.

pub mod ca;
pub mod chart;
pub mod dashboard;
pub mod install;
pub mod kinds;
pub mod local;
pub mod mesh;
pub mod metrics;
pub mod namespace;
pub mod policy;
pub mod proxy;
pub mod support;
pub mod values;
pub mod verify;
pub mod version;

pub use ca::CaCommand;
pub use dashboard::Dashboard;
pub use install::Install;
pub use mesh::{MeshCommand, UninstallCommand};
pub use metrics::MetricsCommand;
pub use namespace::NamespaceCommand;
pub use policy::PolicyCommand;
pub use proxy::ProxyCommand;
pub use support::SupportCommand;
pub use verify::VerifyCommand;
pub use version::Version;

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

/// The exit code of a check.
pub(crate) fn code(ok: bool) -> i32 {
    if ok { 0 } else { 1 }
}
