//! A service's Gateway API route rules, compiled: the matches in the order
//! they are tried, and each rule's filters, weighted backends and timeouts.

use std::{sync::Arc, time::Duration};

use osm_api::v1;

use super::{ConfigError, EndpointSet, Retries, err, optional_ms};
use crate::routing::{
    http_route::{RouteMatches, compile_matches},
    route_filters::{HeaderEdits, Redirect, Rewrite},
    split::WeightedChoice,
};
use crate::{
    resilience::{budget::RetryBudget, retry::RetryRule},
    upstream::EndpointRegistry,
};

/// A service's routes.
#[derive(Debug)]
pub struct Routes {
    pub matches: RouteMatches,
    pub rules: Vec<RouteRule>,
}

/// One rule.
#[derive(Debug)]
pub struct RouteRule {
    pub name: Arc<str>,
    pub request_headers: Vec<HeaderEdits>,
    pub response_headers: Vec<HeaderEdits>,
    /// Answered by the proxy; the backends are not used.
    pub redirect: Option<Redirect>,
    pub rewrite: Option<Rewrite>,
    pub backends: Vec<RouteBackend>,
    /// None when no backend has weight: every request is answered 500.
    pub weights: Option<WeightedChoice>,
    pub request_timeout: Option<Duration>,
    pub backend_request_timeout: Option<Duration>,
    /// The rule's own retries (in place of the service's).
    pub retry: Option<Arc<Retries>>,
    /// Where copies of its requests go.
    pub mirrors: Arc<[Mirror]>,
}

/// A `RequestMirror`: an endpoint set and the share of requests copied
/// there.
#[derive(Debug)]
pub struct Mirror {
    pub endpoints: Arc<EndpointSet>,
    pub per_million: u32,
}

/// A weighted backend of a rule.
#[derive(Debug)]
pub struct RouteBackend {
    /// None: it could not be resolved (its share is answered 500).
    pub endpoints: Option<Arc<EndpointSet>>,
    pub request_headers: Vec<HeaderEdits>,
    pub response_headers: Vec<HeaderEdits>,
}

/// What a list of filters does, split by kind.
#[derive(Default)]
struct Filters {
    request_headers: Vec<HeaderEdits>,
    response_headers: Vec<HeaderEdits>,
    redirect: Option<Redirect>,
    rewrite: Option<Rewrite>,
    mirrors: Vec<Mirror>,
}

fn filters(at: &str, list: &[v1::RouteFilter], sets: &super::Sets) -> Result<Filters, ConfigError> {
    use v1::route_filter::Kind;
    let mut out = Filters::default();
    let lift = |e: (String, String)| err(e.0, e.1);
    for (i, f) in list.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match &f.kind {
            Some(Kind::RequestHeaderModifier(m)) => out
                .request_headers
                .push(HeaderEdits::compile(&at, m).map_err(lift)?),
            Some(Kind::ResponseHeaderModifier(m)) => out
                .response_headers
                .push(HeaderEdits::compile(&at, m).map_err(lift)?),
            Some(Kind::RequestRedirect(r)) => {
                out.redirect = Some(Redirect::compile(&at, r).map_err(lift)?)
            }
            Some(Kind::UrlRewrite(r)) => {
                out.rewrite = Some(Rewrite::compile(&at, r).map_err(lift)?)
            }
            Some(Kind::RequestMirror(m)) => {
                if m.per_million > 1_000_000 {
                    return Err(err(
                        format!("{at}.perMillion"),
                        format!("{} is more than every request (1000000)", m.per_million),
                    ));
                }
                // An unresolved mirror copies nothing (the route's status
                // says why); the request itself is served.
                if let Some(set) = sets.get(m.endpoints.as_str()) {
                    out.mirrors.push(Mirror {
                        endpoints: set.clone(),
                        per_million: m.per_million,
                    });
                }
            }
            None => return Err(err(at, "a filter of no kind".to_string())),
        }
    }
    Ok(out)
}

pub(super) fn build_routes(
    at: &str,
    rules: &[v1::HttpRouteRule],
    sets: &super::Sets,
    registry: &EndpointRegistry,
) -> Result<Option<Routes>, ConfigError> {
    if rules.is_empty() {
        return Ok(None);
    }
    let mut all_matches = Vec::new();
    let mut built = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("{at}.routes[{i}]");
        all_matches.extend(compile_matches(&at, i, &rule.matches).map_err(|e| err(e.0, e.1))?);
        let f = filters(&format!("{at}.filters"), &rule.filters, sets)?;
        let mut backends = Vec::new();
        let mut weights = Vec::new();
        for (j, b) in rule.backends.iter().enumerate() {
            let bf = filters(&format!("{at}.backends[{j}].filters"), &b.filters, sets)?;
            if bf.redirect.is_some() || bf.rewrite.is_some() || !bf.mirrors.is_empty() {
                return Err(err(
                    format!("{at}.backends[{j}].filters"),
                    "a backend takes header modifiers only".to_string(),
                ));
            }
            backends.push(RouteBackend {
                // An unknown key is a backend that could not be resolved:
                // its share is answered 500, the others are served.
                endpoints: sets.get(b.endpoints.as_str()).cloned(),
                request_headers: bf.request_headers,
                response_headers: bf.response_headers,
            });
            weights.push(b.weight);
        }
        let retry = match &rule.retry {
            Some(policy) => Some(Arc::new(Retries {
                rule: RetryRule::from_config(policy).map_err(|m| err(format!("{at}.retry"), m))?,
                // Each rule has its budget, kept across configs by its name.
                budget: registry.budgets.get_or(format!("route:{}", rule.name), || {
                    std::sync::Mutex::new(RetryBudget::default())
                }),
            })),
            None => None,
        };
        built.push(RouteRule {
            name: rule.name.as_str().into(),
            retry,
            mirrors: f.mirrors.into(),
            request_headers: f.request_headers,
            response_headers: f.response_headers,
            redirect: f.redirect,
            rewrite: f.rewrite,
            weights: WeightedChoice::new(&weights),
            backends,
            request_timeout: optional_ms(rule.request_timeout_ms),
            backend_request_timeout: optional_ms(rule.backend_request_timeout_ms),
        });
    }
    Ok(Some(Routes {
        matches: RouteMatches::new(all_matches),
        rules: built,
    }))
}
