//! The kubelet's probes, rewritten by the injector to ports that bypass
//! interception (15901-15904), served here: the proxy probes the
//! application on localhost itself and answers with the status only, so a
//! probe port is never a way into the application.
//!
//! - HTTP(S) probes: `GET /osm-<kind>-probe[/<container>]` on 15901-15903
//!   makes the proxy GET the probe's original path on the original port
//!   (over TLS without verifying the certificate for HTTPS ones, as the
//!   kubelet does), with the kubelet's headers; the application's status
//!   is the probe's, its body is not passed on. No answer gives 503.
//! - TCP probes: `GET /osm-healthcheck` on 15904 with `Original-Tcp-Port`
//!   is 200 when that port accepts a connection, 503 otherwise; only the
//!   ports the pod's TCP probes name may be checked (403 for any other).
//!
//! The injector passes the probes in `OSM_PROXY_PROBES` (JSON).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use http::{Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::answer::{ProxyBody, error_response};

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

/// One probe a port answers: the kubelet's path, and what the proxy checks
/// on the application (HTTPS without verifying the certificate, as the
/// kubelet does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRoute {
    pub path: String,
    pub target_port: u16,
    pub target_path: String,
    pub tls: bool,
}

impl ProbeRoute {
    pub fn new(path: &str, target_port: u16, target_path: &str, tls: bool) -> Self {
        Self {
            path: path.into(),
            target_port,
            target_path: target_path.into(),
            tls,
        }
    }
}

/// What one probe port does. The proxy probes the application itself and
/// answers with the status only: a probe port is never a tunnel to the
/// application, nor a way to reach a port no probe names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbePort {
    /// HTTP(S) probes, routed by the kubelet's path.
    Http(Vec<ProbeRoute>),
    /// The TCP health check (15904), for these application ports only.
    HealthCheck(Vec<u16>),
}

/// The listeners the probes need, by port (pure).
pub fn ports(specs: &[ProbeSpec]) -> Vec<(u16, ProbePort)> {
    let mut out: Vec<(u16, ProbePort)> = Vec::new();
    let mut tcp_ports: Vec<u16> = specs
        .iter()
        .filter(|s| s.scheme == "TCP")
        .map(|s| s.target_port)
        .collect();
    if !tcp_ports.is_empty() {
        tcp_ports.sort_unstable();
        tcp_ports.dedup();
        out.push((HEALTHCHECK_PORT, ProbePort::HealthCheck(tcp_ports)));
    }
    let mut http_ports: Vec<u16> = specs
        .iter()
        .filter(|s| s.scheme != "TCP")
        .map(|s| s.port)
        .collect();
    http_ports.sort_unstable();
    http_ports.dedup();
    for port in http_ports {
        let routes = specs
            .iter()
            .filter(|s| s.port == port && s.scheme != "TCP")
            .map(|s| ProbeRoute {
                path: s.path.clone().unwrap_or_default(),
                target_port: s.target_port,
                target_path: s.target_path.clone(),
                tls: s.scheme == "HTTPS",
            })
            .collect();
        out.push((port, ProbePort::Http(routes)));
    }
    out
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The probe's answer: the application's status, and a line saying what
/// was checked (never the application's body).
fn probe_response(status: StatusCode, text: String) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(http_body_util::Full::new(
        bytes::Bytes::from(text + "\n"),
    )));
    *response.status_mut() = status;
    response
}

async fn http_probe(routes: &[ProbeRoute], req: Request<Incoming>) -> Response<ProxyBody> {
    let Some(route) = routes.iter().find(|r| r.path == req.uri().path()) else {
        return error_response(StatusCode::NOT_FOUND, "no probe at this path");
    };
    let checked = format!(
        "{}://127.0.0.1:{}{}",
        if route.tls { "https" } else { "http" },
        route.target_port,
        route.target_path
    );
    match tokio::time::timeout(PROBE_TIMEOUT, check(route, req.headers())).await {
        Ok(Ok(status)) => probe_response(status, format!("osm-proxy: {checked}: {status}")),
        Ok(Err(e)) => probe_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("osm-proxy: {checked}: {e}"),
        ),
        Err(_) => probe_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("osm-proxy: {checked}: no answer in time"),
        ),
    }
}

