//! Cluster state as the compiler sees it: the last applied version of every
//! object, by kind and namespace/name. Pure data; no I/O.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::api::{
    core::v1::{Namespace, Service, ServiceAccount},
    discovery::v1::EndpointSlice,
};

use crate::resources::{
    Custom, MeshPod, Object, ObjectKey, gateway, mesh_config::MeshConfigSpec, policy, smi,
};

/// Namespace and name.
pub type NsName = (String, String);

/// Mesh-wide settings the compiler needs (from MeshConfig and install values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshOptions {
    /// Namespaces labelled `openservicemesh.io/monitored-by=<mesh_name>` are meshed.
    pub mesh_name: String,
    pub permissive: bool,
    pub egress: bool,
    pub trust_domain: String,
    /// The control plane's namespace, where `osm-mesh-config` lives.
    pub osm_namespace: String,
}

impl Default for MeshOptions {
    /// Without a MeshConfig: SMI mode (default deny) and no egress.
    fn default() -> Self {
        Self {
            osm_namespace: crate::compat::DEFAULT_OSM_NAMESPACE.into(),
            mesh_name: crate::compat::DEFAULT_MESH_NAME.into(),
            permissive: false,
            egress: false,
            trust_domain: "cluster.local".into(),
        }
    }
}

/// Everything the compiler reads. Kubernetes objects are shared with
/// whoever applied them (a source's parsed file), not copied.
#[derive(Debug, Clone, Default)]
pub struct Index {
    pub mesh: MeshOptions,
    pub namespaces: BTreeMap<String, Arc<Namespace>>,
    pub service_accounts: BTreeMap<NsName, Arc<ServiceAccount>>,
    pub pods: BTreeMap<NsName, Arc<MeshPod>>,
    pub services: BTreeMap<NsName, Arc<Service>>,
    pub endpoint_slices: BTreeMap<NsName, Arc<EndpointSlice>>,
    pub traffic_targets: BTreeMap<NsName, Custom<smi::TrafficTarget>>,
    pub http_route_groups: BTreeMap<NsName, Custom<smi::HttpRouteGroup>>,
    pub tcp_routes: BTreeMap<NsName, Custom<smi::PortRoute>>,
    pub udp_routes: BTreeMap<NsName, Custom<smi::PortRoute>>,
    pub traffic_splits: BTreeMap<NsName, Custom<smi::TrafficSplit>>,
    /// (namespace, ServiceAccount) -> names of the pods running as it.
    pub pods_by_service_account: BTreeMap<NsName, std::collections::BTreeSet<String>>,
    /// (namespace, label key, label value) -> names of the pods carrying
    /// it, so a selector looks at its candidates only, not every pod.
    pub pods_by_label: BTreeMap<(String, String, String), std::collections::BTreeSet<String>>,
    /// The mesh's `osm-mesh-config`, once applied.
    pub mesh_config: Option<Custom<MeshConfigSpec>>,
    pub egresses: BTreeMap<NsName, Custom<policy::EgressSpec>>,
    pub ingress_backends: BTreeMap<NsName, Custom<policy::IngressBackendSpec>>,
    pub retries: BTreeMap<NsName, Custom<policy::RetrySpec>>,
    pub upstream_traffic_settings: BTreeMap<NsName, Custom<policy::UpstreamTrafficSettingSpec>>,
    pub http_routes: BTreeMap<NsName, Custom<gateway::HttpRouteSpec>>,
    pub grpc_routes: BTreeMap<NsName, Custom<gateway::GrpcRouteSpec>>,
}

fn ns_name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> NsName {
    (
        meta.namespace.clone().unwrap_or_else(|| "default".into()),
        meta.name.clone().unwrap_or_default(),
    )
}

impl Index {
    pub fn new(mesh: MeshOptions) -> Self {
        Self {
            mesh,
            ..Self::default()
        }
    }

    /// Adds or replaces an object and returns its validation problems. An
    /// object that validation rejects is not stored (a previous valid
    /// version stays, as if the webhook had denied the update). Kinds the
    /// compiler does not read (Deployment, ConfigMap) are ignored.
    pub fn apply(&mut self, object: Object) -> Vec<crate::validate::Problem> {
        let problems = crate::validate::validate(&object);
        if crate::validate::rejects(&problems) {
            return problems;
        }
        match object {
            Object::Namespace(o) => {
                self.namespaces
                    .insert(o.metadata.name.clone().unwrap_or_default(), o);
            }
            Object::ServiceAccount(o) => {
                self.service_accounts.insert(ns_name(&o.metadata), o);
            }
            Object::Pod(o) => {
                let key = ns_name(&o.metadata);
                self.unlink_pod(&key);
                let sa = crate::k8s::service_account(&o).to_string();
                self.pods_by_service_account
                    .entry((key.0.clone(), sa))
                    .or_default()
                    .insert(key.1.clone());
                for (k, v) in o.metadata.labels.iter().flatten() {
                    self.pods_by_label
                        .entry((key.0.clone(), k.clone(), v.clone()))
                        .or_default()
                        .insert(key.1.clone());
                }
                self.pods.insert(key, o);
            }
            Object::Service(o) => {
                self.services.insert(ns_name(&o.metadata), o);
            }
            Object::EndpointSlice(o) => {
                self.endpoint_slices.insert(ns_name(&o.metadata), o);
            }
            Object::TrafficTarget(o) => {
                self.traffic_targets.insert(ns_name(&o.metadata), o);
            }
            Object::HttpRouteGroup(o) => {
                self.http_route_groups.insert(ns_name(&o.metadata), o);
            }
            Object::TcpRoute(o) => {
                self.tcp_routes.insert(ns_name(&o.metadata), o);
            }
            Object::UdpRoute(o) => {
                self.udp_routes.insert(ns_name(&o.metadata), o);
            }
            Object::TrafficSplit(o) => {
                self.traffic_splits.insert(ns_name(&o.metadata), o);
            }
            Object::MeshConfig(o) => {
                let (ns, name) = ns_name(&o.metadata);
                if ns == self.mesh.osm_namespace && name == crate::compat::MESH_CONFIG_NAME {
                    self.mesh.permissive = o.spec.traffic.enable_permissive_traffic_policy_mode;
                    self.mesh.egress = o.spec.traffic.enable_egress;
                    self.mesh_config = Some(*o);
                }
            }
            Object::Egress(o) => {
                self.egresses.insert(ns_name(&o.metadata), o);
            }
            Object::IngressBackend(o) => {
                self.ingress_backends.insert(ns_name(&o.metadata), o);
            }
            Object::Retry(o) => {
                self.retries.insert(ns_name(&o.metadata), o);
            }
            Object::UpstreamTrafficSetting(o) => {
                self.upstream_traffic_settings
                    .insert(ns_name(&o.metadata), o);
            }
            Object::HttpRoute(o) => {
                self.http_routes.insert(ns_name(&o.metadata), o);
            }
            Object::GrpcRoute(o) => {
                self.grpc_routes.insert(ns_name(&o.metadata), o);
            }
            Object::Deployment(_)
            | Object::StatefulSet(_)
            | Object::Job(_)
            | Object::ConfigMap(_)
            | Object::Secret(_) => {}
        }
        problems
    }

