//! Route rules as the proxy receives them: matches, filters, weighted
//! backends (each a Service port's endpoint set) and timeouts.

use std::collections::BTreeMap;

use super::{
    MeshRoute,
    matches::{grpc_match, http_match},
    resolve_backend,
};
use crate::{
    compile::{Index, endpoints::endpoint_set},
    resources::gateway::{self, BackendRef, Filter, parse_duration},
    v1,
};

/// The rules of `routes`, in order, resolving backends into `sets`.
pub(crate) fn compile_rules(
    index: &Index,
    routes: &[MeshRoute<'_>],
    sets: &mut BTreeMap<String, v1::EndpointSet>,
    warnings: &mut Vec<String>,
) -> Vec<v1::HttpRouteRule> {
    let mut out = Vec::new();
    for route in routes {
        let route_ns = route.namespace();
        let name = |i: usize, rule_name: &Option<String>| {
            let rule = rule_name.clone().unwrap_or_else(|| i.to_string());
            format!("{route_ns}/{}/{rule}", route.name())
        };
        let mut resolve = |b: &BackendRef| resolve_into(index, route, b, sets, warnings);
        let filters = |list: &[Filter], resolve: &mut dyn FnMut(&BackendRef) -> String| {
            list.iter()
                .filter_map(|f| filter(f, resolve))
                .collect::<Vec<_>>()
        };
        let backends = |refs: &[BackendRef], resolve: &mut dyn FnMut(&BackendRef) -> String| {
            refs.iter()
                .map(|b| v1::RouteBackend {
                    endpoints: resolve(b),
                    weight: b.weight.unwrap_or(1),
                    filters: b
                        .filters
                        .iter()
                        .filter_map(|f| filter(f, resolve))
                        .collect(),
                })
                .collect::<Vec<_>>()
        };
        match route {
            MeshRoute::Http(r) => {
                for (i, rule) in r.spec.rules.iter().enumerate() {
                    let timeouts = rule.timeouts.clone().unwrap_or_default();
                    out.push(v1::HttpRouteRule {
                        name: name(i, &rule.name),
                        matches: rule.matches.iter().map(http_match).collect(),
                        filters: filters(&rule.filters, &mut resolve),
                        backends: backends(&rule.backend_refs, &mut resolve),
                        request_timeout_ms: timeout(timeouts.request.as_deref()),
                        backend_request_timeout_ms: timeout(timeouts.backend_request.as_deref()),
                        retry: rule.retry.as_ref().map(retry),
                    });
                }
            }
            MeshRoute::Grpc(r) => {
                for (i, rule) in r.spec.rules.iter().enumerate() {
                    out.push(v1::HttpRouteRule {
                        name: name(i, &rule.name),
                        matches: rule.matches.iter().map(grpc_match).collect(),
                        filters: filters(&rule.filters, &mut resolve),
                        backends: backends(&rule.backend_refs, &mut resolve),
                        request_timeout_ms: 0,
                        backend_request_timeout_ms: 0,
                        retry: None,
                    });
                }
            }
        }
    }
    out
}

/// A Gateway API timeout in milliseconds: 0 when not set (the service's),
/// and "0s" (no timeout) as the largest the wire carries.
fn timeout(value: Option<&str>) -> u32 {
    match value.map(parse_duration) {
        Some(Ok(d)) if d.is_zero() => u32::MAX,
        Some(Ok(d)) => u32::try_from(d.as_millis()).unwrap_or(u32::MAX),
        _ => 0,
    }
}

/// A rule's `retry` (GEP-1731): connection failures and resets are
/// always retried, the listed codes too; `attempts` retries (default 1)
/// with `backoff` as the base of the jittered backoff.
fn retry(r: &gateway::Retry) -> v1::RetryPolicy {
    let mut retry_on = vec!["connect-failure".to_string(), "reset".to_string()];
    if !r.codes.is_empty() {
        retry_on.push("retriable-status-codes".into());
    }
    let backoff = r
        .backoff
        .as_deref()
        .and_then(|b| parse_duration(b).ok())
        .map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
    v1::RetryPolicy {
        retry_on,
        num_retries: r.attempts.unwrap_or(1),
        per_try_timeout_ms: 0,
        backoff_base_ms: backoff,
        retriable_status_codes: r.codes.clone(),
    }
}

fn header_modifier(m: &gateway::HeaderModifier) -> v1::HeaderModifier {
    let headers = |hs: &[gateway::Header]| {
        hs.iter()
            .map(|h| v1::Header {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect()
    };
    v1::HeaderModifier {
        set: headers(&m.set),
        add: headers(&m.add),
        remove: m.remove.clone(),
    }
}

/// (full path, prefix replacement) of a path modifier.
fn path_modifier(p: Option<&gateway::PathModifier>) -> (String, String) {
    match p {
        Some(p) if p.kind == "ReplaceFullPath" => (
            p.replace_full_path.clone().unwrap_or_default(),
            String::new(),
        ),
        Some(p) => {
            // An empty replacement strips the prefix: "/" says the same
            // and the wire's empty string means "no replacement".
            let prefix = p.replace_prefix_match.clone().unwrap_or_default();
            let prefix = if prefix.is_empty() {
                "/".into()
            } else {
                prefix
            };
            (String::new(), prefix)
        }
        None => (String::new(), String::new()),
    }
}

/// A filter as the proxy receives it (a mirror's backend resolved by
/// `resolve`); None for kinds validation refuses (they never reach the
/// compiler).
fn filter(f: &Filter, resolve: &mut dyn FnMut(&BackendRef) -> String) -> Option<v1::RouteFilter> {
    use v1::route_filter::Kind;
    let kind = match f.kind.as_str() {
        "RequestHeaderModifier" => {
            Kind::RequestHeaderModifier(header_modifier(f.request_header_modifier.as_ref()?))
        }
        "ResponseHeaderModifier" => {
            Kind::ResponseHeaderModifier(header_modifier(f.response_header_modifier.as_ref()?))
        }
        "RequestRedirect" => {
            let r = f.request_redirect.as_ref()?;
            let (full_path, prefix_match) = path_modifier(r.path.as_ref());
            Kind::RequestRedirect(v1::RequestRedirect {
                scheme: r.scheme.clone().unwrap_or_default(),
                hostname: r.hostname.clone().unwrap_or_default(),
                full_path,
                prefix_match,
                port: r.port.unwrap_or(0),
                status_code: r.status_code.unwrap_or(302),
            })
        }
        "URLRewrite" => {
            let r = f.url_rewrite.as_ref()?;
            let (full_path, prefix_match) = path_modifier(r.path.as_ref());
            Kind::UrlRewrite(v1::UrlRewrite {
                hostname: r.hostname.clone().unwrap_or_default(),
                full_path,
                prefix_match,
            })
        }
        "RequestMirror" => {
            let m = f.request_mirror.as_ref()?;
            Kind::RequestMirror(v1::RequestMirror {
                endpoints: resolve(&m.backend_ref),
                per_million: m.per_million()?,
            })
        }
        _ => return None,
    };
    Some(v1::RouteFilter { kind: Some(kind) })
}

/// The key of the endpoint set a backendRef names, added to `sets`; empty
/// (with a warning) when it does not resolve.
fn resolve_into(
    index: &Index,
    route: &MeshRoute<'_>,
    b: &BackendRef,
    sets: &mut BTreeMap<String, v1::EndpointSet>,
    warnings: &mut Vec<String>,
) -> String {
    match resolve_backend(index, route, b) {
        Ok((service, sp)) => {
            let set = endpoint_set(index, service, sp);
            let key = set.key.clone();
            sets.entry(key.clone()).or_insert(set);
            key
        }
        Err(unresolved) => {
            warnings.push(format!(
                "{}: {} (its share of requests is answered 500; a mirror to it sends nothing)",
                route.describe(),
                unresolved.message
            ));
            String::new()
        }
    }
}