/// GETs the probe's target on the application with the kubelet's headers;
/// the status it answers.
async fn check(route: &ProbeRoute, headers: &http::HeaderMap) -> anyhow::Result<StatusCode> {
    let tcp = TcpStream::connect(localhost(route.target_port)).await?;
    let mut req = Request::get(route.target_path.as_str())
        .header(
            http::header::HOST,
            format!("127.0.0.1:{}", route.target_port),
        )
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    for (name, value) in headers {
        if name != http::header::HOST {
            req.headers_mut().append(name, value.clone());
        }
    }
    crate::http_util::strip_hop_by_hop(req.headers_mut(), false);
    if route.tls {
        let connector = tokio_rustls::TlsConnector::from(insecure_client());
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let tls = connector.connect(name, tcp).await?;
        send(tls, req).await
    } else {
        send(tcp, req).await
    }
}

async fn send<IO>(
    io: IO,
    req: Request<http_body_util::Empty<bytes::Bytes>>,
) -> anyhow::Result<StatusCode>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    let driving = tokio::spawn(conn);
    let status = sender.send_request(req).await?.status();
    driving.abort();
    Ok(status)
}

/// A TLS client that accepts the application's certificate whatever it
/// is: the kubelet does not verify HTTPS probes either, and the target is
/// the pod's own loopback.
fn insecure_client() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::LazyLock<Arc<rustls::ClientConfig>> =
        std::sync::LazyLock::new(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.dangerous()
                        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                        .with_no_client_auth()
                });
            Arc::new(config.unwrap_or_else(|_| {
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            }))
        });
    CONFIG.clone()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

async fn health_check(allowed: &[u16], req: Request<Incoming>) -> Response<ProxyBody> {
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
    if !allowed.contains(&port) {
        return error_response(
            StatusCode::FORBIDDEN,
            &format!("port {port} is not a port the pod's probes check"),
        );
    }
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
    drain: CancellationToken,
    tasks: TaskTracker,
) {
    let port = Arc::new(port);
    crate::serve::accept_loop(listener, drain.clone(), tasks, move |stream, _| {
        let (port, drain) = (port.clone(), drain.clone());
        async move {
            crate::serve::serve_http(stream, false, drain, move |req| {
                let port = port.clone();
                async move {
                    match &*port {
                        ProbePort::HealthCheck(allowed) => health_check(allowed, req).await,
                        ProbePort::Http(routes) => http_probe(routes, req).await,
                    }
                }
            })
            .await;
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
            {"kind":"readiness","port":15902,"path":"/osm-readiness-probe","targetPort":8443,"targetPath":"/ready","scheme":"HTTPS"},
            {"kind":"startup","port":15904,"path":"/osm-healthcheck","targetPort":5432,"targetPath":"","scheme":"TCP"}
        ]"#).unwrap();
        assert_eq!(
            ports(&specs),
            vec![
                (15904, ProbePort::HealthCheck(vec![5432])),
                (
                    15901,
                    ProbePort::Http(vec![
                        ProbeRoute::new("/osm-liveness-probe", 8080, "/healthz", false),
                        ProbeRoute::new("/osm-liveness-probe/side", 9000, "/live", false),
                    ])
                ),
                (
                    15902,
                    ProbePort::Http(vec![ProbeRoute::new(
                        "/osm-readiness-probe",
                        8443,
                        "/ready",
                        true
                    )])
                ),
            ]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        assert!(parse("[{}]").unwrap_err().starts_with("OSM_PROXY_PROBES"));
    }
}
