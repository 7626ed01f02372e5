//! OSM's policy resources in a proxy's config: rate limits and connection
//! limits (UpstreamTrafficSetting), retries (Retry) and Egress rules.

use super::{
    Index,
    routes::{selected_matches, tt_name},
};
use crate::{
    k8s,
    resources::{Custom, MeshPod, policy},
    v1,
};

pub(crate) fn millis(duration: &str) -> u32 {
    // Validated on apply; an unparsable value means "unset".
    humantime::parse_duration(duration)
        .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

fn unit_ms(unit: &str) -> u32 {
    match unit {
        "minute" => 60_000,
        "hour" => 3_600_000,
        _ => 1_000,
    }
}

/// The UpstreamTrafficSetting for a Service: `host` is its name or an FQDN
/// starting with `<name>.<namespace>`. The first by name when several.
pub fn upstream_setting<'a>(
    index: &'a Index,
    ns: &str,
    name: &str,
) -> Option<&'a Custom<policy::UpstreamTrafficSettingSpec>> {
    let qualified = format!("{name}.{ns}");
    index
        .upstream_traffic_settings
        .range((ns.to_string(), String::new())..)
        .take_while(|((n, _), _)| n == ns)
        .map(|(_, u)| u)
        .find(|u| {
            let host = u.spec.host.trim_end_matches('.');
            host == name || host == qualified || host.starts_with(&format!("{qualified}."))
        })
}

fn http_limit(l: &policy::HttpRateLimit) -> v1::HttpRateLimit {
    v1::HttpRateLimit {
        bucket: Some(v1::TokenBucket {
            tokens: l.requests,
            interval_ms: unit_ms(&l.unit),
            burst: l.burst,
        }),
        status_code: l.response_status_code,
        response_headers: l
            .response_headers_to_add
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
    }
}

/// Rate limits an UpstreamTrafficSetting puts on the upstream's own ports.
pub fn apply_rate_limits(
    port: &mut v1::InboundPort,
    uts: &Custom<policy::UpstreamTrafficSettingSpec>,
) {
    let local = uts.spec.rate_limit.as_ref().and_then(|r| r.local.as_ref());
    port.tcp_rate_limit = local.and_then(|l| l.tcp.as_ref()).map(|t| v1::TokenBucket {
        tokens: t.connections,
        interval_ms: unit_ms(&t.unit),
        burst: t.burst,
    });
    port.http_rate_limit = local.and_then(|l| l.http.as_ref()).map(http_limit);
    port.route_rate_limits = uts
        .spec
        .http_routes
        .iter()
        .filter_map(|r| {
            let limit = r.rate_limit.as_ref()?.local.as_ref()?;
            Some(v1::RouteRateLimit {
                path_regex: r.path.clone(),
                limit: Some(http_limit(limit)),
            })
        })
        .collect();
}

/// The sidecar settings of MeshConfig the proxies enforce: TLS between
/// proxies in the proxy's (rustls) names, and `localProxyMode`; only
/// those fields are set.
pub fn sidecar_settings(
    sidecar: Option<&crate::resources::mesh_config::Sidecar>,
) -> v1::MeshSettings {
    let Some(s) = sidecar else {
        return v1::MeshSettings::default();
    };
    let version = |v: &str| match crate::tls::version(v) {
        Some(2) => "TLSv1_2".to_string(),
        Some(_) => "TLSv1_3".to_string(),
        // TLS_AUTO, and 1.0/1.1 (validation warns): the proxy's defaults.
        None => String::new(),
    };
    v1::MeshSettings {
        app_on_pod_ip: s.local_proxy_mode == "PodIP",
        log_level: crate::compat::proxy_log_filter(&s.log_level).to_string(),
        tls_min_version: version(&s.tls_min_protocol_version),
        tls_max_version: version(&s.tls_max_protocol_version),
        cipher_suites: s
            .cipher_suites
            .iter()
            .filter_map(|c| crate::tls::cipher_suite(c))
            .map(str::to_string)
            .collect(),
        ecdh_curves: s
            .ecdh_curves
            .iter()
            .filter_map(|c| crate::tls::ecdh_curve(c))
            .map(str::to_string)
            .collect(),
        ..Default::default()
    }
}

/// The access log of a pod's proxy: its `openservicemesh.io/access-log`
/// annotation, else MeshConfig's; empty (the proxy's own) with neither. A
/// bad annotation is warned about and the mesh-wide setting applies.
pub fn access_log(
    mesh: Option<&crate::resources::mesh_config::AccessLog>,
    pod: &MeshPod,
    warnings: &mut Vec<String>,
) -> String {
    let annotation = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::compat::ACCESS_LOG));
    match annotation.map(|v| v.trim()) {
        Some(v) if crate::compat::ACCESS_LOG_VALUES.contains(&v) => return v.to_string(),
        Some(other) => warnings.push(format!(
            "pod {}/{}: annotation {}: {other:?} is not off, json or text; the mesh-wide access log setting applies",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or(""),
            crate::compat::ACCESS_LOG
        )),
        None => {}
    }
    match mesh {
        None => String::new(),
        Some(m) if !m.enable => "off".into(),
        Some(m) => m.format.clone(),
    }
}

/// Span export for the proxies, when MeshConfig enables it; the
/// collector defaults to `jaeger.<control-plane namespace>.svc.cluster.local`
/// as OSM's did.
pub fn tracing(
    t: &crate::resources::mesh_config::Tracing,
    osm_namespace: &str,
) -> Option<v1::Tracing> {
    t.enable.then(|| v1::Tracing {
        address: if t.address.is_empty() {
            format!("jaeger.{osm_namespace}.svc.cluster.local")
        } else {
            t.address.clone()
        },
        port: t.port.into(),
        endpoint: t.endpoint.clone(),
        sampled_fraction: t.sampled_fraction.clamp(0.0, 1.0),
    })
}

