//! The objects the mesh reads: Kubernetes core objects (k8s-openapi types)
//! and the mesh's custom resources, each converted to one internal form
//! whatever API version it was written in.

pub mod gateway;
pub mod mesh_config;
pub mod pod;
pub mod policy;
pub mod quantity;
pub mod smi;

pub use pod::{MeshPod, PodView};

use std::sync::Arc;

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        apps::v1::StatefulSet,
        batch::v1::Job,
        core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount},
        discovery::v1::EndpointSlice,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

/// A custom resource in its internal form, with the version it was read as.
#[derive(Debug, Clone, PartialEq)]
pub struct Custom<T> {
    pub api_version: String,
    pub metadata: ObjectMeta,
    pub spec: T,
}

/// Every kind the loader understands. Kubernetes objects are shared
/// (`Arc`): the source that read one, the compiler's index and every
/// object compared against it hold one copy (at 10,000 pods each copy of
/// the pods was about 85 MB in the controller).
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(Arc<Namespace>),
    ServiceAccount(Arc<ServiceAccount>),
    /// Reduced to what the mesh reads when read ([`pod::MeshPod`]).
    Pod(Arc<pod::MeshPod>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Deployment(Arc<Deployment>),
    StatefulSet(Arc<StatefulSet>),
    Job(Arc<Job>),
    ConfigMap(Arc<ConfigMap>),
    Secret(Arc<Secret>),
    TrafficTarget(Custom<smi::TrafficTarget>),
    HttpRouteGroup(Custom<smi::HttpRouteGroup>),
    TcpRoute(Custom<smi::PortRoute>),
    UdpRoute(Custom<smi::PortRoute>),
    TrafficSplit(Custom<smi::TrafficSplit>),
    MeshConfig(Box<Custom<mesh_config::MeshConfigSpec>>),
    Egress(Custom<policy::EgressSpec>),
    IngressBackend(Custom<policy::IngressBackendSpec>),
    Retry(Custom<policy::RetrySpec>),
    UpstreamTrafficSetting(Custom<policy::UpstreamTrafficSettingSpec>),
    HttpRoute(Custom<gateway::HttpRouteSpec>),
    GrpcRoute(Custom<gateway::GrpcRouteSpec>),
}

/// Kind, namespace and name: what identifies an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: &'static str,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::Pod(_) => "Pod",
            Object::Service(_) => "Service",
            Object::EndpointSlice(_) => "EndpointSlice",
            Object::Deployment(_) => "Deployment",
            Object::StatefulSet(_) => "StatefulSet",
            Object::Job(_) => "Job",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::TrafficTarget(_) => "TrafficTarget",
            Object::HttpRouteGroup(_) => "HTTPRouteGroup",
            Object::TcpRoute(_) => "TCPRoute",
            Object::UdpRoute(_) => "UDPRoute",
            Object::TrafficSplit(_) => "TrafficSplit",
            Object::MeshConfig(_) => "MeshConfig",
            Object::Egress(_) => "Egress",
            Object::IngressBackend(_) => "IngressBackend",
            Object::Retry(_) => "Retry",
            Object::UpstreamTrafficSetting(_) => "UpstreamTrafficSetting",
            Object::HttpRoute(_) => "HTTPRoute",
            Object::GrpcRoute(_) => "GRPCRoute",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::ServiceAccount(o) => &o.metadata,
            Object::Pod(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::Job(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::TrafficTarget(o) => &o.metadata,
            Object::HttpRouteGroup(o) => &o.metadata,
            Object::TcpRoute(o) => &o.metadata,
            Object::UdpRoute(o) => &o.metadata,
            Object::TrafficSplit(o) => &o.metadata,
            Object::MeshConfig(o) => &o.metadata,
            Object::Egress(o) => &o.metadata,
            Object::IngressBackend(o) => &o.metadata,
            Object::Retry(o) => &o.metadata,
            Object::UpstreamTrafficSetting(o) => &o.metadata,
            Object::HttpRoute(o) => &o.metadata,
            Object::GrpcRoute(o) => &o.metadata,
        }
    }

    /// The metadata to change; a shared Kubernetes object is copied first.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Namespace(o) => &mut Arc::make_mut(o).metadata,
            Object::ServiceAccount(o) => &mut Arc::make_mut(o).metadata,
            Object::Pod(o) => &mut Arc::make_mut(o).metadata,
            Object::Service(o) => &mut Arc::make_mut(o).metadata,
            Object::EndpointSlice(o) => &mut Arc::make_mut(o).metadata,
            Object::Deployment(o) => &mut Arc::make_mut(o).metadata,
            Object::StatefulSet(o) => &mut Arc::make_mut(o).metadata,
            Object::Job(o) => &mut Arc::make_mut(o).metadata,
            Object::ConfigMap(o) => &mut Arc::make_mut(o).metadata,
            Object::Secret(o) => &mut Arc::make_mut(o).metadata,
            Object::TrafficTarget(o) => &mut o.metadata,
            Object::HttpRouteGroup(o) => &mut o.metadata,
            Object::TcpRoute(o) => &mut o.metadata,
            Object::UdpRoute(o) => &mut o.metadata,
            Object::TrafficSplit(o) => &mut o.metadata,
            Object::MeshConfig(o) => &mut o.metadata,
            Object::Egress(o) => &mut o.metadata,
            Object::IngressBackend(o) => &mut o.metadata,
            Object::Retry(o) => &mut o.metadata,
            Object::UpstreamTrafficSetting(o) => &mut o.metadata,
            Object::HttpRoute(o) => &mut o.metadata,
            Object::GrpcRoute(o) => &mut o.metadata,
        }
    }

    pub fn key(&self) -> ObjectKey {
        let meta = self.metadata();
        ObjectKey {
            kind: self.kind(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}
