//! `policy.openservicemesh.io/v1alpha1`: Egress, IngressBackend, Retry and
//! UpstreamTrafficSetting, with OSM v1.2's fields.

use serde::{Deserialize, Serialize};

/// A reference to an object in the policy's namespace (`matches`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRef {
    #[serde(default)]
    pub api_group: Option<String>,
    pub kind: String,
    pub name: String,
}

/// kind/name/namespace of a source or destination.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// A port and its protocol (`http`, `https`, `tcp`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub number: u32,
    pub protocol: String,
}

/// Egress: lets sources reach destinations outside the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSpec {
    #[serde(default)]
    pub sources: Vec<Subject>,
    /// Host header (HTTP) or SNI (HTTPS) values.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// CIDRs, for TCP.
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    #[serde(default)]
    pub ports: Vec<Port>,
    /// At most one HTTPRouteGroup and one UpstreamTrafficSetting.
    #[serde(default)]
    pub matches: Vec<LocalRef>,
}

/// IngressBackend: lets sources outside the mesh reach backends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressBackendSpec {
    #[serde(default)]
    pub backends: Vec<IngressBackendTarget>,
    #[serde(default)]
    pub sources: Vec<Subject>,
    #[serde(default)]
    pub matches: Vec<LocalRef>,
}

/// A Service and its target port receiving ingress traffic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressBackendTarget {
    pub name: String,
    pub port: Port,
    #[serde(default)]
    pub tls: IngressTls,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressTls {
    #[serde(default)]
    pub skip_client_cert_validation: bool,
    #[serde(default, rename = "sniHosts")]
    pub sni_hosts: Vec<String>,
}

/// Retry: how a source retries failed requests to destinations.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySpec {
    pub source: Subject,
    #[serde(default)]
    pub destinations: Vec<Subject>,
    pub retry_policy: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Conditions, comma-separated (`5xx`, `gateway-error`, `reset`, ...).
    #[serde(default)]
    pub retry_on: String,
    /// Empty: the request's own timeout.
    #[serde(default)]
    pub per_try_timeout: String,
    #[serde(default = "one")]
    pub num_retries: u32,
    #[serde(default = "twenty_five_ms", rename = "retryBackoffBaseInterval")]
    pub retry_backoff_base_interval: String,
    /// The codes `retriable-status-codes` retries (this mesh's addition;
    /// Envoy takes them from its route config).
    #[serde(default)]
    pub retriable_status_codes: Vec<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retry_on: String::new(),
            per_try_timeout: String::new(),
            num_retries: one(),
            retry_backoff_base_interval: twenty_five_ms(),
            retriable_status_codes: Vec::new(),
        }
    }
}

fn one() -> u32 {
    1
}

fn twenty_five_ms() -> String {
    "25ms".into()
}

/// UpstreamTrafficSetting: connection limits and local rate limits for one
/// upstream host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamTrafficSettingSpec {
    /// The Service's FQDN, or its name in the policy's namespace.
    pub host: String,
    #[serde(default)]
    pub connection_settings: Option<ConnectionSettings>,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, rename = "httpRoutes")]
    pub http_routes: Vec<HttpRouteSetting>,
    /// Ejection of failing endpoints (this mesh's addition; OSM v1.2 had
    /// none).
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
}

/// `spec.outlierDetection`: an endpoint failing `consecutive5xx` times in
/// a row leaves load balancing for `baseEjectionTime` times its ejections.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    #[serde(rename = "consecutive5xx")]
    pub consecutive_5xx: u32,
    /// Default 10s.
    #[serde(default)]
    pub interval: Option<String>,
    /// Default 30s.
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    /// Default 10.
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    #[serde(default)]
    pub tcp: Option<TcpConnectionSettings>,
    #[serde(default)]
    pub http: Option<HttpConnectionSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpConnectionSettings {
    /// Default 2^32-1.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Default 5s.
    #[serde(default)]
    pub connect_timeout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpConnectionSettings {
    #[serde(default)]
    pub max_requests: Option<u32>,
    #[serde(default)]
    pub max_requests_per_connection: Option<u32>,
    #[serde(default)]
    pub max_pending_requests: Option<u32>,
    #[serde(default)]
    pub max_retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default)]
    pub local: Option<LocalRateLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRateLimit {
    #[serde(default)]
    pub tcp: Option<TcpRateLimit>,
    #[serde(default)]
    pub http: Option<HttpRateLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcpRateLimit {
    pub connections: u32,
    /// `second`, `minute` or `hour`.
    pub unit: String,
    #[serde(default)]
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRateLimit {
    pub requests: u32,
    pub unit: String,
    #[serde(default)]
    pub burst: u32,
    /// 400-599; 0 means 429.
    #[serde(default)]
    pub response_status_code: u32,
    #[serde(default)]
    pub response_headers_to_add: Vec<HeaderValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderValue {
    pub name: String,
    pub value: String,
}

/// Settings for one path of the upstream (only paths already allowed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteSetting {
    pub path: String,
    #[serde(default)]
    pub rate_limit: Option<RouteRateLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRateLimit {
    #[serde(default)]
    pub local: Option<HttpRateLimit>,
}
