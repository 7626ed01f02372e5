//! Every way the proxy refuses traffic, as one type with one metric and one
//! log path.
//!
//! A refusal is a decision (the config says no), not a failure (a peer
//! that went away): authorization, plaintext, rate limits, revocation of a
//! connection already open, no route, no endpoints. The decision functions
//! ([`crate::inbound::admit`], [`crate::outbound::route`], the per-request
//! handlers) return one; [`Refusal::record`] counts it in the metric its
//! direction has always used and logs it; [`Refusal::response`] answers an
//! HTTP client with the reason.

use std::{net::SocketAddr, sync::Arc};

use http::{Response, StatusCode};
use metrics::Label;

use crate::{
    answer::{ProxyBody, error_response},
    policy::DenyReason,
    resilience::breaker::Overflow,
    telemetry::metrics::{INBOUND_DENIED_TOTAL, Metrics, OUTBOUND_REFUSED_TOTAL},
};

/// What was refused: a whole connection or one HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Tcp,
    Http,
}

impl Layer {
    fn label(self) -> &'static str {
        match self {
            Layer::Tcp => "tcp",
            Layer::Http => "http",
        }
    }
}

/// Why the proxy refused a connection or a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    // === Inbound ===
    /// A peer without a mesh certificate, not listed by an IngressBackend.
    #[error("plaintext peer {peer} refused on port {port}: only mesh mTLS is accepted")]
    Plaintext { peer: SocketAddr, port: u16 },
    /// No authorization admits this identity (and, for HTTP, this request).
    #[error("{}: {reason}", match layer { Layer::Tcp => "denied", Layer::Http => "forbidden" })]
    Unauthorized {
        port: u16,
        layer: Layer,
        reason: DenyReason,
    },
    /// The port's connection rate limit is reached.
    #[error("connection rate limit of port {port} reached")]
    ConnectionRateLimited { port: u16 },
    /// The port's (or the route's) request rate limit is reached.
    #[error("rate limited")]
    RequestRateLimited { port: u16 },
    /// A connection the config admitted is no longer admitted.
    #[error("access to port {port} revoked")]
    Revoked { port: u16 },
    /// A connection to one of the proxy's own listeners, from the network.
    #[error("port {port} is the proxy's own: it is not reachable from the network")]
    ProxyPort { port: u16 },
    /// A port the pod's containers do not declare, when the pod's address
    /// is unknown (it cannot be delivered as Kubernetes would).
    #[error("port {port} is not declared by the pod's containers")]
    UndeclaredPort { port: u16 },
    /// A request no rule can be trusted to judge (an encoded separator or
    /// dot segment, two authorities): 400. `port` is the inbound port; None
    /// on the outbound side.
    #[error("bad request: {reason}")]
    BadRequest { port: Option<u16>, reason: String },

    // === Outbound ===
    /// Not a mesh service, and no egress lets it out.
    #[error("{}", no_route_message(*layer, target.as_deref(), *egress))]
    NoRoute {
        layer: Layer,
        /// The original destination, or the request's authority.
        target: Option<String>,
        /// Whether egress was enabled mesh-wide (the hint differs).
        egress: bool,
    },
    /// A mesh service whose chosen backend has no endpoints.
    #[error("{set} has no endpoints")]
    NoEndpoints { layer: Layer, set: Arc<str> },
    /// An egress rule's host that resolves to nothing: there is no address
    /// the connection may go to.
    #[error("egress host {host} does not resolve")]
    EgressHostUnresolved { layer: Layer, host: String },
    /// A passthrough the config no longer allows.
    #[error("passthrough to {dst} closed: the config no longer allows it")]
    EgressRevoked { dst: SocketAddr },
    /// The upstream's circuit breaker (UpstreamTrafficSetting
    /// connectionSettings) holds no more requests or connections.
    #[error("{upstream}: the {} limit is reached", overflow.label())]
    Overflow {
        layer: Layer,
        upstream: Arc<str>,
        overflow: Overflow,
    },
}

fn no_route_message(layer: Layer, target: Option<&str>, egress: bool) -> String {
    match layer {
        Layer::Tcp => format!(
            "no mesh service at {} and egress is disabled",
            target.unwrap_or("an unknown destination")
        ),
        Layer::Http => format!(
            "no route to {}: {}",
            target.unwrap_or("(no authority)"),
            if egress {
                "it is not a mesh service"
            } else {
                "it is not a mesh service and egress is disabled"
            }
        ),
    }
}

/// The metric a refusal is counted in, with its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub metric: &'static str,
    pub labels: Vec<(&'static str, String)>,
}

