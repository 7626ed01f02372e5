//! Validation of route filters (on rules and backends): the kinds the
//! mesh implements, each with the fields its type needs and values the
//! proxy builds.

use std::collections::HashSet;

use http::{HeaderName, HeaderValue};

use super::Problems;
use crate::resources::gateway::{Filter, HeaderModifier, PathModifier, RequestMirror};

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

fn mirror(at: &str, m: &RequestMirror, p: &mut Problems) {
    let b = &m.backend_ref;
    if b.is_service() {
        match b.port {
            None => p.reject(format!("{at}.backendRef.port"), "is required for a Service"),
            Some(port) => super::fields::port(p, format!("{at}.backendRef.port"), port),
        }
    }
    if b.weight.is_some() || !b.filters.is_empty() {
        p.reject(
            format!("{at}.backendRef"),
            "a mirror's backend takes no weight or filters",
        );
    }
    if m.per_million().is_none() {
        p.reject(
            at,
            "percent (0-100) or fraction (numerator <= denominator, denominator > 0), not both",
        );
    }
}

/// Where a filter is: the kinds it may be, whether its rule's matches are
/// all path prefixes.
pub(super) struct FilterPlace<'a> {
    pub allowed: &'a [&'a str],
    pub prefix_matches: bool,
}

pub(super) fn filters(at: &str, list: &[Filter], place: &FilterPlace<'_>, p: &mut Problems) {
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
            "ExtensionRef" | "CORS" | "ExternalAuth" => {
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
        // Several mirrors may copy a request; every other kind acts once.
        if !seen.insert(f.kind.as_str()) && f.kind != "RequestMirror" {
            p.reject(format!("{at}.type"), format!("{} may appear once", f.kind));
        }
        if let Some(m) = &f.request_mirror {
            mirror(&format!("{at}.requestMirror"), m, p);
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