    /// Removes an object; true when it was there.
    pub fn delete(&mut self, key: &ObjectKey) -> bool {
        let k = (key.namespace.clone(), key.name.clone());
        match key.kind {
            "Namespace" => self.namespaces.remove(&key.name).is_some(),
            "ServiceAccount" => self.service_accounts.remove(&k).is_some(),
            "Pod" => {
                self.unlink_pod(&k);
                self.pods.remove(&k).is_some()
            }
            "Service" => self.services.remove(&k).is_some(),
            "EndpointSlice" => self.endpoint_slices.remove(&k).is_some(),
            "TrafficTarget" => self.traffic_targets.remove(&k).is_some(),
            "HTTPRouteGroup" => self.http_route_groups.remove(&k).is_some(),
            "TCPRoute" => self.tcp_routes.remove(&k).is_some(),
            "UDPRoute" => self.udp_routes.remove(&k).is_some(),
            "TrafficSplit" => self.traffic_splits.remove(&k).is_some(),
            // The mesh keeps its last settings: OSM cannot run without one.
            "MeshConfig" => {
                let ours = self.mesh_config.as_ref().is_some_and(|m| {
                    m.metadata.namespace.as_deref() == Some(key.namespace.as_str())
                        && m.metadata.name.as_deref() == Some(key.name.as_str())
                });
                ours && self.mesh_config.take().is_some()
            }
            "Egress" => self.egresses.remove(&k).is_some(),
            "IngressBackend" => self.ingress_backends.remove(&k).is_some(),
            "Retry" => self.retries.remove(&k).is_some(),
            "UpstreamTrafficSetting" => self.upstream_traffic_settings.remove(&k).is_some(),
            "HTTPRoute" => self.http_routes.remove(&k).is_some(),
            "GRPCRoute" => self.grpc_routes.remove(&k).is_some(),
            _ => false,
        }
    }

    /// Drops a pod from the secondary indexes.
    fn unlink_pod(&mut self, key: &NsName) {
        let Some(old) = self.pods.get(key) else {
            return;
        };
        let sa_key = (key.0.clone(), crate::k8s::service_account(old).to_string());
        if let Some(pods) = self.pods_by_service_account.get_mut(&sa_key) {
            pods.remove(&key.1);
            if pods.is_empty() {
                self.pods_by_service_account.remove(&sa_key);
            }
        }
        let labels: Vec<(String, String)> = old
            .metadata
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in labels {
            let label_key = (key.0.clone(), k, v);
            if let Some(pods) = self.pods_by_label.get_mut(&label_key) {
                pods.remove(&key.1);
                if pods.is_empty() {
                    self.pods_by_label.remove(&label_key);
                }
            }
        }
    }

    /// The pods a Service's selector picks, found through one of its
    /// labels rather than by looking at every pod of the namespace.
    pub fn selected_pods(&self, service: &Service) -> Vec<(&NsName, &MeshPod)> {
        let ns = service.metadata.namespace.clone().unwrap_or_default();
        let Some((k, v)) = service
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.iter().next())
        else {
            return Vec::new();
        };
        let Some(names) = self.pods_by_label.get(&(ns.clone(), k.clone(), v.clone())) else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|name| self.pods.get_key_value(&(ns.clone(), name.clone())))
            .map(|(key, pod)| (key, &**pod))
            .filter(|(_, pod)| crate::k8s::selects(service, pod))
            .collect()
    }

    /// Whether a namespace belongs to this mesh.
    pub fn is_monitored(&self, namespace: &str) -> bool {
        self.namespaces.get(namespace).is_some_and(|ns| {
            let labels = ns.metadata.labels.as_ref();
            labels
                .and_then(|l| l.get(crate::compat::MONITORED_BY))
                .is_some_and(|m| *m == self.mesh.mesh_name)
                && !labels.is_some_and(|l| l.contains_key(crate::compat::IGNORE))
        })
    }
}
