//! Admin (127.0.0.1:15000) and metrics (15010) endpoints.
//!
//! Admin: `/ready`, `/live`, `/config_dump` (JSON), `/certs` (JSON, never
//! keys), `/logging` (GET shows, POST `?level=` sets the log filter). Metrics: `/stats/prometheus` and `/metrics` (Prometheus text).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{answer::ProxyBody, identity::tls::summarize, state::Shared};

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Metrics,
}

pub async fn serve(
    listener: TcpListener,
    role: Role,
    shared: Arc<Shared>,
    drain: CancellationToken,
    tasks: TaskTracker,
) {
    crate::serve::accept_loop(listener, drain.clone(), tasks, move |stream, _| {
        let shared = shared.clone();
        crate::serve::serve_http(stream, false, drain.clone(), move |req| {
            let shared = shared.clone();
            async move { respond(role, &shared, &req) }
        })
    })
    .await;
}

fn body(
    status: StatusCode,
    content_type: &'static str,
    text: impl Into<Bytes>,
) -> Response<ProxyBody> {
    let mut r = Response::new(Either::Right(Full::new(text.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

fn json(value: &serde_json::Value) -> Response<ProxyBody> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    body(StatusCode::OK, "application/json", text)
}

fn respond(role: Role, shared: &Shared, req: &Request<Incoming>) -> Response<ProxyBody> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match (role, req.uri().path()) {
        (Role::Metrics, "/stats/prometheus" | "/metrics") => body(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.metrics.render(),
        ),
        (Role::Admin, "/live") => body(StatusCode::OK, TEXT, "live\n"),
        (_, "/ready") => {
            if shared.is_ready() {
                body(StatusCode::OK, TEXT, "ready\n")
            } else {
                body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    not_ready_reason(shared),
                )
            }
        }
        (Role::Admin, "/config_dump") => {
            let snapshot = shared.config();
            json(&serde_json::json!({
                "version": snapshot.version,
                "config": serde_json::to_value(&snapshot.source).unwrap_or_default(),
            }))
        }
        (Role::Admin, "/certs") => json(&certs(shared)),
        (Role::Admin, "/logging") => logging(shared, req),
        _ => body(StatusCode::NOT_FOUND, TEXT, "not found\n"),
    }
}

fn not_ready_reason(shared: &Shared) -> String {
    let mut missing = Vec::new();
    if shared.tls().is_none() {
        missing.push("a certificate and trust bundle");
    }
    if shared.config().version == 0 {
        missing.push("a config");
    }
    format!("not ready: waiting for {}\n", missing.join(" and "))
}

fn certs(shared: &Shared) -> serde_json::Value {
    let Some(tls) = shared.tls() else {
        return serde_json::json!({ "identity": null, "chain": [], "trust_bundle": [] });
    };
    let summaries =
        |certs: &[rustls::pki_types::CertificateDer<'static>]| -> Vec<serde_json::Value> {
            certs
                .iter()
                .filter_map(summarize)
                .filter_map(|s| serde_json::to_value(s).ok())
                .collect()
        };
    serde_json::json!({
        "identity": tls.local_identity.to_string(),
        "chain": summaries(&tls.credentials.chain),
        "trust_bundle": summaries(&tls.trust_bundle),
    })
}

/// `GET /logging` shows the log filter; `POST /logging?level=FILTER` sets it.
fn logging(shared: &Shared, req: &Request<Incoming>) -> Response<ProxyBody> {
    const TEXT: &str = "text/plain; charset=utf-8";
    let Some(filter) = &shared.log_filter else {
        return body(
            StatusCode::NOT_IMPLEMENTED,
            TEXT,
            "log level control is not enabled\n",
        );
    };
    if req.method() == http::Method::GET {
        return body(StatusCode::OK, TEXT, format!("{}\n", filter.current()));
    }
    if req.method() != http::Method::POST && req.method() != http::Method::PUT {
        return body(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "use GET, or POST /logging?level=FILTER\n",
        );
    }
    let level = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("level="));
    let Some(level) = level.filter(|l| !l.is_empty()) else {
        return body(
            StatusCode::BAD_REQUEST,
            TEXT,
            "missing ?level=FILTER (e.g. debug, osm_proxy=trace)\n",
        );
    };
    match filter.set(level) {
        Ok(()) => body(StatusCode::OK, TEXT, format!("log filter: {level}\n")),
        Err(e) => body(StatusCode::BAD_REQUEST, TEXT, format!("{e}\n")),
    }
}
