//! Validation of Gateway API routes for the mesh: what the proxy cannot
//! build or the mesh does not enforce is refused with the field and the
//! reason; what has no effect for mesh routes is a warning.

use std::collections::HashSet;

use http::{HeaderName, HeaderValue};

use super::{
    Problems,
    gateway_filters::{FilterPlace, filters},
};
use crate::resources::gateway::{
    BackendRef, GrpcRouteSpec, HttpRouteSpec, ParentRef, ValueMatch, grpc_route, http_route,
    parse_duration,
};

/// The methods HTTPRoute's schema allows.
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Checks the parents; false when none is a Service: the route is a
/// gateway's, not the mesh's, and nothing else of it is judged here (a
/// gateway controller may implement what the mesh does not).
fn parents(refs: &[ParentRef], hostnames: &[String], p: &mut Problems) -> bool {
    if !refs.iter().any(ParentRef::is_service) {
        p.warn(
            "spec.parentRefs",
            "no parent is a Service (group \"\", kind Service): the mesh does not apply this route",
        );
        return false;
    }
    for (i, r) in refs.iter().enumerate().filter(|(_, r)| r.is_service()) {
        let at = format!("spec.parentRefs[{i}]");
        if r.section_name.is_some() {
            p.reject(
                format!("{at}.sectionName"),
                "a Service parent is narrowed by port, not sectionName",
            );
        }
        if let Some(port) = r.port {
            super::fields::port(p, format!("{at}.port"), port);
        }
    }
    if !hostnames.is_empty() {
        p.warn(
            "spec.hostnames",
            "not used by mesh routes: they apply to requests addressed to the parent Service, whatever their Host",
        );
    }
    true
}

fn rule_names<'a>(names: impl Iterator<Item = Option<&'a String>>, p: &mut Problems) {
    let mut seen = HashSet::new();
    for (i, name) in names.enumerate() {
        if let Some(name) = name
            && !seen.insert(name.as_str())
        {
            p.reject(
                format!("spec.rules[{i}].name"),
                format!("{name:?} names another rule too"),
            );
        }
    }
}

fn regex(p: &mut Problems, field: String, pattern: &str) {
    if let Err(e) = crate::regex::full_match_regex(pattern) {
        p.reject(field, e);
    }
}

fn value_matches(at: &str, list: &[ValueMatch], header: bool, p: &mut Problems) {
    for (j, m) in list.iter().enumerate() {
        let field = format!("{at}[{j}]");
        if header && HeaderName::from_bytes(m.name.as_bytes()).is_err() {
            p.reject(
                format!("{field}.name"),
                format!("{:?} is not a header name", m.name),
            );
        }
        if !header && m.name.is_empty() {
            p.reject(format!("{field}.name"), "is required");
        }
        match m.kind.as_deref() {
            None | Some("Exact") => {}
            Some("RegularExpression") => regex(p, format!("{field}.value"), &m.value),
            Some(other) => p.reject(
                format!("{field}.type"),
                format!("{other:?} is not Exact or RegularExpression"),
            ),
        }
    }
}

fn http_match(at: &str, m: &http_route::Match, p: &mut Problems) {
    if let Some(path) = &m.path {
        let value = path.value.as_deref().unwrap_or("/");
        match path.kind.as_deref() {
            None | Some("PathPrefix") | Some("Exact") => {
                if !value.starts_with('/') {
                    p.reject(
                        format!("{at}.path.value"),
                        format!("{value:?} does not start with /"),
                    );
                }
            }
            Some("RegularExpression") => regex(p, format!("{at}.path.value"), value),
            Some(other) => p.reject(
                format!("{at}.path.type"),
                format!("{other:?} is not Exact, PathPrefix or RegularExpression"),
            ),
        }
    }
    value_matches(&format!("{at}.headers"), &m.headers, true, p);
    value_matches(&format!("{at}.queryParams"), &m.query_params, false, p);
    if let Some(method) = &m.method
        && !METHODS.contains(&method.as_str())
    {
        p.reject(
            format!("{at}.method"),
            format!("{method:?} is not one of {}", METHODS.join(", ")),
        );
    }
}

fn backends(at: &str, list: &[BackendRef], p: &mut Problems) {
    let place = FilterPlace {
        allowed: &["RequestHeaderModifier", "ResponseHeaderModifier"],
        prefix_matches: false,
    };
    for (i, b) in list.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if b.is_service() {
            match b.port {
                None => p.reject(format!("{at}.port"), "is required for a Service backend"),
                Some(port) => super::fields::port(p, format!("{at}.port"), port),
            }
        }
        if b.weight.is_some_and(|w| w > 1_000_000) {
            p.reject(format!("{at}.weight"), "must be at most 1000000");
        }
        filters(&format!("{at}.filters"), &b.filters, &place, p);
    }
}

