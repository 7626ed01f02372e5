//! Validation of MeshConfig and the `policy.openservicemesh.io` kinds.

use super::Problems;
use crate::{
    compat::MESH_CONFIG_NAME,
    resources::{Custom, mesh_config::*, policy::*},
};

fn duration(p: &mut Problems, field: &str, value: &str) {
    if humantime::parse_duration(value).is_err() {
        p.reject(
            field,
            format!("{value:?} is not a duration (e.g. 24h, 90m, 30s, 250ms)"),
        );
    }
}

fn cidr(p: &mut Problems, field: String, value: &str) {
    if value.parse::<ipnet::IpNet>().is_err() {
        p.reject(field, format!("{value:?} is not a CIDR (e.g. 10.0.0.0/8)"));
    }
}

fn port(p: &mut Problems, field: String, value: u32) {
    if !(1..=65535).contains(&value) {
        p.reject(field, format!("{value} is not a port (1-65535)"));
    }
}

const TLS_VERSIONS: [&str; 5] = ["TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"];

/// Cipher suites and curves the proxies can use (`osm_api::tls`), and a
/// combination that still lets mesh (ECDSA) certificates handshake.
fn tls_suites(p: &mut Problems, sidecar: &Sidecar) {
    let mut tls12 = Vec::new();
    for (i, name) in sidecar.cipher_suites.iter().enumerate() {
        let field = format!("spec.sidecar.cipherSuites[{i}]");
        match crate::tls::cipher_suite(name) {
            None => p.reject(
                field,
                format!(
                    "{name:?} is not a cipher suite the proxies support (one of {})",
                    crate::tls::CIPHER_SUITES
                        .iter()
                        .map(|(alias, _)| *alias)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(c) if crate::tls::is_tls13(c) => {}
            Some(c) => {
                if !crate::tls::is_ecdsa(c) {
                    p.warn(
                        field,
                        format!("{name} is never negotiated: mesh certificates are ECDSA"),
                    );
                }
                tls12.push(c);
            }
        }
    }
    let tls13_possible =
        crate::tls::version(&sidecar.tls_max_protocol_version).is_none_or(|v| v >= 3);
    if !tls13_possible && !tls12.is_empty() && !tls12.iter().any(|c| crate::tls::is_ecdsa(c)) {
        p.reject(
            "spec.sidecar.cipherSuites",
            "with TLS 1.2 at most, no listed suite works with mesh (ECDSA) certificates: \
             add an ECDHE-ECDSA suite",
        );
    }
    for (i, name) in sidecar.ecdh_curves.iter().enumerate() {
        if crate::tls::ecdh_curve(name).is_none() {
            p.reject(
                format!("spec.sidecar.ecdhCurves[{i}]"),
                format!("{name:?} is not one of X25519, P-256, P-384"),
            );
        }
    }
}

pub(super) fn mesh_config(m: &Custom<MeshConfigSpec>, p: &mut Problems) {
    if m.metadata.name.as_deref() != Some(MESH_CONFIG_NAME) {
        p.warn(
            "metadata.name",
            format!("only {MESH_CONFIG_NAME} in the control-plane namespace configures the mesh; this one is ignored"),
        );
    }
    let s = &m.spec;
    let sidecar = &s.sidecar;
    if ![
        "trace", "debug", "info", "warning", "warn", "error", "critical", "off",
    ]
    .contains(&sidecar.log_level.as_str())
    {
        p.reject(
            "spec.sidecar.logLevel",
            format!(
                "{:?} is not a log level (trace, debug, info, warn, error, off)",
                sidecar.log_level
            ),
        );
    }
    duration(
        p,
        "spec.sidecar.configResyncInterval",
        &sidecar.config_resync_interval,
    );
    if !s.traffic.request_timeout.is_empty() {
        duration(p, "spec.traffic.requestTimeout", &s.traffic.request_timeout);
    }
    let rank = |v: &str| TLS_VERSIONS.iter().position(|t| *t == v);
    for (field, v) in [
        (
            "spec.sidecar.tlsMinProtocolVersion",
            &sidecar.tls_min_protocol_version,
        ),
        (
            "spec.sidecar.tlsMaxProtocolVersion",
            &sidecar.tls_max_protocol_version,
        ),
    ] {
        match rank(v) {
            None => p.reject(
                field,
                format!("{v:?} is not one of {}", TLS_VERSIONS.join(", ")),
            ),
            Some(1 | 2) if field.ends_with("MaxProtocolVersion") => p.reject(
                field,
                format!("{v} leaves nothing: the proxies speak TLS 1.2 and 1.3 only"),
            ),
            Some(1 | 2) => p.warn(
                field,
                format!(
                    "{v} is not supported: the proxies speak TLS 1.2 and 1.3 (1.2 is the minimum)"
                ),
            ),
            Some(_) => {}
        }
    }
    tls_suites(p, sidecar);
    if let (Some(min), Some(max)) = (
        rank(&sidecar.tls_min_protocol_version),
        rank(&sidecar.tls_max_protocol_version),
    ) && min > 0
        && max > 0
        && min > max
    {
        p.reject(
            "spec.sidecar.tlsMinProtocolVersion",
            "is above tlsMaxProtocolVersion",
        );
    }
    if !["Localhost", "PodIP"].contains(&sidecar.local_proxy_mode.as_str()) {
        p.reject(
            "spec.sidecar.localProxyMode",
            format!("{:?} is not Localhost or PodIP", sidecar.local_proxy_mode),
        );
    }
    let t = &s.traffic;
    for (name, list) in [
        (
            "outboundIPRangeExclusionList",
            &t.outbound_ip_range_exclusion_list,
        ),
        (
            "outboundIPRangeInclusionList",
            &t.outbound_ip_range_inclusion_list,
        ),
    ] {
        for (i, c) in list.iter().enumerate() {
            cidr(p, format!("spec.traffic.{name}[{i}]"), c);
        }
    }
    for (name, list) in [
        ("outboundPortExclusionList", &t.outbound_port_exclusion_list),
        ("inboundPortExclusionList", &t.inbound_port_exclusion_list),
    ] {
        for (i, n) in list.iter().enumerate() {
            port(p, format!("spec.traffic.{name}[{i}]"), *n);
        }
    }
    duration(
        p,
        "spec.traffic.inboundExternalAuthorization.timeout",
        &t.inbound_external_authorization.timeout,
    );
    if t.inbound_external_authorization.enable {
        p.reject(
            "spec.traffic.inboundExternalAuthorization.enable",
            "external authorization (ext_authz) is not built into osm-proxy: inbound requests would \
             go unchecked by the authorizer you named. Set enable: false and authorize with \
             TrafficTargets (or an authorizer in the application)",
        );
    }
    if ![
        "trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled",
    ]
    .contains(&s.observability.osm_log_level.as_str())
    {
        p.reject(
            "spec.observability.osmLogLevel",
            format!(
                "{:?} is not a log level (trace, debug, info, warn, error, fatal, panic, disabled)",
                s.observability.osm_log_level
            ),
        );
    }
    let c = &s.certificate;
    match c.service_cert_validity() {
        Err(e) => p.reject("spec.certificate.serviceCertValidityDuration", e),
        Ok(d) if d < std::time::Duration::from_secs(60) => p.warn(
            "spec.certificate.serviceCertValidityDuration",
            format!(
                "{:?}: every proxy re-certifies every {} or so; fine for a drill, costly in production",
                c.service_cert_validity_duration,
                humantime::format_duration(d.mul_f64(2.0 / 3.0))
            ),
        ),
        Ok(_) => {}
    }
    if !(2048..=4096).contains(&c.cert_key_bit_size) {
        p.reject(
            "spec.certificate.certKeyBitSize",
            format!("{} is not within 2048-4096", c.cert_key_bit_size),
        );
    }
    if let Some(g) = &c.ingress_gateway {
        duration(
            p,
            "spec.certificate.ingressGateway.validityDuration",
            &g.validity_duration,
        );
    }
}

fn local_ref_kinds(p: &mut Problems, matches: &[LocalRef], allowed: &[&str]) {
    let mut seen = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        if !allowed.contains(&m.kind.as_str()) {
            p.reject(
                format!("spec.matches[{i}].kind"),
                format!("{:?} is not one of {}", m.kind, allowed.join(", ")),
            );
        } else if seen.contains(&m.kind) {
            p.reject(
                format!("spec.matches[{i}].kind"),
                format!("only one {} may be matched", m.kind),
            );
        } else {
            seen.push(m.kind.clone());
        }
    }
}

pub(super) fn egress(e: &EgressSpec, p: &mut Problems) {
    if e.sources.is_empty() {
        p.reject("spec.sources", "at least one source is required");
    }
    for (i, s) in e.sources.iter().enumerate() {
        if s.kind != "ServiceAccount" {
            p.reject(
                format!("spec.sources[{i}].kind"),
                format!("must be ServiceAccount, not {:?}", s.kind),
            );
        }
    }
    if e.ports.is_empty() {
        p.reject("spec.ports", "at least one port is required");
    }
    for (i, pt) in e.ports.iter().enumerate() {
        port(p, format!("spec.ports[{i}].number"), pt.number);
        if !["http", "https", "tcp", "tcp-server-first"].contains(&pt.protocol.as_str()) {
            p.reject(
                format!("spec.ports[{i}].protocol"),
                format!(
                    "{:?} is not http, https, tcp or tcp-server-first",
                    pt.protocol
                ),
            );
        }
    }
    for (i, c) in e.ip_addresses.iter().enumerate() {
        cidr(p, format!("spec.ipAddresses[{i}]"), c);
    }
    for (i, host) in e.hosts.iter().enumerate() {
        let name = host
            .strip_prefix("*.")
            .unwrap_or(host)
            .trim_end_matches('.');
        let dns = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !dns {
            p.reject(
                format!("spec.hosts[{i}]"),
                format!(
                    "{host:?} is not a host name or a wildcard like *.example.com (which matches \
                     every name below example.com)"
                ),
            );
        }
    }
    if e.hosts.is_empty() && e.ip_addresses.is_empty() {
        p.reject("spec", "hosts or ipAddresses must name the destinations");
    }
    if !e.hosts.is_empty()
        && !e.ports.is_empty()
        && e.ports.iter().all(|pt| pt.protocol.starts_with("tcp"))
    {
        p.warn("spec.hosts", "host names only match HTTP (Host) and HTTPS (SNI) traffic; these TCP ports use ipAddresses");
    }
    local_ref_kinds(p, &e.matches, &["HTTPRouteGroup", "UpstreamTrafficSetting"]);
}

pub(super) fn ingress_backend(ib: &IngressBackendSpec, p: &mut Problems) {
    if ib.backends.is_empty() {
        p.reject("spec.backends", "at least one backend is required");
    }
    for (i, b) in ib.backends.iter().enumerate() {
        if b.name.is_empty() {
            p.reject(format!("spec.backends[{i}].name"), "is required");
        }
        port(p, format!("spec.backends[{i}].port.number"), b.port.number);
        if !["http", "https", "tcp", "grpc"].contains(&b.port.protocol.as_str()) {
            p.reject(
                format!("spec.backends[{i}].port.protocol"),
                format!("{:?} is not http, https, tcp or grpc", b.port.protocol),
            );
        }
    }
    if ib.sources.is_empty() {
        p.reject("spec.sources", "at least one source is required");
    }
    for (i, s) in ib.sources.iter().enumerate() {
        match s.kind.as_str() {
            "Service" | "AuthenticatedPrincipal" => {}
            "IPRange" => cidr(p, format!("spec.sources[{i}].name"), &s.name),
            other => p.reject(
                format!("spec.sources[{i}].kind"),
                format!("{other:?} is not Service, IPRange or AuthenticatedPrincipal"),
            ),
        }
    }
    let https = ib
        .backends
        .iter()
        .any(|b| b.port.protocol == "https" && !b.tls.skip_client_cert_validation);
    if https
        && !ib
            .sources
            .iter()
            .any(|s| s.kind == "AuthenticatedPrincipal")
    {
        p.warn("spec.sources", "an https backend that validates client certificates needs an AuthenticatedPrincipal source");
    }
}

pub(super) fn retry(r: &RetrySpec, p: &mut Problems) {
    if r.source.kind != "ServiceAccount" {
        p.reject(
            "spec.source.kind",
            format!("must be ServiceAccount, not {:?}", r.source.kind),
        );
    }
    if r.destinations.is_empty() {
        p.reject("spec.destinations", "at least one destination is required");
    }
    for (i, d) in r.destinations.iter().enumerate() {
        if d.kind != "Service" {
            p.reject(
                format!("spec.destinations[{i}].kind"),
                format!("must be Service, not {:?}", d.kind),
            );
        }
    }
    let policy = &r.retry_policy;
    let mut status_codes = false;
    for name in crate::resilience::retry_conditions(&policy.retry_on) {
        if !crate::resilience::RETRY_CONDITIONS.contains(&name) {
            p.reject(
                "spec.retryPolicy.retryOn",
                crate::resilience::unknown_condition(name),
            );
        }
        status_codes |= name == crate::resilience::RETRIABLE_STATUS_CODES;
    }
    if crate::resilience::retry_conditions(&policy.retry_on)
        .next()
        .is_none()
    {
        p.warn(
            "spec.retryPolicy.retryOn",
            "no condition: nothing is retried",
        );
    }
    for (i, code) in policy.retriable_status_codes.iter().enumerate() {
        if !(100..=599).contains(code) {
            p.reject(
                format!("spec.retryPolicy.retriableStatusCodes[{i}]"),
                format!("{code} is not an HTTP status code"),
            );
        }
    }
    match (status_codes, policy.retriable_status_codes.is_empty()) {
        (true, true) => p.reject(
            "spec.retryPolicy.retriableStatusCodes",
            "retriable-status-codes in retryOn needs the codes to retry here",
        ),
        (false, false) => p.warn(
            "spec.retryPolicy.retriableStatusCodes",
            "has no effect without retriable-status-codes in retryOn",
        ),
        _ => {}
    }
    if !policy.per_try_timeout.is_empty() {
        duration(p, "spec.retryPolicy.perTryTimeout", &policy.per_try_timeout);
    }
    duration(
        p,
        "spec.retryPolicy.retryBackoffBaseInterval",
        &policy.retry_backoff_base_interval,
    );
}

fn http_rate_limit(p: &mut Problems, at: &str, l: &HttpRateLimit) {
    unit(p, &format!("{at}.unit"), &l.unit);
    if l.response_status_code != 0 && !(400..=599).contains(&l.response_status_code) {
        p.reject(
            format!("{at}.responseStatusCode"),
            format!("{} is not within 400-599", l.response_status_code),
        );
    }
    // The proxy builds these as HTTP headers; what it cannot build is
    // refused here, not in every proxy's config.
    for (i, h) in l.response_headers_to_add.iter().enumerate() {
        if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
            p.reject(
                format!("{at}.responseHeadersToAdd[{i}].name"),
                format!("{:?} is not a valid header name", h.name),
            );
        }
        if http::HeaderValue::from_str(&h.value).is_err() {
            p.reject(
                format!("{at}.responseHeadersToAdd[{i}].value"),
                format!("{:?} is not a valid header value", h.value),
            );
        }
    }
}

