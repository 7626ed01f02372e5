//! A service's Gateway API route rule applied to one request: the rule it
//! matches, that rule's redirect (answered by the proxy), header
//! modifiers and URL rewrite, and the weighted backend its tries go to.

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::attempts::Plan;
use crate::{
    answer::{ProxyBody, error_response},
    config::{OutboundService, Routes},
    http_util::authority,
    policy::HttpRequestView,
    routing::{http_route::PathMatch, route_filters::replace_path},
};

/// What the rules decided.
pub enum Ruled {
    /// Send the (modified) request as planned; the response then gets the
    /// rule's and the backend's response header edits.
    Send {
        req: Request<Incoming>,
        plan: Plan,
        rule: usize,
        backend: usize,
    },
    /// The proxy answers itself (a redirect, no matching rule, no backend).
    Answer {
        response: Response<ProxyBody>,
        error: Option<String>,
    },
}

/// Applies `routes` to `req` for `service`; `random` picks the backend.
pub fn apply(
    service: &OutboundService,
    routes: &Routes,
    mut req: Request<Incoming>,
    random: u64,
) -> Ruled {
    let Some(matched) = routes.matches.select(&HttpRequestView::of(&req)) else {
        let message = format!(
            "osm-proxy: no route rule of {} matches {} {}",
            service.key,
            req.method(),
            req.uri().path()
        );
        return Ruled::Answer {
            response: error_response(StatusCode::NOT_FOUND, &message),
            error: Some(message),
        };
    };
    let prefix = match &matched.path {
        PathMatch::Prefix(p) => p.clone(),
        _ => String::new(),
    };
    let index = matched.rule;
    let rule = &routes.rules[index];
    if let Some(redirect) = &rule.redirect {
        let host = authority(&req)
            .map(|a| crate::routing::normalize_authority(a, service.port))
            .and_then(|h| h.map(|(host, _)| host.into_owned()))
            .unwrap_or_else(|| service.name.to_string());
        let location = redirect.location(
            ("http", &host, service.port),
            req.uri().path(),
            req.uri().query(),
            &prefix,
        );
        let mut response = Response::new(ProxyBody::Right(Default::default()));
        *response.status_mut() = redirect.status;
        if let Ok(v) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, v);
        }
        return Ruled::Answer {
            response,
            error: None,
        };
    }
    for edits in &rule.request_headers {
        edits.apply(req.headers_mut());
    }
    if let Some(rewrite) = &rule.rewrite {
        if let Some(host) = &rewrite.hostname {
            req.headers_mut().insert(header::HOST, host.clone());
        }
        if let Some(path) = &rewrite.path {
            let new_path = replace_path(req.uri().path(), path, &prefix);
            let target = match req.uri().query() {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path,
            };
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = target.parse().ok();
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    let chosen = rule
        .weights
        .as_ref()
        .map(|w| w.pick(random))
        .and_then(|i| Some((i, rule.backends.get(i)?.endpoints.clone()?)));
    let Some((backend, set)) = chosen else {
        let message = format!(
            "osm-proxy: route rule {} has no backend to send to (none, weight 0, or not resolved)",
            rule.name
        );
        return Ruled::Answer {
            response: error_response(StatusCode::INTERNAL_SERVER_ERROR, &message),
            error: Some(message),
        };
    };
    for edits in &rule.backends[backend].request_headers {
        edits.apply(req.headers_mut());
    }
    Ruled::Send {
        req,
        plan: Plan {
            backend: Some(set),
            request_timeout: rule.request_timeout.or(service.request_timeout),
            backend_request_timeout: rule
                .backend_request_timeout
                .or(service.backend_request_timeout),
            retry: rule.retry.clone(),
            mirrors: (!rule.mirrors.is_empty()).then(|| rule.mirrors.clone()),
        },
        rule: index,
        backend,
    }
}

/// The response edits of the rule and backend a request was sent by.
pub fn edit_response(routes: &Routes, rule: usize, backend: usize, headers: &mut http::HeaderMap) {
    let Some(rule) = routes.rules.get(rule) else {
        return;
    };
    if let Some(b) = rule.backends.get(backend) {
        for edits in &b.response_headers {
            edits.apply(headers);
        }
    }
    for edits in &rule.response_headers {
        edits.apply(headers);
    }
}
