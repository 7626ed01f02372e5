//! Validation of mesh resources, in the words the validating webhook uses.
//!
//! A problem either rejects the object (the webhook denies it; the
//! controller ignores it) or only warns (the object is admitted and the
//! warning is shown). What rejects and what warns:
//!
//! | kind | rejects | warns |
//! |---|---|---|
//! | TrafficTarget | destination in another namespace; destination or source not a ServiceAccount; no source; no rule; unknown rule kind | `matches` on a TCP/UDP rule; UDPRoute rules (UDP is not intercepted); a source without namespace |
//! | HTTPRouteGroup | no match; unnamed or duplicate match; bad regex; bad method | |
//! | TCPRoute, UDPRoute | port 0 | duplicate ports |
//! | TrafficSplit | no backend; weights summing to 0; duplicate backend; root in another namespace; A/B match not an HTTPRouteGroup | the root listed as a backend |
//! | MeshConfig | bad duration, TLS version, key size, proxy mode, log level, CIDR or port | another name than `osm-mesh-config`; TLS below 1.2 |
//! | Egress | no source or port; non-ServiceAccount source; bad port or protocol; bad CIDR; neither hosts nor IP ranges; unknown or repeated match kind | hosts on a TCP-only policy |
//! | IngressBackend | no backend or source; bad port or protocol; unknown source kind; bad IP range | https backend without an AuthenticatedPrincipal source |
//! | Retry | source not a ServiceAccount; no destination; destination not a Service; bad duration | |
//! | UpstreamTrafficSetting | no host; bad duration, unit or status code; bad route path regex | |
//! | HTTPRoute, GRPCRoute | a Service parent with sectionName or a bad port; duplicate rule names; bad path, header, query or method match; a filter the mesh does not implement (RequestMirror, ExtensionRef, CORS, ExternalAuth), of the wrong type, repeated, or with a bad header, scheme, host, port, status code or path; RequestRedirect with URLRewrite; a Service backend without port; weight above 1000000; bad timeouts (backendRequest longer than request); retry codes outside 4xx-5xx, more than 10 attempts or a bad backoff; `sessionPersistence` | no Service parent; `hostnames` |
//!
//! Checks that need other objects (a rule naming a missing route, a backend
//! without the root's port) are the compiler's and only warn there.

use std::collections::HashSet;

use crate::resources::{Custom, Object, smi};

/// Whether a problem rejects the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Reject,
    Warn,
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// True when a problem rejects the object.
pub fn rejects(problems: &[Problem]) -> bool {
    problems.iter().any(|p| p.severity == Severity::Reject)
}

pub(crate) struct Problems(pub(crate) Vec<Problem>);

impl Problems {
    pub(crate) fn reject(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Reject, field, message);
    }
    pub(crate) fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warn, field, message);
    }
    fn push(&mut self, severity: Severity, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            severity,
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Every problem of one object; empty when it is valid.
pub fn validate(object: &Object) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    match object {
        Object::TrafficTarget(tt) => traffic_target(tt, &mut p),
        Object::HttpRouteGroup(g) => http_route_group(&g.spec, &mut p),
        Object::TcpRoute(r) | Object::UdpRoute(r) => port_route(&r.spec, &mut p),
        Object::TrafficSplit(s) => traffic_split(s, &mut p),
        Object::MeshConfig(m) => {
            mesh_config::mesh_config(m, &mut p);
            no_effect::mesh_config(&m.spec, &mut p);
        }
        Object::Egress(e) => policy::egress(&e.spec, &mut p),
        Object::IngressBackend(i) => {
            policy::ingress_backend(&i.spec, &mut p);
            no_effect::ingress_backend(&i.spec, &mut p);
        }
        Object::Retry(r) => policy::retry(&r.spec, &mut p),
        Object::UpstreamTrafficSetting(u) => policy::upstream_traffic_setting(&u.spec, &mut p),
        Object::HttpRoute(r) => gateway::http_route(&r.spec, &mut p),
        Object::GrpcRoute(r) => gateway::grpc_route(&r.spec, &mut p),
        _ => {}
    }
    p.0
}

fn namespace_of<T>(o: &Custom<T>) -> &str {
    o.metadata.namespace.as_deref().unwrap_or("default")
}

