//! The kubelet's probes, rewritten by the injector to ports that bypass
//! interception (15901-15904), served here and forwarded to the
//! application on localhost.
//!
//! - HTTP probes: `GET /osm-<kind>-probe[/<container>]` on 15901-15903 is
//!   sent to the application's original port and path; its status is the
//!   probe's result. An application that does not answer gives 503.
//! - HTTPS probes keep their path; their port is forwarded as TCP, so the
//!   kubelet's TLS reaches the application untouched.
//! - TCP probes: `GET /osm-healthcheck` on 15904 with `Original-Tcp-Port`
//!   is 200 when that port accepts a connection, 503 otherwise.
//!
//! The injector passes the probes in `OSM_PROXY_PROBES` (JSON).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use http::{Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    http_util::{ProxyBody, error_response},
    state::Shared,
};

pub use osm_api::compat::{
    HEALTHCHECK_PATH, HEALTHCHECK_PORT, ORIGINAL_TCP_PORT_HEADER as ORIGINAL_TCP_PORT,
};
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One rewritten probe, as the injector describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSpec {
    pub kind: String,
    pub port: u16,
    #[serde(default)]
    pub path: Option<String>,
    pub target_port: u16,
    #[serde(default)]
    pub target_path: String,
    /// HTTP, HTTPS or TCP.
    pub scheme: String,
}

/// Reads `OSM_PROXY_PROBES`.
pub fn parse(json: &str) -> Result<Vec<ProbeSpec>, String> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(json).map_err(|e| format!("OSM_PROXY_PROBES: {e}"))
}

/// What one probe port does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbePort {
    /// HTTP, routed by path to (target port, target path).
    Http(Vec<(String, u16, String)>),
    /// HTTPS: bytes forwarded to the target port.
    Tcp(u16),
    /// The TCP health check (15904).
    HealthCheck,
}

/// The listeners the probes need, by port (pure).
pub fn ports(specs: &[ProbeSpec]) -> Vec<(u16, ProbePort)> {
    let mut out: Vec<(u16, ProbePort)> = Vec::new();
    if specs.iter().any(|s| s.scheme == "TCP") {
        out.push((HEALTHCHECK_PORT, ProbePort::HealthCheck));
    }
    let mut http_ports: Vec<u16> = specs
        .iter()
        .filter(|s| s.scheme != "TCP")
        .map(|s| s.port)
        .collect();
    http_ports.sort_unstable();
    http_ports.dedup();
    for port in http_ports {
        let on_port: Vec<&ProbeSpec> = specs
            .iter()
            .filter(|s| s.port == port && s.scheme != "TCP")
            .collect();
        if let Some(https) = on_port.iter().find(|s| s.scheme == "HTTPS") {
            out.push((port, ProbePort::Tcp(https.target_port)));
        } else {
            out.push((
                port,
                ProbePort::Http(
                    on_port
                        .iter()
                        .map(|s| {
                            (
                                s.path.clone().unwrap_or_default(),
                                s.target_port,
                                s.target_path.clone(),
                            )
                        })
                        .collect(),
                ),
            ));
        }
    }
    out
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn http_probe(
    shared: &Shared,
    routes: &[(String, u16, String)],
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some((_, port, path)) = routes.iter().find(|(p, _, _)| p == req.uri().path()) else {
        return error_response(StatusCode::NOT_FOUND, "no probe at this path");
    };
    let Ok(uri) = path.parse() else {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "bad probe path");
    };
    *req.uri_mut() = uri;
    let addr = localhost(*port);
    let client = shared.plain_client(addr, false);
    match tokio::time::timeout(PROBE_TIMEOUT, crate::upstream::forward(&client, req, addr)).await {
        Ok(Ok(response)) => response.map(Either::Left),
        Ok(Err(e)) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("application: {e}"),
        ),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "application did not answer in time",
        ),
    }
}

async fn health_check(req: Request<Incoming>) -> Response<ProxyBody> {
    if req.uri().path() != HEALTHCHECK_PATH {
        return error_response(StatusCode::NOT_FOUND, "no health check at this path");
    }
    let Some(port) = req
        .headers()
        .get(ORIGINAL_TCP_PORT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok())
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "Original-Tcp-Port is missing or not a port",
        );
    };
    match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(localhost(port))).await {
        Ok(Ok(_)) => error_response(StatusCode::OK, "port open"),
        _ => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("port {port} does not accept connections"),
        ),
    }
}

/// Serves one probe port until drained.
pub async fn serve(
    listener: TcpListener,
    port: ProbePort,
    shared: Arc<Shared>,
    drain: CancellationToken,
    tasks: TaskTracker,
) {
    let port = Arc::new(port);
    crate::serve::accept_loop(listener, drain.clone(), tasks, move |stream, _| {
        let (port, shared, drain) = (port.clone(), shared.clone(), drain.clone());
        async move {
            match &*port {
                ProbePort::Tcp(target) => {
                    if let Ok(mut upstream) = TcpStream::connect(localhost(*target)).await {
                        let mut downstream = stream;
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream) => {}
                            _ = drain.cancelled() => {}
                        }
                    }
                }
                ProbePort::HealthCheck => {
                    crate::serve::serve_http(stream, false, drain, health_check).await;
                }
                ProbePort::Http(routes) => {
                    let routes = routes.clone();
                    crate::serve::serve_http(stream, false, drain, move |req| {
                        let (shared, routes) = (shared.clone(), routes.clone());
                        async move { http_probe(&shared, &routes, req).await }
                    })
                    .await;
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_ports_from_the_injectors_description() {
        let specs = parse(r#"[
            {"kind":"liveness","port":15901,"path":"/osm-liveness-probe","targetPort":8080,"targetPath":"/healthz","scheme":"HTTP"},
            {"kind":"liveness","port":15901,"path":"/osm-liveness-probe/side","targetPort":9000,"targetPath":"/live","scheme":"HTTP"},
            {"kind":"readiness","port":15902,"path":"/ready","targetPort":8443,"targetPath":"/ready","scheme":"HTTPS"},
            {"kind":"startup","port":15904,"path":"/osm-healthcheck","targetPort":5432,"targetPath":"","scheme":"TCP"}
        ]"#).unwrap();
        assert_eq!(
            ports(&specs),
            vec![
                (15904, ProbePort::HealthCheck),
                (
                    15901,
                    ProbePort::Http(vec![
                        ("/osm-liveness-probe".into(), 8080, "/healthz".into()),
                        ("/osm-liveness-probe/side".into(), 9000, "/live".into()),
                    ])
                ),
                (15902, ProbePort::Tcp(8443)),
            ]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        assert!(parse("[{}]").unwrap_err().starts_with("OSM_PROXY_PROBES"));
    }
}
