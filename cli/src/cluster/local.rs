//! The cluster verbs against local mode (`--local`): the same decisions,
//! with the local store standing for the API server and the pods' network
//! namespaces for port-forwards.

use std::io::Write;

use k8s_openapi::api::core::v1::Namespace;
use osm_api::compile::{Index, MeshOptions};

use super::{namespace, policy};
use osm_local::{
    netns_http,
    state::StateDir,
    store::{Key, Store},
};

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
    let mut index = Index::new(mesh);
    for stored in store.list()? {
        if let Ok(object) = osm_api::load::parse_object(stored.value) {
            let _ = index.apply(object);
        }
    }
    Ok(index)
}

/// `osm policy check-pods --local`.
pub fn check_pods(
    target: &LocalTarget,
    out: &mut impl Write,
    src: &str,
    dst: &str,
    mesh: MeshOptions,
) -> anyhow::Result<bool> {
    let src = policy::parse_pod_ref(src, "default").map_err(anyhow::Error::msg)?;
    let dst = policy::parse_pod_ref(dst, "default").map_err(anyhow::Error::msg)?;
    let index = index(&target.store()?, mesh)?;
    let verdict = policy::check(&index, &src, &dst).map_err(anyhow::Error::msg)?;
    for line in &verdict.lines {
        writeln!(out, "{line}")?;
    }
    Ok(verdict.allowed)
}

/// `osm proxy get --local`: (status, body) from the pod's loopback.
pub fn proxy_get(
    target: &LocalTarget,
    namespace: &str,
    pod: &str,
    query: &str,
) -> anyhow::Result<(u16, String)> {
    let state = StateDir::new(&target.state_dir);
    let instance = state.require_instance()?;
    let store = Store::new(state.api(), state.api_lock());
    let value = store
        .get(&Key::new("Pod", namespace, pod))?
        .ok_or_else(|| anyhow::anyhow!("pod {namespace}/{pod} not found"))?;
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(value)?;
    if !super::proxy::has_sidecar(&typed) {
        anyhow::bail!(
            "pod {namespace}/{pod} has no osm-proxy sidecar: is its namespace in the mesh?"
        );
    }
    let (port, path) = super::proxy::route(query);
    netns_http::get(
        &instance.netns(namespace, pod),
        port,
        &path,
        std::time::Duration::from_secs(5),
    )
}

/// What a namespace verb does to one stored namespace.
pub enum NamespaceChange<'a> {
    Add {
        mesh: &'a str,
        disable_injection: bool,
    },
    Remove {
        mesh: &'a str,
    },
    Ignore,
}

/// `osm namespace add|remove|ignore --local` on one namespace: the line to
/// print, or the refusal.
pub fn change_namespace(
    target: &LocalTarget,
    name: &str,
    change: &NamespaceChange<'_>,
) -> anyhow::Result<Result<String, String>> {
    let store = target.store()?;
    let _lock = store.lock()?;
    let key = Key::new("Namespace", "", name);
    let Some(mut value) = store.get(&key)? else {
        return Ok(Err(format!(
            "Namespace [{name}] does not exist: create it first (osm local apply -f)"
        )));
    };
    let typed: Namespace = serde_json::from_value(value.clone())?;
    let decided = match change {
        NamespaceChange::Add {
            mesh,
            disable_injection,
        } => namespace::decide_add(
            &typed,
            mesh,
            osm_local::state::OSM_NAMESPACE,
            *disable_injection,
        )
        .map(|p| {
            (
                p,
                format!("Namespace [{name}] successfully added to mesh [{mesh}]"),
            )
        }),
        NamespaceChange::Remove { mesh } => namespace::decide_remove(&typed, mesh).map(|p| {
            (
                p,
                format!("Namespace [{name}] successfully removed from mesh [{mesh}]"),
            )
        }),
        NamespaceChange::Ignore => Ok((
            serde_json::json!({"metadata": {"labels": {namespace::IGNORE: "true"}}}),
            format!("Namespace [{name}] is now ignored by every mesh"),
        )),
    };
    Ok(match decided {
        Ok((patch, line)) => {
            json_patch::merge(&mut value, &patch);
            store.put(&value)?;
            Ok(line)
        }
        Err(e) => Err(e),
    })
}

/// `osm namespace list --local`.
pub fn list_namespaces(
    target: &LocalTarget,
    out: &mut dyn Write,
    mesh: Option<&str>,
) -> anyhow::Result<()> {
    let namespaces: Vec<Namespace> = target
        .store()?
        .list()?
        .into_iter()
        .filter(|s| s.key.kind == "Namespace")
        .filter_map(|s| serde_json::from_value(s.value).ok())
        .collect();
    namespace::write_list(out, &namespaces, mesh)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use osm_local::state::Instance;

    fn local_mesh() -> (tempfile::TempDir, LocalTarget) {
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

    #[test]
    fn check_pods_answers_from_the_local_store() {
        let (_dir, target) = local_mesh();
        let mut out = Vec::new();
        assert!(
            check_pods(
                &target,
                &mut out,
                "bookbuyer/buyer-1",
                "bookstore/store-1",
                MeshOptions::default()
            )
            .unwrap()
        );
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("TrafficTarget bookstore/bookstore")
        );
    }

    #[test]
    fn namespace_verbs_change_the_stored_namespace() {
        let (_dir, target) = local_mesh();
        let add = NamespaceChange::Add {
            mesh: "osm",
            disable_injection: true,
        };
        assert_eq!(
            change_namespace(&target, "plain", &add).unwrap().unwrap(),
            "Namespace [plain] successfully added to mesh [osm]"
        );
        let stored = target
            .store()
            .unwrap()
            .get(&Key::new("Namespace", "", "plain"))
            .unwrap()
            .unwrap();
        assert_eq!(stored["metadata"]["labels"][namespace::MONITORED_BY], "osm");
        assert_eq!(
            stored["metadata"]["annotations"][namespace::INJECTION],
            "disabled"
        );
        let mut out = Vec::new();
        list_namespaces(&target, &mut out, Some("osm")).unwrap();
        let table = String::from_utf8(out).unwrap();
        assert!(
            table.contains("\nplain           osm    disabled\n"),
            "{table}"
        );
        change_namespace(&target, "plain", &NamespaceChange::Remove { mesh: "osm" })
            .unwrap()
            .unwrap();
        change_namespace(&target, "plain", &NamespaceChange::Ignore)
            .unwrap()
            .unwrap();
        let refused = change_namespace(&target, "plain", &add)
            .unwrap()
            .unwrap_err();
        assert!(refused.contains("is ignored by the mesh"), "{refused}");
        let missing = change_namespace(&target, "nope", &add)
            .unwrap()
            .unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
    }
}
