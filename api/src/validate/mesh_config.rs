//! Validation of MeshConfig: values the mesh can use, and combinations
//! that still let proxies talk (fields it does not act on are in
//! [`super::no_effect`]).

use super::{
    Problems,
    fields::{cidr, duration, port},
};
use crate::{
    compat::MESH_CONFIG_NAME,
    resources::{Custom, mesh_config::*},
};

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
    tracing(p, &s.observability.tracing);
    if !["json", "text"].contains(&s.observability.access_log.format.as_str()) {
        p.reject(
            "spec.observability.accessLog.format",
            format!(
                "{:?} is not json or text",
                s.observability.access_log.format
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

/// The collector and sampling of `observability.tracing`; checked whether
/// or not it is enabled, so turning it on later cannot fail.
fn tracing(p: &mut Problems, t: &Tracing) {
    let at = "spec.observability.tracing";
    if !(0.0..=1.0).contains(&t.sampled_fraction) {
        p.reject(
            format!("{at}.sampledFraction"),
            format!(
                "{} is not within 0 and 1 (0.01 traces one request in a hundred)",
                t.sampled_fraction
            ),
        );
    }
    let host_ok =
        t.address.parse::<std::net::IpAddr>().is_ok() || super::fields::is_dns_name(&t.address);
    if !t.address.is_empty() && !host_ok {
        p.reject(
            format!("{at}.address"),
            format!(
                "{:?} is not a host name or address (e.g. jaeger.osm-system.svc.cluster.local)",
                t.address
            ),
        );
    }
    if t.enable && t.port == 0 {
        p.reject(
            format!("{at}.port"),
            "0 is not a port (Zipkin listens on 9411)",
        );
    }
    if !t.endpoint.starts_with('/')
        || http::uri::PathAndQuery::try_from(t.endpoint.as_str()).is_err()
    {
        p.reject(
            format!("{at}.endpoint"),
            format!(
                "{:?} is not a path (/api/v2/spans for Zipkin, /v1/traces for OTLP)",
                t.endpoint
            ),
        );
    }
}
