//! Where the injector reads a pod's Namespace and the MeshConfig: the
//! Kubernetes API, or (local mode) the directory of manifests that stands
//! for the cluster.

use std::{future::Future, path::PathBuf, pin::Pin, sync::Arc};

use k8s_openapi::api::core::v1::Namespace;
use osm_api::{
    load::load_str,
    resources::{Object, mesh_config::MeshConfigSpec},
};

pub type Lookup<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// The cluster state the injector needs.
pub trait ClusterView: Send + Sync {
    fn namespace<'a>(&'a self, name: &'a str) -> Lookup<'a, Namespace>;
    /// The mesh's `osm-mesh-config`, or the defaults when there is none.
    fn mesh_config(&self) -> Lookup<'_, MeshConfigSpec>;
}

/// Local mode: the manifests directory, read at each request.
#[derive(Debug, Clone)]
pub struct Files {
    pub dir: PathBuf,
    pub osm_namespace: String,
}

impl Files {
    fn objects(&self) -> Result<Vec<Object>, String> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
                {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    out.extend(
                        load_str(&path.display().to_string(), &text)
                            .objects
                            .into_iter()
                            .map(|l| l.object),
                    );
                }
            }
        }
        Ok(out)
    }
}

impl ClusterView for Files {
    fn namespace<'a>(&'a self, name: &'a str) -> Lookup<'a, Namespace> {
        Box::pin(async move {
            self.objects()?
                .into_iter()
                .find_map(|o| match o {
                    Object::Namespace(n) if n.metadata.name.as_deref() == Some(name) => {
                        Some(Arc::unwrap_or_clone(n))
                    }
                    _ => None,
                })
                .ok_or_else(|| format!("namespace {name} does not exist"))
        })
    }

    fn mesh_config(&self) -> Lookup<'_, MeshConfigSpec> {
        Box::pin(async move {
            Ok(self
                .objects()?
                .into_iter()
                .find_map(|o| match o {
                    Object::MeshConfig(m)
                        if m.metadata.namespace.as_deref() == Some(self.osm_namespace.as_str())
                            && m.metadata.name.as_deref()
                                == Some(osm_api::compat::MESH_CONFIG_NAME) =>
                    {
                        Some(m.spec)
                    }
                    _ => None,
                })
                .unwrap_or_default())
        })
    }
}

/// On Kubernetes: GETs through the API server.
#[derive(Clone)]
pub struct Kubernetes {
    pub client: kube::Client,
    pub osm_namespace: String,
}

impl ClusterView for Kubernetes {
    fn namespace<'a>(&'a self, name: &'a str) -> Lookup<'a, Namespace> {
        Box::pin(async move {
            kube::Api::<Namespace>::all(self.client.clone())
                .get(name)
                .await
                .map_err(|e| format!("namespace {name}: {e}"))
        })
    }

    fn mesh_config(&self) -> Lookup<'_, MeshConfigSpec> {
        Box::pin(async move {
            use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("config.openservicemesh.io", "v1alpha2", "MeshConfig"),
                "meshconfigs",
            );
            let api: kube::Api<DynamicObject> =
                kube::Api::namespaced_with(self.client.clone(), &self.osm_namespace, &resource);
            match api.get_opt(osm_api::compat::MESH_CONFIG_NAME).await {
                Ok(Some(o)) => serde_json::from_value(o.data["spec"].clone())
                    .map_err(|e| format!("{}: {e}", osm_api::compat::MESH_CONFIG_NAME)),
                Ok(None) => Ok(MeshConfigSpec::default()),
                Err(e) => Err(format!("{}: {e}", osm_api::compat::MESH_CONFIG_NAME)),
            }
        })
    }
}