fn traffic_target(tt: &Custom<smi::TrafficTarget>, p: &mut Problems) {
    let own = namespace_of(tt);
    let spec = &tt.spec;
    if spec.destination.kind != "ServiceAccount" {
        p.reject(
            "spec.destination.kind",
            format!("must be ServiceAccount, not {:?}", spec.destination.kind),
        );
    }
    if let Some(ns) = &spec.destination.namespace
        && ns != own
    {
        p.reject(
            "spec.destination.namespace",
            format!("must be the TrafficTarget's own namespace {own:?}, not {ns:?}"),
        );
    }
    if spec.sources.is_empty() {
        p.reject("spec.sources", "at least one source is required");
    }
    for (i, s) in spec.sources.iter().enumerate() {
        if s.kind != "ServiceAccount" {
            p.reject(
                format!("spec.sources[{i}].kind"),
                format!("must be ServiceAccount, not {:?}", s.kind),
            );
        }
        if s.namespace.as_deref().unwrap_or("").is_empty() {
            p.warn(
                format!("spec.sources[{i}].namespace"),
                format!("not set: taken as the TrafficTarget's namespace {own:?}"),
            );
        }
    }
    if spec.rules.is_empty() {
        p.reject("spec.rules", "at least one rule is required");
    }
    for (i, r) in spec.rules.iter().enumerate() {
        match r.kind.as_str() {
            "HTTPRouteGroup" => {}
            "TCPRoute" | "UDPRoute" => {
                if r.matches.as_ref().is_some_and(|m| !m.is_empty()) {
                    p.warn(
                        format!("spec.rules[{i}].matches"),
                        "only HTTPRouteGroup rules have matches; ignored",
                    );
                }
                if r.kind == "UDPRoute" {
                    p.warn(
                        format!("spec.rules[{i}].kind"),
                        "the mesh intercepts TCP only: this UDPRoute rule has no effect",
                    );
                }
            }
            other => p.reject(
                format!("spec.rules[{i}].kind"),
                format!("unknown rule kind {other:?} (HTTPRouteGroup, TCPRoute or UDPRoute)"),
            ),
        }
    }
}

fn http_route_group(group: &smi::HttpRouteGroup, p: &mut Problems) {
    if group.matches.is_empty() {
        p.reject("spec.matches", "at least one match is required");
    }
    let mut names = HashSet::new();
    for (i, m) in group.matches.iter().enumerate() {
        let at = format!("spec.matches[{i}]");
        if m.name.is_empty() {
            p.reject(format!("{at}.name"), "is required");
        } else if !names.insert(m.name.as_str()) {
            p.reject(
                format!("{at}.name"),
                format!("{:?} is used by another match", m.name),
            );
        }
        // The proxy's own compile step: what is accepted here compiles there.
        let wire = crate::compile::routes::wire_match("", m);
        for problem in crate::matcher::HttpMatcher::problems(&wire) {
            p.reject(format!("{at}.{}", problem.field), problem.message);
        }
    }
}

fn port_route(route: &smi::PortRoute, p: &mut Problems) {
    let mut seen = HashSet::new();
    for (i, port) in route.ports.iter().enumerate() {
        if *port == 0 {
            p.reject(
                format!("spec.matches.ports[{i}]"),
                "0 is not a port (1-65535)",
            );
        } else if !seen.insert(port) {
            p.warn(
                format!("spec.matches.ports[{i}]"),
                format!("port {port} is listed twice"),
            );
        }
    }
}

/// The namespace a root service written as `name.namespace[.svc...]` names.
pub fn root_service_name(service: &str) -> (&str, Option<&str>) {
    let mut parts = service.split('.');
    let name = parts.next().unwrap_or(service);
    (name, parts.next())
}

fn traffic_split(split: &Custom<smi::TrafficSplit>, p: &mut Problems) {
    let own = namespace_of(split);
    let spec = &split.spec;
    let (root, root_ns) = root_service_name(&spec.service);
    if root.is_empty() {
        p.reject("spec.service", "is required");
    }
    if let Some(ns) = root_ns
        && ns != own
    {
        p.reject(
            "spec.service",
            format!("{:?} is in namespace {ns:?}; a split and its services share the split's namespace {own:?}", spec.service),
        );
    }
    if spec.backends.is_empty() {
        p.reject("spec.backends", "at least one backend is required");
    } else if spec.backends.iter().map(|b| b.weight).sum::<u64>() == 0 {
        p.reject(
            "spec.backends",
            "the weights add up to 0: no backend would receive traffic",
        );
    }
    let mut seen = HashSet::new();
    for (i, b) in spec.backends.iter().enumerate() {
        let at = format!("spec.backends[{i}].service");
        if !seen.insert(b.service.as_str()) {
            p.reject(&at, format!("{:?} is listed twice", b.service));
        }
        if b.service == root {
            p.warn(
                &at,
                format!("the root service {root:?} is its own backend: its share goes to the root Service's endpoints"),
            );
        }
    }
    for (i, m) in spec.matches.iter().enumerate() {
        if m.kind != "HTTPRouteGroup" {
            p.reject(
                format!("spec.matches[{i}].kind"),
                format!("must be HTTPRouteGroup, not {:?}", m.kind),
            );
        }
    }
}

mod fields;
mod gateway;
mod gateway_filters;
mod mesh_config;
mod no_effect;
mod policy;

#[cfg(test)]
mod gateway_tests;
#[cfg(test)]
mod tests;