impl Refusal {
    /// Where it is counted: inbound refusals in `osm_inbound_denied_total`
    /// by port and kind, outbound ones in `osm_outbound_refused_total` by
    /// kind and reason (the names and labels dashboards already use).
    pub fn counted(&self) -> Counted {
        let inbound = |port: &u16, kind: &str| Counted {
            metric: INBOUND_DENIED_TOTAL,
            labels: vec![("port", port.to_string()), ("kind", kind.to_string())],
        };
        let outbound = |layer: &Layer, reason: &str| Counted {
            metric: OUTBOUND_REFUSED_TOTAL,
            labels: vec![
                ("kind", layer.label().to_string()),
                ("reason", reason.to_string()),
            ],
        };
        match self {
            Refusal::Plaintext { port, .. } => inbound(port, "plaintext"),
            Refusal::Unauthorized { port, layer, .. } => inbound(port, layer.label()),
            Refusal::ConnectionRateLimited { port } => inbound(port, "connection-rate-limited"),
            Refusal::RequestRateLimited { port } => inbound(port, "rate-limited"),
            Refusal::Revoked { port } => inbound(port, "revoked"),
            Refusal::ProxyPort { port } => inbound(port, "proxy-port"),
            Refusal::UndeclaredPort { port } => inbound(port, "undeclared-port"),
            Refusal::BadRequest {
                port: Some(port), ..
            } => inbound(port, "bad-request"),
            Refusal::BadRequest { port: None, .. } => outbound(&Layer::Http, "bad-request"),
            Refusal::NoRoute { layer, .. } => outbound(layer, "no-route"),
            Refusal::NoEndpoints { layer, .. } => outbound(layer, "no-endpoints"),
            Refusal::EgressRevoked { .. } => outbound(&Layer::Tcp, "revoked"),
            Refusal::EgressHostUnresolved { layer, .. } => outbound(layer, "unresolved"),
            Refusal::Overflow {
                layer, overflow, ..
            } => outbound(layer, overflow.label()),
        }
    }

    /// Counts the refusal and logs it; returns it for the caller's error.
    pub fn record(self, metrics: &Metrics) -> Self {
        let Counted { metric, labels } = self.counted();
        metrics
            .counter(
                metric,
                labels.into_iter().map(|(k, v)| Label::new(k, v)).collect(),
            )
            .increment(1);
        tracing::debug!(refusal = %self, "refused");
        self
    }

