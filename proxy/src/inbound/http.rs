//! Per-request authorization and forwarding to the local application.

use std::{net::SocketAddr, sync::Arc};

use http::{Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;

use super::{Destination, Served, Source};
use crate::{
    answer::{ProxyBody, error_response},
    hygiene,
    policy::{Decision, HttpRequestView, authorize_http},
    refusal::{Layer, Refusal},
    state::Shared,
    telemetry::{
        access_log::HttpEntry,
        body_bytes::{LineStart, Logged, when_sent},
        tally::counted,
        trace::Kind,
    },
    upstream::{Affinity, HttpClient, Parked, Wire, forward},
};

/// What every request on one inbound connection shares.
#[derive(Debug, Clone)]
pub struct InboundContext(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    source: Source,
    /// The client's identity, or `ingress:<ip>`: shared by its requests'
    /// lines and spans.
    source_label: Arc<str>,
    port: u16,
    app: SocketAddr,
    /// The pooled client to the app, for this connection's HTTP version.
    app_client: HttpClient,
    /// `app`'s mode, and where the app is under the other mode (its client
    /// is looked up only when a request needs it: a mode change is rare).
    on_pod_ip: bool,
    app_in_other_mode: Option<SocketAddr>,
    /// How the connection is served and the application reached.
    served: Served,
    /// `x-forwarded-client-cert` for the verified peer (None: ingress).
    client_cert: Option<http::HeaderValue>,
    /// The connections to the application this connection keeps: HTTP/1.1
    /// on both sides only (an HTTP/2 connection's requests run in tasks
    /// of their own).
    affinity: Option<Arc<Affinity>>,
    /// The application's idle connections no inbound connection keeps.
    app_parked: Arc<Parked>,
}

impl InboundContext {
    pub fn new(shared: Arc<Shared>, source: Source, to: Destination, served: Served) -> Self {
        let Destination {
            port,
            app,
            on_pod_ip,
            app_in_other_mode,
        } = to;
        let app_client = shared.plain_client(
            app,
            served.app_http2,
            None,
            crate::upstream::app_source(app),
        );
        let source_label = match &source {
            Source::Mesh(id) => id.shared(),
            Source::Ingress(addr) => Arc::from(format!("ingress:{}", addr.ip())),
        };
        let client_cert = match &source {
            Source::Mesh(id) => hygiene::client_cert_value(id),
            Source::Ingress(_) => None,
        };
        Self(Arc::new(Inner {
            source,
            source_label,
            port,
            app,
            app_client,
            on_pod_ip,
            app_in_other_mode,
            served,
            client_cert,
            affinity: (served == Served::HTTP1).then(Arc::default),
            app_parked: shared.app_parked(app),
            shared,
        }))
    }
}

/// The answer to a request over a rate limit.
fn rate_limited(limit: &crate::policy::HttpLimit) -> Response<ProxyBody> {
    let mut response = error_response(limit.status, "osm-proxy: rate limited");
    for (name, value) in &limit.headers {
        response.headers_mut().append(name.clone(), value.clone());
    }
    response
}

/// Authorizes one request, then forwards it to the application.
pub async fn handle(
    ctx: InboundContext,
    mut req: Request<Incoming>,
) -> Response<Logged<ProxyBody>> {
    let started = tokio::time::Instant::now();
    let ctx = &ctx.0;
    if ctx.served.restores_http1() {
        crate::http1_over_h2::restore_http1(&mut req);
    }
    // The log shows the request as the client sent it.
    let line = LineStart::of(&ctx.shared.access_log, &mut req, started);
    let span = ctx.shared.tracer.start(Kind::Server, &mut req);
    let Answer {
        response,
        rule,
        error,
        flag,
    } = respond(ctx, req).await;
    if let Some(span) = span {
        let mut tags = vec![("peer.identity", ctx.source_label.to_string())];
        if let Some(rule) = &rule {
            tags.push(("osm.authorization", rule.to_string()));
        }
        if let Some(error) = &error {
            tags.push(("osm.error", error.clone()));
        }
        let remote = match &ctx.source {
            Source::Ingress(addr) => Some(*addr),
            Source::Mesh(_) => None,
        };
        let code = response.status().as_u16();
        ctx.shared.tracer.finish(span, code, remote, tags);
    }
    let code = response.status().as_u16();
    when_sent(line, &ctx.shared.access_log, response, |parts| HttpEntry {
        response_flags: flag,
        peer_identity: match &ctx.source {
            Source::Mesh(_) => Some(ctx.source_label.clone()),
            Source::Ingress(_) => None,
        },
        response_code: code,
        upstream_host: Some(ctx.app),
        source_identity: Some(ctx.source_label.clone()),
        authorization: rule,
        error,
        ..HttpEntry::of(parts, "inbound")
    })
}

/// What answers a request: the response, the rule that admitted it, why
/// the proxy answered itself (if it did) and the access log's flag.
struct Answer {
    response: Response<ProxyBody>,
    rule: Option<Arc<str>>,
    error: Option<String>,
    flag: &'static str,
}

impl Answer {
    fn refused(refusal: &Refusal, rule: Option<Arc<str>>) -> Self {
        Self {
            response: refusal.response(),
            rule,
            error: Some(refusal.message()),
            flag: refusal.response_flag(),
        }
    }
}

async fn respond(ctx: &Inner, mut req: Request<Incoming>) -> Answer {
    // One path and one authority, for the rules and the application alike.
    let prepared =
        hygiene::check_authority(&req).and_then(|()| hygiene::normalize_request_path(&mut req));
    if let Err(malformed) = prepared {
        let refusal = Refusal::BadRequest {
            port: Some(ctx.port),
            reason: malformed.to_string(),
        }
        .record(&ctx.shared.metrics);
        return Answer::refused(&refusal, None);
    }
    hygiene::restrict_upgrade(req.headers_mut());
    hygiene::set_client_identity(req.headers_mut(), ctx.client_cert.as_ref());
    let snapshot = ctx.shared.config();
    let policy = snapshot.inbound.get(&ctx.port);
    let decision = match &ctx.source {
        Source::Ingress(_) => Decision::Allow("ingress".into()),
        Source::Mesh(identity) => {
            let view = HttpRequestView::of(&req);
            authorize_http(snapshot.mesh.permissive, ctx.port, policy, identity, &view)
        }
    };
    // Only allowed requests spend rate-limit tokens.
    let limited = match &decision {
        Decision::Allow(_) => policy
            .and_then(|p| p.limits.exceeded(req.uri().path()))
            .map(rate_limited),
        Decision::Deny(_) => None,
    };
    let (other_client, other_parked);
    let (app, app_client, app_parked) = match ctx.app_in_other_mode {
        Some(other) if snapshot.mesh.app_on_pod_ip != ctx.on_pod_ip => {
            let source = crate::upstream::app_source(other);
            other_client = ctx
                .shared
                .plain_client(other, ctx.served.app_http2, None, source);
            other_parked = ctx.shared.app_parked(other);
            (other, &other_client, &other_parked)
        }
        _ => (ctx.app, &ctx.app_client, &ctx.app_parked),
    };
    drop(snapshot);
    match (decision, limited) {
        (Decision::Allow(rule), Some(response)) => {
            let refusal =
                Refusal::RequestRateLimited { port: ctx.port }.record(&ctx.shared.metrics);
            Answer {
                response,
                rule: Some(rule),
                error: Some(refusal.to_string()),
                flag: refusal.response_flag(),
            }
        }
        (Decision::Deny(reason), _) => {
            let refusal = Refusal::Unauthorized {
                port: ctx.port,
                layer: Layer::Http,
                reason,
            }
            .record(&ctx.shared.metrics);
            Answer::refused(&refusal, None)
        }
        (Decision::Allow(rule), None) => {
            let idempotent = crate::outbound::unprocessed::idempotent(req.method());
            let req = counted(req).map(Either::Left);
            let sent = match &ctx.affinity {
                Some(affinity) if crate::http1_over_h2::wire_for(&req) == Wire::Http1 => {
                    let source = crate::upstream::app_source(app);
                    let connector = || ctx.shared.plain_connector(app, Wire::Http1, None, source);
                    affinity.send(app_parked, connector, req).await
                }
                _ => forward(app_client, req, app).await,
            };
            match sent {
                Ok(mut r) => Answer {
                    response: {
                        crate::outbound::unprocessed::strip_from_app(r.headers_mut());
                        r.map(Either::Left)
                    },
                    rule: Some(rule),
                    error: None,
                    flag: "-",
                },
                Err(e) => {
                    let message = format!("osm-proxy: application at {}: {e}", ctx.app);
                    let mut response = error_response(e.status(), &message);
                    // The client's proxy may send it elsewhere: the
                    // application never got it, or an idempotent request
                    // lost its connection.
                    if let Some(why) = crate::outbound::unprocessed::resendable(&e, idempotent) {
                        response.headers_mut().insert(
                            crate::outbound::unprocessed::UNPROCESSED,
                            http::HeaderValue::from_static(why),
                        );
                    }
                    Answer {
                        response,
                        rule: Some(rule),
                        error: Some(message),
                        flag: e.response_flag(),
                    }
                }
            }
        }
    }
}
