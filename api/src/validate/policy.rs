//! Validation of the `policy.openservicemesh.io` kinds.

use super::{
    Problems,
    fields::{cidr, duration, port},
};
use crate::resources::policy::*;

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
        let dns = super::fields::is_dns_name(name);
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
