//! Gateway API routes for the mesh (GAMMA): `HTTPRoute` and `GRPCRoute` of
//! `gateway.networking.k8s.io`, read at v1 (and v1beta1 for HTTPRoute,
//! the same shape). The model is our own, with every field of the
//! standard channel (and the experimental `retry`), so that a field the
//! mesh does not enforce reaches validation and is refused there by name
//! rather than dropped by the parser.
//!
//! | kind | versions read |
//! |---|---|
//! | HTTPRoute | v1, v1beta1 |
//! | GRPCRoute | v1, v1alpha2 |

pub mod duration;
pub mod grpc_route;
pub mod http_route;

use serde::Deserialize;
use serde_json::Value;

pub use duration::parse_duration;
pub use grpc_route::GrpcRouteSpec;
pub use http_route::HttpRouteSpec;

/// The API group of the Gateway API.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// What a route attaches to. For the mesh: a Service (group "", kind
/// Service); a Gateway parent belongs to a gateway controller and is left
/// to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentRef {
    /// Default `gateway.networking.k8s.io`.
    #[serde(default)]
    pub group: Option<String>,
    /// Default `Gateway`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Default: the route's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub section_name: Option<String>,
    #[serde(default)]
    pub port: Option<u32>,
}

impl ParentRef {
    /// Whether it names a Service (the mesh's parents).
    pub fn is_service(&self) -> bool {
        self.group.as_deref().unwrap_or(GROUP).is_empty()
            && self.kind.as_deref().unwrap_or("Gateway") == "Service"
    }

    /// The Service's namespace.
    pub fn namespace_or<'a>(&'a self, route_ns: &'a str) -> &'a str {
        self.namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(route_ns)
    }
}

/// Where a rule sends requests: a Service port, with a weight.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    /// Default "" (core).
    #[serde(default)]
    pub group: Option<String>,
    /// Default `Service`.
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u32>,
    /// Default 1.
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

impl BackendRef {
    pub fn is_service(&self) -> bool {
        self.group.as_deref().unwrap_or("").is_empty()
            && self.kind.as_deref().unwrap_or("Service") == "Service"
    }
}

/// A header match (also used for query parameters).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// `RequestHeaderModifier` / `ResponseHeaderModifier`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderModifier {
    #[serde(default)]
    pub set: Vec<Header>,
    #[serde(default)]
    pub add: Vec<Header>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `ReplaceFullPath` or `ReplacePrefixMatch`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathModifier {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub replace_full_path: Option<String>,
    #[serde(default)]
    pub replace_prefix_match: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestRedirect {
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub path: Option<PathModifier>,
    #[serde(default)]
    pub port: Option<u32>,
    /// Default 302.
    #[serde(default)]
    pub status_code: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlRewrite {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub path: Option<PathModifier>,
}

/// A filter of a rule or a backend (HTTPRoute's; GRPCRoute's are a
/// subset, checked by validation).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub request_header_modifier: Option<HeaderModifier>,
    #[serde(default)]
    pub response_header_modifier: Option<HeaderModifier>,
    #[serde(default)]
    pub request_redirect: Option<RequestRedirect>,
    #[serde(default)]
    pub url_rewrite: Option<UrlRewrite>,
    #[serde(default)]
    pub request_mirror: Option<RequestMirror>,
    /// Implementation-specific filters: none are defined by the mesh.
    #[serde(default)]
    pub extension_ref: Option<Value>,
    /// Experimental-channel filters the mesh does not implement.
    #[serde(default)]
    pub cors: Option<Value>,
    #[serde(default)]
    pub external_auth: Option<Value>,
}

/// `RequestMirror`: a copy of each request (or of a share of them) to
/// another Service, its answer dropped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestMirror {
    /// A Service port (weight and filters are not allowed here).
    pub backend_ref: BackendRef,
    /// 0-100; with `fraction`, not both. Neither: every request.
    #[serde(default)]
    pub percent: Option<u32>,
    #[serde(default)]
    pub fraction: Option<Fraction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fraction {
    pub numerator: u32,
    /// Default 100.
    #[serde(default)]
    pub denominator: Option<u32>,
}

impl RequestMirror {
    /// The share of requests mirrored, in millionths (None: not a share).
    pub fn per_million(&self) -> Option<u32> {
        match (self.percent, &self.fraction) {
            (Some(p), None) => (p <= 100).then_some(p * 10_000),
            (None, Some(f)) => {
                let d = f.denominator.unwrap_or(100);
                (d > 0 && f.numerator <= d)
                    .then(|| (u64::from(f.numerator) * 1_000_000 / u64::from(d)) as u32)
            }
            (None, None) => Some(1_000_000),
            (Some(_), Some(_)) => None,
        }
    }
}

/// `timeouts` of an HTTPRoute rule (Gateway API durations).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub backend_request: Option<String>,
}

/// `retry` of an HTTPRoute rule (experimental channel, GEP-1731).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    #[serde(default)]
    pub codes: Vec<u32>,
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub backoff: Option<String>,
}
