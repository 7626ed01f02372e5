//! Per-request routing: service lookup, split, endpoint choice, forwarding.

use std::{net::SocketAddr, sync::Arc};

use http::{Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;

use crate::{
    answer::{ProxyBody, error_response},
    http_util::authority,
    hygiene,
    outbound::{
        attempts::{self, Sent},
        rules::{self, Ruled},
    },
    policy::HttpRequestView,
    refusal::{Layer, Refusal},
    resilience::breaker::{Breaker, Overflow},
    routing::{service_by_addr, service_by_authority},
    state::Shared,
    telemetry::{
        access_log::HttpEntry,
        body_bytes::{LineStart, Logged, when_sent},
        tally::counted,
        trace::{ActiveSpan, Kind},
    },
    upstream::{Affinity, ForwardError, forward},
};

/// What every request on one outbound connection shares.
#[derive(Debug, Clone)]
pub struct OutboundContext(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    orig_dst: Option<SocketAddr>,
    /// The upstream connections this connection keeps (None while the
    /// proxy multiplexes HTTP/1.1 over HTTP/2: then the pool shares one
    /// connection per peer proxy).
    affinity: Option<Arc<Affinity>>,
}

impl OutboundContext {
    pub fn new(shared: Arc<Shared>, orig_dst: Option<SocketAddr>) -> Self {
        let affinity = (!shared.multiplexes_http1()).then(Arc::default);
        Self(Arc::new(Inner {
            shared,
            orig_dst,
            affinity,
        }))
    }
}

/// Where a request went, for metrics and the log.
struct Outcome {
    response: Response<ProxyBody>,
    service: Option<Arc<str>>,
    endpoint: Option<Arc<crate::upstream::EndpointHandle>>,
    error: Option<String>,
    /// The access log's response flag; `-` for none.
    flag: &'static str,
}

impl Outcome {
    fn refused(refusal: &Refusal, service: Option<Arc<str>>) -> Self {
        Self {
            response: refusal.response(),
            service,
            endpoint: None,
            error: Some(refusal.message()),
            flag: refusal.response_flag(),
        }
    }

    fn failed(
        status: StatusCode,
        message: String,
        service: Option<Arc<str>>,
        flag: &'static str,
    ) -> Self {
        Self {
            response: error_response(status, &message),
            service,
            endpoint: None,
            error: Some(message),
            flag,
        }
    }
}

pub async fn handle(
    ctx: OutboundContext,
    mut req: Request<Incoming>,
) -> Response<Logged<ProxyBody>> {
    let started = tokio::time::Instant::now();
    let ctx = &ctx.0;
    let line = LineStart::of(&ctx.shared.access_log, &mut req, started);
    let span = ctx.shared.tracer.start(Kind::Client, &mut req);
    let outcome = route(ctx, req).await;
    let code = outcome.response.status().as_u16();
    // One clock read for the duration and the series' last use.
    let ended = tokio::time::Instant::now();
    let millis = (ended - started).as_secs_f64() * 1000.0;
    if let Some(endpoint) = &outcome.endpoint {
        ctx.shared.metrics.record_request(
            endpoint.metrics(),
            &endpoint.spec,
            code,
            millis,
            ended.into_std(),
        );
    }
    if let Some(span) = span {
        finish_span(&ctx.shared, span, code, &outcome);
    }
    let log = &ctx.shared.access_log;
    when_sent(line, log, outcome.response, |parts| HttpEntry {
        response_flags: outcome.flag,
        peer_identity: outcome
            .endpoint
            .as_ref()
            .and_then(|e| e.spec.identity.as_ref())
            .map(crate::identity::SpiffeId::shared),
        response_code: code,
        upstream_service: outcome.service.clone(),
        upstream_host: outcome.endpoint.as_ref().map(|e| e.addr()),
        error: outcome.error,
        ..HttpEntry::of(parts, "outbound")
    })
}

/// Records the client span: the service, the endpoint chosen, the
/// identity it had to prove, and the destination's workload.
fn finish_span(shared: &Shared, span: ActiveSpan, code: u16, outcome: &Outcome) {
    let spec = outcome.endpoint.as_ref().map(|e| &e.spec);
    let mut tags = Vec::new();
    if let Some(service) = &outcome.service {
        tags.push(("upstream.service", service.to_string()));
    }
    if let Some(spec) = spec {
        tags.extend([
            ("destination_namespace", spec.namespace.to_string()),
            ("destination_kind", spec.workload_kind.to_string()),
            ("destination_name", spec.workload_name.to_string()),
            ("destination_pod", spec.pod.to_string()),
        ]);
        if let Some(identity) = &spec.identity {
            tags.push(("peer.identity", identity.to_string()));
        }
    }
    if let Some(error) = &outcome.error {
        tags.push(("osm.error", error.clone()));
    }
    shared.tracer.finish(span, code, spec.map(|s| s.addr), tags);
}

/// A request an Egress rule lets through by its Host: to an address the
/// host resolves to (the original destination when it is one).
struct EgressRoute {
    dst: SocketAddr,
    host: String,
    rule: Arc<str>,
    breaker: Option<Arc<Breaker>>,
}

fn egress(
    ctx: &Inner,
    snapshot: &crate::config::Snapshot,
    req: &Request<Incoming>,
) -> Option<EgressRoute> {
    let dst = ctx.orig_dst?;
    let (host, _) = crate::routing::normalize_authority(authority(req)?, dst.port())?;
    let view = HttpRequestView::of(req);
    let rule = crate::routing::egress::allows_http(&snapshot.egress, &host, dst.port(), &view)?;
    Some(EgressRoute {
        dst,
        host: host.into_owned(),
        rule: format!("egress:{}", rule.name).into(),
        breaker: rule.breaker.clone(),
    })
}

impl EgressRoute {
    /// The rule's circuit breaker turned the request away.
    fn overflowed(self, ctx: &Inner, overflow: Overflow) -> Outcome {
        let refusal = Refusal::Overflow {
            layer: Layer::Http,
            upstream: self.rule.clone(),
            overflow,
        };
        Outcome::refused(&refusal.record(&ctx.shared.metrics), Some(self.rule))
    }

    async fn forward(self, ctx: &Inner, req: Request<Incoming>) -> Outcome {
        let Some(target) = ctx.shared.resolver.pin(&self.host, self.dst).await else {
            let refusal = Refusal::EgressHostUnresolved {
                layer: Layer::Http,
                host: self.host,
            };
            return Outcome::refused(&refusal.record(&ctx.shared.metrics), Some(self.rule));
        };
        let _place = match Breaker::admit(self.breaker.as_deref()).await {
            Ok(place) => place,
            Err(overflow) => return self.overflowed(ctx, overflow),
        };
        let client = ctx.shared.plain_client(
            target,
            req.version() == http::Version::HTTP_2,
            self.breaker.as_ref(),
            None,
        );
        match forward(&client, counted(req).map(Either::Left), target).await {
            Ok(response) => Outcome {
                response: response.map(Either::Left),
                service: Some(self.rule),
                endpoint: None,
                error: None,
                flag: "-",
            },
            Err(ForwardError::Overflow { overflow, .. }) => self.overflowed(ctx, overflow),
            Err(e) => Outcome::failed(
                e.status(),
                format!("osm-proxy: {target}: {e}"),
                Some(self.rule),
                e.response_flag(),
            ),
        }
    }
}

async fn route(ctx: &Inner, mut req: Request<Incoming>) -> Outcome {
    // One authority for routing, egress rules and the upstream alike.
    if let Err(malformed) = hygiene::check_authority(&req) {
        let refusal = Refusal::BadRequest {
            port: None,
            reason: malformed.to_string(),
        };
        return Outcome::refused(&refusal.record(&ctx.shared.metrics), None);
    }
    hygiene::restrict_upgrade(req.headers_mut());
    let snapshot = ctx.shared.config();
    let by_addr = ctx.orig_dst.and_then(|a| service_by_addr(&snapshot, a));
    let Some(service) =
        by_addr.or_else(|| authority(&req).and_then(|a| service_by_authority(&snapshot, a)))
    else {
        if let Some(outcome) = egress(ctx, &snapshot, &req) {
            drop(snapshot);
            return outcome.forward(ctx, req).await;
        }
        let refusal = Refusal::NoRoute {
            layer: Layer::Http,
            target: authority(&req).map(str::to_string),
            egress: snapshot.mesh.egress,
        };
        return Outcome::refused(&refusal.record(&ctx.shared.metrics), None);
    };
    let service = service.clone();
    drop(snapshot);
    let (req, plan, edits) = match &service.routes {
        None => {
            let plan = attempts::Plan::of(&service);
            (req, plan, None)
        }
        Some(routes) => match rules::apply(&service, routes, req, fastrand::u64(..)) {
            Ruled::Send {
                req,
                plan,
                rule,
                backend,
            } => (req, plan, Some((rule, backend))),
            Ruled::Answer { response, error } => {
                return Outcome {
                    response,
                    service: Some(service.key.clone()),
                    endpoint: None,
                    error,
                    flag: "-",
                };
            }
        },
    };
    match attempts::send(&ctx.shared, ctx.affinity.as_ref(), &service, &plan, req).await {
        Sent::Answered {
            mut response,
            endpoint,
        } => {
            if let (Some(routes), Some((rule, backend))) = (&service.routes, edits) {
                rules::edit_response(routes, rule, backend, response.headers_mut());
            }
            Outcome {
                response: response.map(Either::Left),
                service: Some(service.key.clone()),
                endpoint: Some(endpoint),
                error: None,
                flag: "-",
            }
        }
        Sent::Failed { error, endpoint } => {
            let message = format!("osm-proxy: {}: {error}", endpoint.addr());
            Outcome {
                response: error_response(error.status(), &message),
                service: Some(service.key.clone()),
                endpoint: Some(endpoint),
                error: Some(message),
                flag: error.response_flag(),
            }
        }
        Sent::Refused(refusal) => Outcome::refused(
            &refusal.record(&ctx.shared.metrics),
            Some(service.key.clone()),
        ),
        Sent::TimedOut { after, endpoint } => {
            let message = format!(
                "osm-proxy: {}: no response within the request timeout of {after:?}",
                service.key
            );
            Outcome {
                response: error_response(StatusCode::GATEWAY_TIMEOUT, &message),
                service: Some(service.key.clone()),
                endpoint,
                error: Some(message),
                flag: "UT",
            }
        }
        Sent::BadBody(reason) => Outcome::failed(
            StatusCode::BAD_REQUEST,
            format!("osm-proxy: {reason}"),
            Some(service.key.clone()),
            "DPE",
        ),
    }
}
