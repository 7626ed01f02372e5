//! Inbound ports: their authorizations (sources, and all traffic or HTTP
//! matches), plaintext sources and local rate limits.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use osm_api::v1;

use super::{Build, ConfigError, compile_matches, egress::parse_cidr, err, port_of, protocol_of};
use crate::{
    identity::SpiffeId,
    policy::{Authorization, InboundPolicy, Traffic, rate_limit::RateLimiter},
};

pub(super) fn build_inbound(
    ports: impl IntoIterator<Item = v1::InboundPort>,
    build: &mut Build,
) -> Result<HashMap<u16, InboundPolicy>, ConfigError> {
    let mut out = HashMap::new();
    for (i, p) in ports.into_iter().enumerate() {
        let at = format!("inbound[{i}]");
        let port = port_of(&format!("{at}.port"), p.port);
        let built = port.clone().and_then(|port| build_port(&at, port, &p));
        let policy = match build.keep(built)? {
            Some(policy) => policy,
            // Fail-closed: a port whose policy cannot be built denies every
            // peer (its number must be known to be closed at all).
            None => match port {
                Ok(port) => {
                    let why = build.rejected.last().map(ToString::to_string);
                    InboundPolicy::broken(port, why.unwrap_or_default())
                }
                Err(_) => continue,
            },
        };
        let duplicate = (out.contains_key(&policy.port)).then(|| {
            err(
                format!("{at}.port"),
                format!("port {} is listed twice", policy.port),
            )
        });
        if let Some(e) = duplicate {
            build.keep::<()>(Err(e))?;
            continue;
        }
        out.insert(policy.port, policy);
    }
    Ok(out)
}

/// One inbound port's policy.
fn build_port(at: &str, port: u16, p: &v1::InboundPort) -> Result<InboundPolicy, ConfigError> {
    let protocol = protocol_of(&format!("{at}.protocol"), p.protocol)?;
    let mut authorizations = Vec::new();
    for (j, a) in p.authorizations.iter().enumerate() {
        authorizations.push(build_authorization(
            &format!("{at}.authorizations[{j}]"),
            a,
        )?);
    }
    let mut plaintext_sources = Vec::new();
    for (j, cidr) in p.plaintext_sources.iter().enumerate() {
        plaintext_sources.push(parse_cidr(cidr).ok_or_else(|| {
            err(
                format!("{at}.plaintextSources[{j}]"),
                format!("{cidr:?} is not an IP address or CIDR"),
            )
        })?);
    }
    let mut policy = InboundPolicy::new(port, protocol, authorizations, plaintext_sources);
    policy.limits = build_rate_limits(at, p)?;
    Ok(policy)
}

fn build_http_limit(
    at: &str,
    spec: &v1::HttpRateLimit,
) -> Result<Option<crate::policy::HttpLimit>, ConfigError> {
    let Some(limiter) = spec.bucket.as_ref().and_then(RateLimiter::new) else {
        return Ok(None);
    };
    let status = match spec.status_code {
        0 => http::StatusCode::TOO_MANY_REQUESTS,
        code => http::StatusCode::from_u16(u16::try_from(code).unwrap_or(0))
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .ok_or_else(|| {
                err(
                    format!("{at}.statusCode"),
                    format!("{code} is not within 400-599"),
                )
            })?,
    };
    let mut headers = Vec::new();
    for (name, value) in &spec.response_headers {
        let field = format!("{at}.responseHeaders[{name:?}]");
        let n = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| err(&field, "not a valid header name"))?;
        let v = http::HeaderValue::from_str(value)
            .map_err(|_| err(&field, "not a valid header value"))?;
        headers.push((n, v));
    }
    Ok(Some(crate::policy::HttpLimit {
        limiter: Arc::new(limiter),
        status,
        headers,
    }))
}

fn build_rate_limits(
    at: &str,
    p: &v1::InboundPort,
) -> Result<crate::policy::RateLimits, ConfigError> {
    let mut limits = crate::policy::RateLimits {
        tcp: p
            .tcp_rate_limit
            .as_ref()
            .and_then(RateLimiter::new)
            .map(Arc::new),
        http: match &p.http_rate_limit {
            Some(spec) => build_http_limit(&format!("{at}.httpRateLimit"), spec)?,
            None => None,
        },
        routes: Vec::new(),
    };
    for (i, route) in p.route_rate_limits.iter().enumerate() {
        let rat = format!("{at}.routeRateLimits[{i}]");
        let re = crate::policy::matcher::full_match_regex(&route.path_regex)
            .map_err(|m| err(format!("{rat}.pathRegex"), m))?;
        if let Some(spec) = &route.limit
            && let Some(limit) = build_http_limit(&format!("{rat}.limit"), spec)?
        {
            limits.routes.push((re, limit));
        }
    }
    Ok(limits)
}

pub(super) fn build_authorization(
    at: &str,
    a: &v1::Authorization,
) -> Result<Authorization, ConfigError> {
    let mut sources = HashSet::new();
    for (k, s) in a.sources.iter().enumerate() {
        let id: SpiffeId = s.parse().map_err(|e: crate::identity::SpiffeIdError| {
            err(format!("{at}.sources[{k}]"), e.to_string())
        })?;
        sources.insert(id);
    }
    let traffic = match &a.traffic {
        None => Traffic::Nothing,
        Some(v1::authorization::Traffic::All(_)) => Traffic::All,
        Some(v1::authorization::Traffic::Http(routes)) => Traffic::Http(compile_matches(
            &format!("{at}.http.matches"),
            &routes.matches,
        )?),
    };
    Ok(Authorization {
        name: a.name.as_str().into(),
        sources,
        traffic,
    })
}