fn unit(p: &mut Problems, field: &str, u: &str) {
    if !["second", "minute", "hour"].contains(&u) {
        p.reject(field, format!("{u:?} is not second, minute or hour"));
    }
}

pub(super) fn upstream_traffic_setting(u: &UpstreamTrafficSettingSpec, p: &mut Problems) {
    if u.host.is_empty() {
        p.reject("spec.host", "is required");
    }
    if let Some(t) = u.connection_settings.as_ref().and_then(|c| c.tcp.as_ref())
        && let Some(d) = &t.connect_timeout
    {
        duration(p, "spec.connectionSettings.tcp.connectTimeout", d);
    }
    if let Some(local) = u.rate_limit.as_ref().and_then(|r| r.local.as_ref()) {
        if let Some(t) = &local.tcp {
            unit(p, "spec.rateLimit.local.tcp.unit", &t.unit);
        }
        if let Some(h) = &local.http {
            http_rate_limit(p, "spec.rateLimit.local.http", h);
        }
    }
    if let Some(o) = &u.outlier_detection {
        if o.consecutive_5xx == 0 {
            p.reject(
                "spec.outlierDetection.consecutive5xx",
                "must be at least 1 (leave outlierDetection out to turn detection off)",
            );
        }
        for (field, d) in [
            ("spec.outlierDetection.interval", &o.interval),
            (
                "spec.outlierDetection.baseEjectionTime",
                &o.base_ejection_time,
            ),
        ] {
            if let Some(d) = d {
                duration(p, field, d);
            }
        }
        if let Some(pct) = o.max_ejection_percent
            && !(1..=100).contains(&pct)
        {
            p.reject(
                "spec.outlierDetection.maxEjectionPercent",
                format!("{pct} is not within 1-100"),
            );
        }
    }
    for (i, r) in u.http_routes.iter().enumerate() {
        if let Err(e) = crate::regex::full_match_regex(&r.path) {
            p.reject(format!("spec.httpRoutes[{i}].path"), e);
        }
        if let Some(l) = r.rate_limit.as_ref().and_then(|r| r.local.as_ref()) {
            http_rate_limit(p, &format!("spec.httpRoutes[{i}].rateLimit.local"), l);
        }
    }
}
