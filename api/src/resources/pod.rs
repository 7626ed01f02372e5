//! A pod as the mesh keeps it: the fields the compiler and the controller
//! read, and nothing else.
//!
//! A Kubernetes `Pod` holds its spec and status inline (about 2.3 KB) and
//! every container another 2.1 KB before any of its strings; the mesh reads
//! a pod's metadata, its ServiceAccount, host name, containers' names and
//! ports, address, phase and readiness. At 10,000 pods the full objects were
//! about 65 MB of the controller's memory. A manifest is still checked
//! against the whole Kubernetes schema when it is read; only what the mesh
//! reads is kept ([`MeshPod::from`]).

use k8s_openapi::{
    api::core::v1::{Container, ContainerPort, Pod},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

/// The fields of a pod the mesh reads, whichever type holds them: the
/// compiler's [`MeshPod`] or a Kubernetes `Pod` (the injector, local mode
/// and the CLI read whole pods). Every reading of a pod in
/// [`crate::k8s`] goes through it.
pub trait PodView {
    fn meta(&self) -> &ObjectMeta;
    /// `spec.serviceAccountName` as written.
    fn service_account_name(&self) -> Option<&str>;
    /// `spec.hostname`.
    fn hostname(&self) -> Option<&str>;
    /// The app containers' names and declared ports (`spec.containers`).
    fn containers(&self) -> impl Iterator<Item = (&str, &[ContainerPort])>;
    /// The init containers' names (`spec.initContainers`; native sidecars
    /// are among them).
    fn init_container_names(&self) -> impl Iterator<Item = &str>;
    /// `status.podIP` as written.
    fn pod_ip(&self) -> Option<&str>;
    /// `status.phase`.
    fn phase(&self) -> Option<&str>;
    /// The status of the `Ready` condition, when the pod reports one.
    fn ready(&self) -> Option<&str>;
}

/// A pod reduced to what [`PodView`] reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeshPod {
    pub metadata: ObjectMeta,
    pub service_account_name: Option<String>,
    pub hostname: Option<String>,
    pub containers: Vec<MeshContainer>,
    pub init_container_names: Vec<String>,
    pub pod_ip: Option<String>,
    pub phase: Option<String>,
    pub ready: Option<String>,
}

/// An app container's name and declared ports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeshContainer {
    pub name: String,
    pub ports: Vec<ContainerPort>,
}

impl From<Pod> for MeshPod {
    fn from(pod: Pod) -> Self {
        let Pod {
            metadata,
            spec,
            status,
        } = pod;
        let spec = spec.unwrap_or_default();
        let status = status.unwrap_or_default();
        let ready = status
            .conditions
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status);
        Self {
            metadata,
            service_account_name: spec.service_account_name,
            hostname: spec.hostname,
            containers: spec
                .containers
                .into_iter()
                .map(|Container { name, ports, .. }| MeshContainer {
                    name,
                    ports: ports.unwrap_or_default(),
                })
                .collect(),
            init_container_names: spec
                .init_containers
                .into_iter()
                .flatten()
                .map(|c| c.name)
                .collect(),
            pod_ip: status.pod_ip,
            phase: status.phase,
            ready,
        }
    }
}

impl PodView for MeshPod {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn service_account_name(&self) -> Option<&str> {
        self.service_account_name.as_deref()
    }
    fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }
    fn containers(&self) -> impl Iterator<Item = (&str, &[ContainerPort])> {
        self.containers
            .iter()
            .map(|c| (c.name.as_str(), c.ports.as_slice()))
    }
    fn init_container_names(&self) -> impl Iterator<Item = &str> {
        self.init_container_names.iter().map(String::as_str)
    }
    fn pod_ip(&self) -> Option<&str> {
        self.pod_ip.as_deref()
    }
    fn phase(&self) -> Option<&str> {
        self.phase.as_deref()
    }
    fn ready(&self) -> Option<&str> {
        self.ready.as_deref()
    }
}

