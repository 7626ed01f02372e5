//! `config.openservicemesh.io` MeshConfig, v1alpha1 and v1alpha2 (one
//! schema: v1alpha2 only renamed nothing a user writes). Absent fields take
//! the values an OSM v1.2 install sets, so a partial MeshConfig behaves like
//! OSM's preset with the written fields changed.

use serde::{Deserialize, Serialize};

/// The whole spec.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MeshConfigSpec {
    pub sidecar: Sidecar,
    pub traffic: Traffic,
    pub observability: Observability,
    pub certificate: Certificate,
    pub feature_flags: FeatureFlags,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Sidecar {
    pub enable_privileged_init_container: bool,
    /// The sidecar's log level.
    pub log_level: String,
    /// Kept for manifests written for OSM; our sidecar image is `proxy_image`.
    pub envoy_image: String,
    pub envoy_windows_image: String,
    pub init_container_image: String,
    /// Maximum proxies per controller; 0 = no limit.
    pub max_data_plane_connections: u32,
    /// Periodic full resync of every proxy; "0s" = off.
    pub config_resync_interval: String,
    /// Sidecar container resources (a Kubernetes ResourceRequirements).
    pub resources: serde_json::Value,
    pub tls_min_protocol_version: String,
    pub tls_max_protocol_version: String,
    pub cipher_suites: Vec<String>,
    pub ecdh_curves: Vec<String>,
    /// `Localhost` (the proxy dials the app on 127.0.0.1) or `PodIP`.
    pub local_proxy_mode: String,
}

