//! Pointing the cluster verbs at local mode (`--local`): the flags, the
//! local store standing for the API server, and the compiler's index over
//! it. Each verb's local side is with the verb (the same decisions).

use osm_api::compile::{Index, MeshOptions};
use osm_local::{state::StateDir, store::Store};

/// The flags that point a verb at local mode.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalTarget {
    /// Run against the mesh of `osm local` on this machine instead of a
    /// cluster.
    #[arg(long)]
    pub local: bool,
    /// Local mode's state directory.
    #[arg(long, env = "OSM_LOCAL_STATE_DIR", default_value = osm_local::state::DEFAULT_STATE_DIR)]
    pub state_dir: std::path::PathBuf,
}

impl LocalTarget {
    pub fn store(&self) -> anyhow::Result<Store> {
        let state = StateDir::new(&self.state_dir);
        state.require_instance()?;
        Ok(Store::new(state.api(), state.api_lock()))
    }
}

/// The compiler's index over everything local mode stores.
pub fn index(store: &Store, mesh: MeshOptions) -> anyhow::Result<Index> {
    let stored = store.list()?;
    Ok(osm_local::store::index_of(
        stored.iter().map(|s| &s.value),
        mesh,
    ))
}

/// A local mesh's state directory with the bookstore's namespaces,
/// Services, access policy and two pods (no processes), for the verbs'
/// tests.
#[cfg(test)]
pub(crate) mod fixture {
    use serde_json::json;

    use super::*;
    use osm_local::state::Instance;

    pub(crate) fn local_mesh() -> (tempfile::TempDir, LocalTarget) {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.save_instance(&Instance::default()).unwrap();
        let store = Store::new(state.api(), state.api_lock());
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/manifests");
        for file in [
            "apps/namespaces.yaml",
            "apps/bookstore.yaml",
            "access/traffic-access-v1.yaml",
        ] {
            let text = std::fs::read_to_string(demo.join(file)).unwrap();
            for doc in osm_local::manifests::split_documents(file, &text).unwrap() {
                if doc.value["kind"] != "Deployment" {
                    store.put(&doc.value).unwrap();
                }
            }
        }
        for (ns, name, sa, app) in [
            ("bookbuyer", "buyer-1", "bookbuyer", "bookbuyer"),
            ("bookstore", "store-1", "bookstore", "bookstore"),
        ] {
            store
                .put(&json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns, "labels": {"app": app, "version": "v1"}},
                    "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "x"}]},
                    "status": {"podIP": "10.213.0.9"}}))
                .unwrap();
        }
        store
            .put(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plain"}}))
            .unwrap();
        let target = LocalTarget {
            local: true,
            state_dir: dir.path().to_path_buf(),
        };
        (dir, target)
    }
}