impl PodView for Pod {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn service_account_name(&self) -> Option<&str> {
        self.spec.as_ref()?.service_account_name.as_deref()
    }
    fn hostname(&self) -> Option<&str> {
        self.spec.as_ref()?.hostname.as_deref()
    }
    fn containers(&self) -> impl Iterator<Item = (&str, &[ContainerPort])> {
        self.spec
            .iter()
            .flat_map(|s| &s.containers)
            .map(|c| (c.name.as_str(), c.ports.as_deref().unwrap_or_default()))
    }
    fn init_container_names(&self) -> impl Iterator<Item = &str> {
        self.spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .map(|c| c.name.as_str())
    }
    fn pod_ip(&self) -> Option<&str> {
        self.status.as_ref()?.pod_ip.as_deref()
    }
    fn phase(&self) -> Option<&str> {
        self.status.as_ref()?.phase.as_deref()
    }
    fn ready(&self) -> Option<&str> {
        let conditions = self.status.as_ref()?.conditions.as_ref()?;
        let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
        Some(ready.status.as_str())
    }
}

/// A pod behind a reference or an `Arc` reads as the pod.
macro_rules! pod_view_through {
    ($($wrapper:ty),*) => {$(
        impl<T: PodView + ?Sized> PodView for $wrapper {
            fn meta(&self) -> &ObjectMeta {
                (**self).meta()
            }
            fn service_account_name(&self) -> Option<&str> {
                (**self).service_account_name()
            }
            fn hostname(&self) -> Option<&str> {
                (**self).hostname()
            }
            fn containers(&self) -> impl Iterator<Item = (&str, &[ContainerPort])> {
                (**self).containers()
            }
            fn init_container_names(&self) -> impl Iterator<Item = &str> {
                (**self).init_container_names()
            }
            fn pod_ip(&self) -> Option<&str> {
                (**self).pod_ip()
            }
            fn phase(&self) -> Option<&str> {
                (**self).phase()
            }
            fn ready(&self) -> Option<&str> {
                (**self).ready()
            }
        }
    )*};
}
pod_view_through!(&T, std::sync::Arc<T>);

#[cfg(test)]
mod tests {
    use super::*;

    /// Both types read the same pod alike: what the reduction keeps is
    /// what the whole pod says.
    #[test]
    fn a_reduced_pod_reads_as_the_whole_one() {
        let pods: Vec<Pod> = [
            serde_json::json!({
                "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"},
                             "annotations": {"a": "b"}},
                "spec": {
                    "serviceAccountName": "web", "hostname": "web-1",
                    "containers": [
                        {"name": "app", "image": "x", "env": [{"name": "A", "value": "1"}],
                         "ports": [{"name": "http", "containerPort": 8080}]},
                        {"name": "side", "image": "y"}
                    ],
                    "initContainers": [{"name": "osm-proxy", "image": "p", "restartPolicy": "Always"}]
                },
                "status": {"podIP": "10.0.0.7", "phase": "Running",
                           "conditions": [{"type": "PodScheduled", "status": "True"},
                                          {"type": "Ready", "status": "False"}]}
            }),
            serde_json::json!({"metadata": {"name": "bare"}}),
            serde_json::json!({"metadata": {"name": "empty"}, "spec": {"containers": []}, "status": {}}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
        for pod in pods {
            let reduced = MeshPod::from(pod.clone());
            let name = pod.metadata.name.clone();
            assert_eq!(reduced.meta(), pod.meta(), "{name:?}");
            assert_eq!(
                reduced.service_account_name(),
                pod.service_account_name(),
                "{name:?}"
            );
            assert_eq!(reduced.hostname(), pod.hostname(), "{name:?}");
            assert_eq!(
                reduced.containers().collect::<Vec<_>>(),
                pod.containers().collect::<Vec<_>>(),
                "{name:?}"
            );
            assert_eq!(
                reduced.init_container_names().collect::<Vec<_>>(),
                pod.init_container_names().collect::<Vec<_>>(),
                "{name:?}"
            );
            assert_eq!(reduced.pod_ip(), pod.pod_ip(), "{name:?}");
            assert_eq!(reduced.phase(), pod.phase(), "{name:?}");
            assert_eq!(reduced.ready(), pod.ready(), "{name:?}");
        }
    }

    #[test]
    fn the_first_pod_reads_what_it_says() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80}]}],
                     "initContainers": [{"name": "osm-proxy"}]},
            "status": {"podIP": "10.0.0.7", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let reduced = MeshPod::from(pod);
        assert_eq!(reduced.containers[0].name, "app");
        assert_eq!(reduced.containers[0].ports[0].container_port, 80);
        assert_eq!(reduced.init_container_names, ["osm-proxy"]);
        assert_eq!(reduced.pod_ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(reduced.ready.as_deref(), Some("True"));
    }
}
