//! Gateway API routes for the mesh (GAMMA, GEP-1426): which HTTPRoutes and
//! GRPCRoutes apply to a Service port for a given client, their rules as
//! the proxy receives them, and each route's status.
//!
//! Decisions (also in the README):
//! - A route attaches to a Service through a `parentRefs` entry of kind
//!   Service (group ""), optionally narrowed to one port. A route in the
//!   Service's namespace is a *producer* route and applies to every
//!   meshed client; a route in another namespace is a *consumer* route
//!   and applies only to clients in its own namespace. When consumer
//!   routes attach to a Service port for a client, producer routes do not
//!   apply to that client (GEP-1426).
//! - Routes apply by the Service's address (ClusterIP and port), not by
//!   the Host header; `hostnames` are not used by mesh routes (a warning).
//! - Several routes on one Service port: their rules are merged, the
//!   oldest route first, then by namespace/name; the proxy orders matches
//!   by the specification's precedence, stable in that order.
//! - A Service with routes and a TrafficSplit: the routes win for the
//!   ports they attach to; the TrafficSplit is reported as overridden.
//! - A backend in another namespace resolves only when it is one of the
//!   route's parent Services (a consumer route sending to the Service it
//!   overrides); other cross-namespace backends are not resolved
//!   (ReferenceGrant is not read): their share of requests is answered
//!   500, and ResolvedRefs says RefNotPermitted.

mod attach;
pub mod conflicts;
mod matches;
mod rules;
pub mod status;

use k8s_openapi::{
    api::core::v1::{Service, ServicePort},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

pub(super) use attach::{attached, parents_of_candidates};
pub(super) use rules::compile_rules;

use super::Index;
use crate::resources::{
    Custom,
    gateway::{BackendRef, Filter, GrpcRouteSpec, HttpRouteSpec, ParentRef},
};

/// An HTTPRoute or a GRPCRoute.
#[derive(Debug, Clone, Copy)]
pub enum MeshRoute<'a> {
    Http(&'a Custom<HttpRouteSpec>),
    Grpc(&'a Custom<GrpcRouteSpec>),
}

impl<'a> MeshRoute<'a> {
    pub fn kind(&self) -> &'static str {
        match self {
            MeshRoute::Http(_) => "HTTPRoute",
            MeshRoute::Grpc(_) => "GRPCRoute",
        }
    }

    pub fn metadata(&self) -> &'a ObjectMeta {
        match self {
            MeshRoute::Http(r) => &r.metadata,
            MeshRoute::Grpc(r) => &r.metadata,
        }
    }

    pub fn namespace(&self) -> &'a str {
        self.metadata().namespace.as_deref().unwrap_or("default")
    }

    pub fn name(&self) -> &'a str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    pub fn parent_refs(&self) -> &'a [ParentRef] {
        match self {
            MeshRoute::Http(r) => &r.spec.parent_refs,
            MeshRoute::Grpc(r) => &r.spec.parent_refs,
        }
    }

    /// Every backendRef of every rule, and of its mirrors.
    pub fn backend_refs(&self) -> Vec<&'a BackendRef> {
        fn of<'a>(
            refs: &'a [BackendRef],
            filters: &'a [Filter],
        ) -> impl Iterator<Item = &'a BackendRef> {
            refs.iter().chain(
                filters
                    .iter()
                    .filter_map(|f| f.request_mirror.as_ref().map(|m| &m.backend_ref)),
            )
        }
        match self {
            MeshRoute::Http(r) => r
                .spec
                .rules
                .iter()
                .flat_map(|r| of(&r.backend_refs, &r.filters))
                .collect(),
            MeshRoute::Grpc(r) => r
                .spec
                .rules
                .iter()
                .flat_map(|r| of(&r.backend_refs, &r.filters))
                .collect(),
        }
    }

    /// `Kind namespace/name`, for warnings.
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind(), self.namespace(), self.name())
    }
}

/// Every route of the index.
pub fn all_routes(index: &Index) -> impl Iterator<Item = MeshRoute<'_>> {
    index
        .http_routes
        .values()
        .map(MeshRoute::Http)
        .chain(index.grpc_routes.values().map(MeshRoute::Grpc))
}

/// Why a backendRef does not resolve to a Service port: the
/// `ResolvedRefs` reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub reason: &'static str,
    pub message: String,
}

/// The Service port a backendRef of `route` names. A backend in another
/// namespace resolves only when it is one of the route's parent Services
/// (a consumer route sending to the Service it overrides, which its
/// clients may address anyway); others need a ReferenceGrant, which the
/// mesh does not read.
pub fn resolve_backend<'a>(
    index: &'a Index,
    route: &MeshRoute<'_>,
    b: &BackendRef,
) -> Result<(&'a Service, &'a ServicePort), Unresolved> {
    let route_ns = route.namespace();
    if !b.is_service() {
        return Err(Unresolved {
            reason: "InvalidKind",
            message: format!(
                "backend {:?} is a {}/{}: the mesh sends to Services only",
                b.name,
                b.group.as_deref().unwrap_or(""),
                b.kind.as_deref().unwrap_or("Service")
            ),
        });
    }
    let ns = b
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(route_ns);
    let is_parent = || {
        route
            .parent_refs()
            .iter()
            .any(|p| p.is_service() && p.name == b.name && p.namespace_or(route_ns) == ns)
    };
    if ns != route_ns && !is_parent() {
        return Err(Unresolved {
            reason: "RefNotPermitted",
            message: format!(
                "backend Service {ns}/{} is in another namespace than the route and is not its parent; the mesh does not read ReferenceGrants",
                b.name
            ),
        });
    }
    let Some(service) = index.services.get(&(ns.to_string(), b.name.clone())) else {
        return Err(Unresolved {
            reason: "BackendNotFound",
            message: format!("backend Service {ns}/{} does not exist", b.name),
        });
    };
    let port = b.port.unwrap_or(0);
    let found = service
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .find(|p| u32::try_from(p.port).ok() == Some(port));
    match found {
        Some(sp) => Ok((service, sp)),
        None => Err(Unresolved {
            reason: "BackendNotFound",
            message: format!("backend Service {ns}/{} has no port {port}", b.name),
        }),
    }
}
