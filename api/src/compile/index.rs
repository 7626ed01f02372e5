//! Cluster state as the compiler sees it: the last applied version of every
//! object, by kind and namespace/name. Pure data; no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    core::v1::{Namespace, Pod, Service, ServiceAccount},
    discovery::v1::EndpointSlice,
};

use crate::resources::{Custom, Object, ObjectKey, smi};

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
}

impl Default for MeshOptions {
    fn default() -> Self {
        Self {
            mesh_name: "osm".into(),
            permissive: false,
            egress: false,
            trust_domain: "cluster.local".into(),
        }
    }
}

/// Everything the compiler reads.
#[derive(Debug, Clone, Default)]
pub struct Index {
    pub mesh: MeshOptions,
    pub namespaces: BTreeMap<String, Namespace>,
    pub service_accounts: BTreeMap<NsName, ServiceAccount>,
    pub pods: BTreeMap<NsName, Pod>,
    pub services: BTreeMap<NsName, Service>,
    pub endpoint_slices: BTreeMap<NsName, EndpointSlice>,
    pub traffic_targets: BTreeMap<NsName, Custom<smi::TrafficTarget>>,
    pub http_route_groups: BTreeMap<NsName, Custom<smi::HttpRouteGroup>>,
    pub tcp_routes: BTreeMap<NsName, Custom<smi::PortRoute>>,
    pub udp_routes: BTreeMap<NsName, Custom<smi::PortRoute>>,
    pub traffic_splits: BTreeMap<NsName, Custom<smi::TrafficSplit>>,
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
                    .insert(o.metadata.name.clone().unwrap_or_default(), *o);
            }
            Object::ServiceAccount(o) => {
                self.service_accounts.insert(ns_name(&o.metadata), *o);
            }
            Object::Pod(o) => {
                self.pods.insert(ns_name(&o.metadata), *o);
            }
            Object::Service(o) => {
                self.services.insert(ns_name(&o.metadata), *o);
            }
            Object::EndpointSlice(o) => {
                self.endpoint_slices.insert(ns_name(&o.metadata), *o);
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
            Object::Deployment(_) | Object::ConfigMap(_) => {}
        }
        problems
    }

    /// Removes an object; true when it was there.
    pub fn delete(&mut self, key: &ObjectKey) -> bool {
        let k = (key.namespace.clone(), key.name.clone());
        match key.kind {
            "Namespace" => self.namespaces.remove(&key.name).is_some(),
            "ServiceAccount" => self.service_accounts.remove(&k).is_some(),
            "Pod" => self.pods.remove(&k).is_some(),
            "Service" => self.services.remove(&k).is_some(),
            "EndpointSlice" => self.endpoint_slices.remove(&k).is_some(),
            "TrafficTarget" => self.traffic_targets.remove(&k).is_some(),
            "HTTPRouteGroup" => self.http_route_groups.remove(&k).is_some(),
            "TCPRoute" => self.tcp_routes.remove(&k).is_some(),
            "UDPRoute" => self.udp_routes.remove(&k).is_some(),
            "TrafficSplit" => self.traffic_splits.remove(&k).is_some(),
            _ => false,
        }
    }

    /// Whether a namespace belongs to this mesh.
    pub fn is_monitored(&self, namespace: &str) -> bool {
        self.namespaces.get(namespace).is_some_and(|ns| {
            let labels = ns.metadata.labels.as_ref();
            labels
                .and_then(|l| l.get(super::MONITORED_BY))
                .is_some_and(|m| *m == self.mesh.mesh_name)
                && !labels.is_some_and(|l| l.contains_key(super::IGNORE))
        })
    }
}