fn timeouts(at: &str, t: &crate::resources::gateway::Timeouts, p: &mut Problems) {
    let parse = |p: &mut Problems, field: &str, v: &Option<String>| {
        let v = v.as_ref()?;
        parse_duration(v)
            .map_err(|e| p.reject(format!("{at}.{field}"), e))
            .ok()
    };
    let request = parse(p, "request", &t.request);
    let backend = parse(p, "backendRequest", &t.backend_request);
    if let (Some(r), Some(b)) = (request, backend)
        && !r.is_zero()
        && (b.is_zero() || b > r)
    {
        p.reject(
            format!("{at}.backendRequest"),
            "must not be longer than timeouts.request",
        );
    }
}

fn retry(at: &str, r: &crate::resources::gateway::Retry, p: &mut Problems) {
    for (i, code) in r.codes.iter().enumerate() {
        if !(400..=599).contains(code) {
            p.reject(
                format!("{at}.codes[{i}]"),
                format!("{code} is not a 4xx or 5xx status"),
            );
        }
    }
    if r.attempts.is_some_and(|a| a > 10) {
        p.reject(
            format!("{at}.attempts"),
            "at most 10 retries (each one is a full request to a backend)",
        );
    }
    if let Some(b) = &r.backoff
        && let Err(e) = parse_duration(b)
    {
        p.reject(format!("{at}.backoff"), e);
    }
}

pub(super) fn http_route(spec: &HttpRouteSpec, p: &mut Problems) {
    if !parents(&spec.parent_refs, &spec.hostnames, p) {
        return;
    }
    rule_names(spec.rules.iter().map(|r| r.name.as_ref()), p);
    let allowed = [
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestRedirect",
        "URLRewrite",
        "RequestMirror",
    ];
    for (i, rule) in spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        for (j, m) in rule.matches.iter().enumerate() {
            http_match(&format!("{at}.matches[{j}]"), m, p);
        }
        let prefix_matches = rule.matches.iter().all(|m| {
            m.path
                .as_ref()
                .is_none_or(|p| p.kind.as_deref().is_none_or(|k| k == "PathPrefix"))
        });
        filters(
            &format!("{at}.filters"),
            &rule.filters,
            &FilterPlace {
                allowed: &allowed,
                prefix_matches,
            },
            p,
        );
        backends(&format!("{at}.backendRefs"), &rule.backend_refs, p);
        if let Some(t) = &rule.timeouts {
            timeouts(&format!("{at}.timeouts"), t, p);
        }
        if let Some(r) = &rule.retry {
            retry(&format!("{at}.retry"), r, p);
        }
        if rule.session_persistence.is_some() {
            p.reject(
                format!("{at}.sessionPersistence"),
                "not supported by the mesh",
            );
        }
    }
}

fn grpc_match(at: &str, m: &grpc_route::Match, p: &mut Problems) {
    if let Some(method) = &m.method {
        let at = format!("{at}.method");
        let regex_kind = match method.kind.as_deref() {
            None | Some("Exact") => false,
            Some("RegularExpression") => true,
            Some(other) => {
                p.reject(
                    format!("{at}.type"),
                    format!("{other:?} is not Exact or RegularExpression"),
                );
                false
            }
        };
        if method.service.is_none() && method.method.is_none() {
            p.reject(&at, "names a service, a method or both");
        }
        for (field, value) in [("service", &method.service), ("method", &method.method)] {
            let Some(value) = value else { continue };
            if regex_kind {
                regex(p, format!("{at}.{field}"), value);
            } else if value.is_empty()
                || value.contains(['/', ' '])
                || HeaderValue::from_str(value).is_err()
            {
                p.reject(
                    format!("{at}.{field}"),
                    format!("{value:?} is not a gRPC {field} name"),
                );
            }
        }
    }
    value_matches(&format!("{at}.headers"), &m.headers, true, p);
}

pub(super) fn grpc_route(spec: &GrpcRouteSpec, p: &mut Problems) {
    if !parents(&spec.parent_refs, &spec.hostnames, p) {
        return;
    }
    rule_names(spec.rules.iter().map(|r| r.name.as_ref()), p);
    let place = FilterPlace {
        allowed: &[
            "RequestHeaderModifier",
            "ResponseHeaderModifier",
            "RequestMirror",
        ],
        prefix_matches: false,
    };
    for (i, rule) in spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        for (j, m) in rule.matches.iter().enumerate() {
            grpc_match(&format!("{at}.matches[{j}]"), m, p);
        }
        filters(&format!("{at}.filters"), &rule.filters, &place, p);
        backends(&format!("{at}.backendRefs"), &rule.backend_refs, p);
        if rule.session_persistence.is_some() {
            p.reject(
                format!("{at}.sessionPersistence"),
                "not supported by the mesh",
            );
        }
    }
}