/// Outlier detection an UpstreamTrafficSetting sets for its clients.
pub fn outlier_detection(
    uts: &Custom<policy::UpstreamTrafficSettingSpec>,
) -> Option<v1::OutlierDetection> {
    let o = uts.spec.outlier_detection.as_ref()?;
    let ms = |d: &Option<String>| d.as_deref().map(millis).unwrap_or(0);
    Some(v1::OutlierDetection {
        consecutive_5xx: o.consecutive_5xx,
        interval_ms: ms(&o.interval),
        base_ejection_time_ms: ms(&o.base_ejection_time),
        max_ejection_percent: o.max_ejection_percent.unwrap_or(0),
    })
}

/// Connection limits an UpstreamTrafficSetting sets for its clients.
pub fn connection_limits(
    uts: &Custom<policy::UpstreamTrafficSettingSpec>,
) -> Option<v1::ConnectionLimits> {
    let settings = uts.spec.connection_settings.as_ref()?;
    let tcp = settings.tcp.as_ref();
    let http = settings.http.as_ref();
    Some(v1::ConnectionLimits {
        max_connections: tcp.and_then(|t| t.max_connections).unwrap_or(0),
        connect_timeout_ms: tcp
            .and_then(|t| t.connect_timeout.as_deref())
            .map(millis)
            .unwrap_or(0),
        max_requests: http.and_then(|h| h.max_requests).unwrap_or(0),
        max_pending_requests: http.and_then(|h| h.max_pending_requests).unwrap_or(0),
        max_requests_per_connection: http
            .and_then(|h| h.max_requests_per_connection)
            .unwrap_or(0),
        max_retries: http.and_then(|h| h.max_retries).unwrap_or(0),
    })
}

fn names_subject(subject: &policy::Subject, default_ns: &str, ns: &str, name: &str) -> bool {
    subject.name == name
        && (if subject.namespace.is_empty() {
            default_ns
        } else {
            &subject.namespace
        }) == ns
}

/// The retry policy for requests from `pod` to a Service, when the
/// `enableRetryPolicy` feature flag is on (off by default, as in OSM).
pub fn retry(index: &Index, pod: &MeshPod, ns: &str, name: &str) -> Option<v1::RetryPolicy> {
    let enabled = index
        .mesh_config
        .as_ref()
        .is_some_and(|m| m.spec.feature_flags.enable_retry_policy);
    if !enabled {
        return None;
    }
    let pod_ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let sa = k8s::service_account(pod);
    index.retries.values().find_map(|r| {
        let r_ns = r.metadata.namespace.as_deref().unwrap_or("");
        let from_me = r.spec.source.kind == "ServiceAccount"
            && names_subject(&r.spec.source, r_ns, pod_ns, sa);
        let to_service = r
            .spec
            .destinations
            .iter()
            .any(|d| d.kind == "Service" && names_subject(d, r_ns, ns, name));
        (from_me && to_service).then(|| {
            let p = &r.spec.retry_policy;
            v1::RetryPolicy {
                retry_on: crate::resilience::retry_conditions(&p.retry_on)
                    .map(str::to_string)
                    .collect(),
                num_retries: p.num_retries,
                per_try_timeout_ms: if p.per_try_timeout.is_empty() {
                    0
                } else {
                    millis(&p.per_try_timeout)
                },
                backoff_base_ms: millis(&p.retry_backoff_base_interval),
                retriable_status_codes: p.retriable_status_codes.clone(),
            }
        })
    })
}

/// The Egress rules whose sources include `pod`'s ServiceAccount, when the
/// `enableEgressPolicy` feature flag is on (the default).
pub fn egress_rules(
    index: &Index,
    pod: &MeshPod,
    warnings: &mut Vec<String>,
) -> Vec<v1::EgressRule> {
    let enabled = index
        .mesh_config
        .as_ref()
        .is_none_or(|m| m.spec.feature_flags.enable_egress_policy);
    if !enabled {
        return Vec::new();
    }
    let pod_ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let sa = k8s::service_account(pod);
    let mut out = Vec::new();
    for ((ns, _), egress) in &index.egresses {
        if !egress
            .spec
            .sources
            .iter()
            .any(|s| s.kind == "ServiceAccount" && names_subject(s, ns, pod_ns, sa))
        {
            continue;
        }
        let name = tt_name(egress);
        let by = format!("Egress {name}");
        let mut matches = Vec::new();
        let mut limits = None;
        for m in &egress.spec.matches {
            let key = (ns.clone(), m.name.clone());
            match m.kind.as_str() {
                "HTTPRouteGroup" => match index.http_route_groups.get(&key) {
                    Some(group) => matches.extend(selected_matches(group, None, &by, warnings)),
                    None => warnings.push(format!(
                        "{by}: HTTPRouteGroup {ns}/{} does not exist",
                        m.name
                    )),
                },
                "UpstreamTrafficSetting" => match index.upstream_traffic_settings.get(&key) {
                    Some(uts) => limits = connection_limits(uts),
                    None => warnings.push(format!(
                        "{by}: UpstreamTrafficSetting {ns}/{} does not exist",
                        m.name
                    )),
                },
                _ => {}
            }
        }
        out.push(v1::EgressRule {
            name,
            hosts: egress.spec.hosts.clone(),
            cidrs: egress.spec.ip_addresses.clone(),
            ports: egress
                .spec
                .ports
                .iter()
                .map(|p| v1::EgressPort {
                    number: p.number,
                    protocol: p.protocol.clone(),
                })
                .collect(),
            matches,
            limits,
        });
    }
    out
}