    /// The status an HTTP client is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NoEndpoints { .. } | Refusal::Overflow { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Refusal::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Refusal::RequestRateLimited { .. } | Refusal::ConnectionRateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// The access log's response flag (Envoy's codes).
    pub fn response_flag(&self) -> &'static str {
        match self {
            Refusal::NoRoute { .. } | Refusal::EgressRevoked { .. } => "NR",
            Refusal::NoEndpoints { .. } => "UH",
            Refusal::EgressHostUnresolved { .. } => "DF",
            Refusal::Overflow { .. } => "UO",
            Refusal::BadRequest { .. } => "DPE",
            Refusal::RequestRateLimited { .. } | Refusal::ConnectionRateLimited { .. } => "RL",
            _ => "UAEX",
        }
    }

    /// The answer to an HTTP client: the status and `osm-proxy: <reason>`.
    pub fn response(&self) -> Response<ProxyBody> {
        error_response(self.status(), &self.message())
    }

    /// The text of the answer (body, `osm-proxy-error` header, access log).
    pub fn message(&self) -> String {
        format!("osm-proxy: {self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SpiffeId;

    fn peer() -> SocketAddr {
        "10.0.0.9:41000".parse().unwrap()
    }

    #[test]
    fn every_refusal_has_its_message_metric_and_status() {
        let thief = SpiffeId::new("cluster.local", "bookthief", "bookthief");
        let cases: Vec<(Refusal, &str, Counted, u16)> = vec![
            (
                Refusal::Plaintext {
                    peer: peer(),
                    port: 8080,
                },
                "plaintext peer 10.0.0.9:41000 refused on port 8080: only mesh mTLS is accepted",
                Counted {
                    metric: INBOUND_DENIED_TOTAL,
                    labels: vec![("port", "8080".into()), ("kind", "plaintext".into())],
                },
                403,
            ),
            (
                Refusal::Unauthorized {
                    port: 14001,
                    layer: Layer::Http,
                    reason: DenyReason::SourceNotAllowed {
                        client: thief.clone(),
                        port: 14001,
                    },
                },
                "forbidden: spiffe://cluster.local/ns/bookthief/sa/bookthief is not an allowed source for port 14001",
                Counted {
                    metric: INBOUND_DENIED_TOTAL,
                    labels: vec![("port", "14001".into()), ("kind", "http".into())],
                },
                403,
            ),
            (
                Refusal::Unauthorized {
                    port: 6379,
                    layer: Layer::Tcp,
                    reason: DenyReason::NoPolicy { port: 6379 },
                },
                "denied: port 6379 has no authorization policy",
                Counted {
                    metric: INBOUND_DENIED_TOTAL,
                    labels: vec![("port", "6379".into()), ("kind", "tcp".into())],
                },
                403,
            ),
            (
                Refusal::ConnectionRateLimited { port: 80 },
                "connection rate limit of port 80 reached",
                Counted {
                    metric: INBOUND_DENIED_TOTAL,
                    labels: vec![
                        ("port", "80".into()),
                        ("kind", "connection-rate-limited".into()),
                    ],
                },
                429,
            ),
            (
                Refusal::RequestRateLimited { port: 80 },
                "rate limited",
                Counted {
                    metric: INBOUND_DENIED_TOTAL,
                    labels: vec![("port", "80".into()), ("kind", "rate-limited".into())],
                },
                429,
            ),
            (
                Refusal::Revoked { port: 6379 },
                "access to port 6379 revoked",
                Counted {
                    metric: INBOUND_DENIED_TOTAL,
                    labels: vec![("port", "6379".into()), ("kind", "revoked".into())],
                },
                403,
            ),
            (
                Refusal::NoRoute {
                    layer: Layer::Tcp,
                    target: None,
                    egress: false,
                },
                "no mesh service at an unknown destination and egress is disabled",
                Counted {
                    metric: OUTBOUND_REFUSED_TOTAL,
                    labels: vec![("kind", "tcp".into()), ("reason", "no-route".into())],
                },
                403,
            ),
            (
                Refusal::NoRoute {
                    layer: Layer::Http,
                    target: Some("example.com".into()),
                    egress: true,
                },
                "no route to example.com: it is not a mesh service",
                Counted {
                    metric: OUTBOUND_REFUSED_TOTAL,
                    labels: vec![("kind", "http".into()), ("reason", "no-route".into())],
                },
                403,
            ),
            (
                Refusal::NoRoute {
                    layer: Layer::Http,
                    target: None,
                    egress: false,
                },
                "no route to (no authority): it is not a mesh service and egress is disabled",
                Counted {
                    metric: OUTBOUND_REFUSED_TOTAL,
                    labels: vec![("kind", "http".into()), ("reason", "no-route".into())],
                },
                403,
            ),
            (
                Refusal::NoEndpoints {
                    layer: Layer::Http,
                    set: "bookstore/bookstore-v2:14001".into(),
                },
                "bookstore/bookstore-v2:14001 has no endpoints",
                Counted {
                    metric: OUTBOUND_REFUSED_TOTAL,
                    labels: vec![("kind", "http".into()), ("reason", "no-endpoints".into())],
                },
                503,
            ),
            (
                Refusal::BadRequest {
                    port: Some(80),
                    reason: "two authorities".into(),
                },
                "bad request: two authorities",
                Counted {
                    metric: INBOUND_DENIED_TOTAL,
                    labels: vec![("port", "80".into()), ("kind", "bad-request".into())],
                },
                400,
            ),
            (
                Refusal::BadRequest {
                    port: None,
                    reason: "two authorities".into(),
                },
                "bad request: two authorities",
                Counted {
                    metric: OUTBOUND_REFUSED_TOTAL,
                    labels: vec![("kind", "http".into()), ("reason", "bad-request".into())],
                },
                400,
            ),
            (
                Refusal::EgressHostUnresolved {
                    layer: Layer::Tcp,
                    host: "github.com".into(),
                },
                "egress host github.com does not resolve",
                Counted {
                    metric: OUTBOUND_REFUSED_TOTAL,
                    labels: vec![("kind", "tcp".into()), ("reason", "unresolved".into())],
                },
                403,
            ),
            (
                Refusal::Overflow {
                    layer: Layer::Http,
                    upstream: "shop/store:80".into(),
                    overflow: Overflow::MaxRequests,
                },
                "shop/store:80: the max-requests limit is reached",
                Counted {
                    metric: OUTBOUND_REFUSED_TOTAL,
                    labels: vec![("kind", "http".into()), ("reason", "max-requests".into())],
                },
                503,
            ),
            (
                Refusal::EgressRevoked { dst: peer() },
                "passthrough to 10.0.0.9:41000 closed: the config no longer allows it",
                Counted {
                    metric: OUTBOUND_REFUSED_TOTAL,
                    labels: vec![("kind", "tcp".into()), ("reason", "revoked".into())],
                },
                403,
            ),
        ];
        for (refusal, message, counted, status) in cases {
            assert_eq!(refusal.to_string(), message);
            assert_eq!(refusal.counted(), counted, "{message}");
            assert_eq!(refusal.status().as_u16(), status, "{message}");
            let response = refusal.response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response.headers()[crate::answer::PROXY_ERROR_HEADER],
                format!("osm-proxy: {message}").as_str()
            );
        }
    }
}
