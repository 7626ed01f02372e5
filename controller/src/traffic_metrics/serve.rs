//! The aggregated API `metrics.smi-spec.io/v1alpha1` over HTTPS, as the
//! API server's aggregator calls it (APIService
//! `v1alpha1.metrics.smi-spec.io`).
//!
//! Who may call: only a client with a certificate from the front-proxy CA
//! the API server itself uses (and, when the cluster names them, one of
//! the allowed common names), so the API is reached through the API
//! server and nothing else. Who may read what is decided there, before
//! the request is passed on: the API server authorizes `get`/`list` on
//! `metrics.smi-spec.io` resources with the caller's RBAC, as for any
//! aggregated API. The user it names in `X-Remote-User` is logged.

use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use osm_api::traffic_metrics::api::{ApiRequest, answer, parse, status};
use osm_serve::{PeerCertificate, Reply};
use rustls::{ServerConfig, pki_types::CertificateDer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Readings;
use crate::server::live_tls::LiveTls;

/// TLS presenting the controller's live certificate, requiring a client
/// certificate from `client_ca_pem`.
pub fn tls_config(live: &Arc<LiveTls>, client_ca_pem: &str) -> Result<Arc<ServerConfig>, String> {
    let verifier = crate::server::tls::client_verifier(
        &Arc::new(rustls::crypto::ring::default_provider()),
        ("front-proxy client CA", client_ca_pem),
        true,
    )?;
    live.config_with(verifier, &[b"h2", b"http/1.1"])
}

/// The common name of a certificate's subject.
fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// Whether a verified client certificate may call: any from the CA when no
/// names are configured, else one whose common name is listed.
pub fn allowed(common_name: Option<&str>, allowed_names: &[String]) -> bool {
    allowed_names.is_empty() || common_name.is_some_and(|cn| allowed_names.iter().any(|n| n == cn))
}

fn reply(code: StatusCode, body: serde_json::Value) -> Reply {
    osm_serve::json_reply(code, body.to_string())
}

/// Answers one request (the connection's client certificate was verified
/// by the TLS handshake).
pub fn handle(req: &Request<Incoming>, readings: &Readings, allowed_names: &[String]) -> Reply {
    let cn = req
        .extensions()
        .get::<PeerCertificate>()
        .and_then(|c| common_name(&c.0));
    if !allowed(cn.as_deref(), allowed_names) {
        let message = format!(
            "the client certificate's name {:?} is not one of requestheader-allowed-names",
            cn.unwrap_or_default()
        );
        return reply(StatusCode::FORBIDDEN, status(403, "Forbidden", &message));
    }
    if req.method() != http::Method::GET {
        let message = "traffic metrics are read-only: get and list";
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            status(405, "MethodNotAllowed", message),
        );
    }
    let request = match parse(req.uri().path()) {
        Ok(r) => r,
        Err(e) => return reply(StatusCode::NOT_FOUND, status(404, "NotFound", &e)),
    };
    if let Some(user) = req.headers().get("x-remote-user") {
        tracing::debug!(user = ?user, path = %req.uri().path(), "traffic metrics read");
    }
    if !matches!(request, ApiRequest::Metrics { .. }) {
        return reply(StatusCode::OK, answer(&request, &[], "", ""));
    }
    match readings.window() {
        Some(window) => reply(
            StatusCode::OK,
            answer(
                &request,
                &window.requests,
                &window.timestamp,
                &window.length,
            ),
        ),
        None => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            status(
                503,
                "ServiceUnavailable",
                "traffic metrics: the first window is not complete yet (the proxies are read \
                 once per window; try again when one has passed)",
            ),
        ),
    }
}

/// Serves the API until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    readings: Arc<Readings>,
    allowed_names: Arc<Vec<String>>,
    stop: CancellationToken,
) {
    let handler: osm_serve::Handler = Arc::new(move |req| {
        let answer = handle(&req, &readings, &allowed_names);
        Box::pin(async move { answer })
    });
    osm_serve::serve(listener, Some(tls), handler, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_proxy_names_decide_who_may_call() {
        let names = ["front-proxy-client".to_string(), "aggregator".to_string()];
        let cases = [
            (Some("front-proxy-client"), &names[..], true),
            (Some("aggregator"), &names[..], true),
            (Some("someone"), &names[..], false),
            (None, &names[..], false),
            (Some("someone"), &[][..], true),
            (None, &[][..], true),
        ];
        for (cn, names, want) in cases {
            assert_eq!(allowed(cn, names), want, "{cn:?} {names:?}");
        }
    }
}
