//! Validation of Gateway API routes for the mesh: what the proxy cannot
//! build or the mesh does not enforce is refused with the field and the
//! reason; what has no effect for mesh routes is a warning.

use std::collections::HashSet;

use http::{HeaderName, HeaderValue};

use super::Problems;
use crate::resources::gateway::{
    BackendRef, Filter, GrpcRouteSpec, HeaderModifier, HttpRouteSpec, ParentRef, PathModifier,
    ValueMatch, grpc_route, http_route, parse_duration,
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

fn header_modifier(at: &str, m: &HeaderModifier, p: &mut Problems) {
    for (what, list) in [("set", &m.set), ("add", &m.add)] {
        for (i, h) in list.iter().enumerate() {
            if HeaderName::from_bytes(h.name.as_bytes()).is_err() {
                p.reject(
                    format!("{at}.{what}[{i}].name"),
                    format!("{:?} is not a header name", h.name),
                );
            }
            if HeaderValue::from_str(&h.value).is_err() {
                p.reject(
                    format!("{at}.{what}[{i}].value"),
                    format!("{:?} is not a header value", h.value),
                );
            }
        }
    }
    for (i, n) in m.remove.iter().enumerate() {
        if HeaderName::from_bytes(n.as_bytes()).is_err() {
            p.reject(
                format!("{at}.remove[{i}]"),
                format!("{n:?} is not a header name"),
            );
        }
    }
}

fn path_modifier(at: &str, m: &PathModifier, prefix_matches: bool, p: &mut Problems) {
    let check = |p: &mut Problems, field: &str, value: &Option<String>| match value {
        Some(v) if v.starts_with('/') || v.is_empty() => {}
        Some(v) => p.reject(
            format!("{at}.{field}"),
            format!("{v:?} does not start with /"),
        ),
        None => p.reject(format!("{at}.{field}"), "is required by this type"),
    };
    match m.kind.as_str() {
        "ReplaceFullPath" => check(p, "replaceFullPath", &m.replace_full_path),
        "ReplacePrefixMatch" => {
            check(p, "replacePrefixMatch", &m.replace_prefix_match);
            if !prefix_matches {
                p.reject(
                    format!("{at}.type"),
                    "ReplacePrefixMatch needs every match of the rule to be a PathPrefix match",
                );
            }
        }
        other => p.reject(
            format!("{at}.type"),
            format!("{other:?} is not ReplaceFullPath or ReplacePrefixMatch"),
        ),
    }
}

fn hostname(at: String, value: &Option<String>, p: &mut Problems) {
    if let Some(h) = value
        && (h.is_empty() || HeaderValue::from_str(h).is_err() || h.contains(['/', ' ', ':']))
    {
        p.reject(at, format!("{h:?} is not a host name"));
    }
}

/// Where a filter is: the kinds it may be, whether its rule's matches are
/// all path prefixes.
struct FilterPlace<'a> {
    allowed: &'a [&'a str],
    prefix_matches: bool,
}

fn filters(at: &str, list: &[Filter], place: &FilterPlace<'_>, p: &mut Problems) {
    let mut seen = HashSet::new();
    for (i, f) in list.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let present = [
            (
                "RequestHeaderModifier",
                "requestHeaderModifier",
                f.request_header_modifier.is_some(),
            ),
            (
                "ResponseHeaderModifier",
                "responseHeaderModifier",
                f.response_header_modifier.is_some(),
            ),
            (
                "RequestRedirect",
                "requestRedirect",
                f.request_redirect.is_some(),
            ),
            ("URLRewrite", "urlRewrite", f.url_rewrite.is_some()),
            ("RequestMirror", "requestMirror", f.request_mirror.is_some()),
            ("ExtensionRef", "extensionRef", f.extension_ref.is_some()),
            ("CORS", "cors", f.cors.is_some()),
            ("ExternalAuth", "externalAuth", f.external_auth.is_some()),
        ];
        match f.kind.as_str() {
            "RequestMirror" | "ExtensionRef" | "CORS" | "ExternalAuth" => {
                p.reject(
                    format!("{at}.type"),
                    format!("{} filters are not supported by the mesh: the route would not do what it says", f.kind),
                );
                continue;
            }
            kind if !place.allowed.contains(&kind) => {
                p.reject(
                    format!("{at}.type"),
                    format!(
                        "{kind:?} is not allowed here ({})",
                        place.allowed.join(", ")
                    ),
                );
                continue;
            }
            _ => {}
        }
        for (kind, field, set) in present {
            if set != (kind == f.kind) {
                let message = if set {
                    "must not be set for this filter type"
                } else {
                    "is required by this filter type"
                };
                p.reject(format!("{at}.{field}"), message);
            }
        }
        if !seen.insert(f.kind.as_str()) {
            p.reject(format!("{at}.type"), format!("{} may appear once", f.kind));
        }
        if let Some(m) = f
            .request_header_modifier
            .as_ref()
            .or(f.response_header_modifier.as_ref())
        {
            let field = if f.request_header_modifier.is_some() {
                "requestHeaderModifier"
            } else {
                "responseHeaderModifier"
            };
            header_modifier(&format!("{at}.{field}"), m, p);
        }
        if let Some(r) = &f.request_redirect {
            let at = format!("{at}.requestRedirect");
            if let Some(s) = &r.scheme
                && s != "http"
                && s != "https"
            {
                p.reject(
                    format!("{at}.scheme"),
                    format!("{s:?} is not http or https"),
                );
            }
            hostname(format!("{at}.hostname"), &r.hostname, p);
            if let Some(port) = r.port {
                super::fields::port(p, format!("{at}.port"), port);
            }
            if let Some(code) = r.status_code
                && ![301, 302, 303, 307, 308].contains(&code)
            {
                p.reject(
                    format!("{at}.statusCode"),
                    format!("{code} is not 301, 302, 303, 307 or 308"),
                );
            }
            if let Some(m) = &r.path {
                path_modifier(&format!("{at}.path"), m, place.prefix_matches, p);
            }
        }
        if let Some(r) = &f.url_rewrite {
            let at = format!("{at}.urlRewrite");
            hostname(format!("{at}.hostname"), &r.hostname, p);
            if let Some(m) = &r.path {
                path_modifier(&format!("{at}.path"), m, place.prefix_matches, p);
            }
        }
    }
    if seen.contains("RequestRedirect") && seen.contains("URLRewrite") {
        p.reject(at, "RequestRedirect and URLRewrite cannot be used together");
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
        allowed: &["RequestHeaderModifier", "ResponseHeaderModifier"],
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