impl Default for Sidecar {
    fn default() -> Self {
        Self {
            enable_privileged_init_container: false,
            log_level: "error".into(),
            envoy_image: String::new(),
            envoy_windows_image: String::new(),
            init_container_image: String::new(),
            max_data_plane_connections: 0,
            config_resync_interval: "0s".into(),
            resources: serde_json::Value::Object(Default::default()),
            tls_min_protocol_version: "TLSv1_2".into(),
            tls_max_protocol_version: "TLSv1_3".into(),
            cipher_suites: Vec::new(),
            ecdh_curves: Vec::new(),
            local_proxy_mode: "Localhost".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Traffic {
    pub enable_egress: bool,
    pub enable_permissive_traffic_policy_mode: bool,
    #[serde(rename = "outboundIPRangeExclusionList")]
    pub outbound_ip_range_exclusion_list: Vec<String>,
    #[serde(rename = "outboundIPRangeInclusionList")]
    pub outbound_ip_range_inclusion_list: Vec<String>,
    pub outbound_port_exclusion_list: Vec<u32>,
    pub inbound_port_exclusion_list: Vec<u32>,
    pub network_interface_exclusion_list: Vec<String>,
    pub inbound_external_authorization: ExternalAuthorization,
    /// Default whole-request timeout of outbound HTTP (this mesh's
    /// addition); empty: none.
    pub request_timeout: String,
}

impl Default for Traffic {
    fn default() -> Self {
        Self {
            enable_egress: true,
            enable_permissive_traffic_policy_mode: true,
            outbound_ip_range_exclusion_list: Vec::new(),
            outbound_ip_range_inclusion_list: Vec::new(),
            outbound_port_exclusion_list: Vec::new(),
            inbound_port_exclusion_list: Vec::new(),
            network_interface_exclusion_list: Vec::new(),
            inbound_external_authorization: ExternalAuthorization::default(),
            request_timeout: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ExternalAuthorization {
    pub enable: bool,
    pub address: String,
    pub port: u16,
    pub stat_prefix: String,
    pub timeout: String,
    pub failure_mode_allow: bool,
}

impl Default for ExternalAuthorization {
    fn default() -> Self {
        Self {
            enable: false,
            address: String::new(),
            port: 0,
            stat_prefix: "inboundExtAuthz".into(),
            timeout: "1s".into(),
            failure_mode_allow: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Observability {
    #[serde(rename = "osmLogLevel")]
    pub osm_log_level: String,
    pub enable_debug_server: bool,
    pub tracing: Tracing,
    /// This mesh's addition (OSM logged every request, always as JSON).
    pub access_log: AccessLog,
}

impl Default for Observability {
    fn default() -> Self {
        Self {
            osm_log_level: "info".into(),
            enable_debug_server: false,
            tracing: Tracing::default(),
            access_log: AccessLog::default(),
        }
    }
}

/// The sidecars' access log, mesh-wide; a pod's
/// `openservicemesh.io/access-log` annotation (`off`, `json`, `text`)
/// overrides it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AccessLog {
    pub enable: bool,
    /// `json` or `text`.
    pub format: String,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            enable: true,
            format: "json".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Tracing {
    pub enable: bool,
    pub port: u16,
    /// Empty: `jaeger.<control-plane namespace>.svc.cluster.local`, as OSM.
    pub address: String,
    /// `/api/v2/spans` (Zipkin v2 JSON) or a path ending in `/v1/traces`
    /// (OTLP/HTTP JSON).
    pub endpoint: String,
    /// This mesh's addition: the share of requests without a trace context
    /// that start a trace, in [0, 1]. A request that carries one keeps its
    /// decision.
    pub sampled_fraction: f64,
}

impl Default for Tracing {
    fn default() -> Self {
        Self {
            enable: false,
            port: 9411,
            address: String::new(),
            endpoint: "/api/v2/spans".into(),
            // OSM (Envoy's default) traced every request once tracing was on.
            sampled_fraction: 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Certificate {
    pub service_cert_validity_duration: String,
    /// RSA key size in OSM; our leaf keys are ECDSA P-256 and ignore it.
    pub cert_key_bit_size: u32,
    pub ingress_gateway: Option<IngressGatewayCertificate>,
}

/// The shortest leaf lifetime the mesh issues: below it every proxy would
/// re-certify in a loop (renewal is at two thirds of the life).
pub const LEAF_LIFETIME_MIN: std::time::Duration = std::time::Duration::from_secs(2);
/// The longest: a mesh leaf outliving a year defeats rotation (and a huge
/// value would not fit in a certificate at all).
pub const LEAF_LIFETIME_MAX: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

impl Certificate {
    /// `serviceCertValidityDuration` as a lifetime within
    /// [`LEAF_LIFETIME_MIN`, `LEAF_LIFETIME_MAX`]; Err says why not.
    pub fn service_cert_validity(&self) -> Result<std::time::Duration, String> {
        let value = &self.service_cert_validity_duration;
        let d = humantime::parse_duration(value)
            .map_err(|_| format!("{value:?} is not a duration (e.g. 24h, 90m, 30s, 250ms)"))?;
        if d < LEAF_LIFETIME_MIN || d > LEAF_LIFETIME_MAX {
            return Err(format!(
                "{value:?} is not within 2s and 8760h (a year); every proxy re-certifies at two thirds of it"
            ));
        }
        Ok(d)
    }
}

impl Default for Certificate {
    fn default() -> Self {
        Self {
            service_cert_validity_duration: "24h".into(),
            cert_key_bit_size: 2048,
            ingress_gateway: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressGatewayCertificate {
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    #[serde(default = "twenty_four_hours")]
    pub validity_duration: String,
    #[serde(default)]
    pub secret: SecretReference,
}

fn twenty_four_hours() -> String {
    "24h".into()
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretReference {
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FeatureFlags {
    #[serde(rename = "enableWASMStats")]
    pub enable_wasm_stats: bool,
    pub enable_egress_policy: bool,
    pub enable_multicluster_mode: bool,
    pub enable_snapshot_cache_mode: bool,
    pub enable_async_proxy_service_mapping: bool,
    pub enable_ingress_backend_policy: bool,
    pub enable_envoy_active_health_checks: bool,
    pub enable_retry_policy: bool,
    pub enable_mesh_root_certificate: bool,
}

impl Default for FeatureFlags {
    fn default() -> Self {
        Self {
            enable_wasm_stats: true,
            enable_egress_policy: true,
            enable_multicluster_mode: false,
            enable_snapshot_cache_mode: false,
            enable_async_proxy_service_mapping: false,
            enable_ingress_backend_policy: true,
            enable_envoy_active_health_checks: false,
            enable_retry_policy: false,
            enable_mesh_root_certificate: false,
        }
    }
}
