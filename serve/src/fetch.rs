//! Small HTTP/1.1 requests, each on a new connection: local mode's health
//! checks, probes and calls to the injector over HTTPS, and the
//! controller's scrapes of the proxies' metrics.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

async fn exchange<S>(stream: S, request: http::Request<Full<Bytes>>) -> anyhow::Result<Answer>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer { status, body })
}

/// `GET path` on a new plaintext connection, within `timeout`.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<Answer> {
    request(addr, http::Method::GET, path, timeout).await
}

/// `method path` without a body on a new plaintext connection, within
/// `timeout`.
pub async fn request(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<Answer> {
    request_with_headers(addr, method, path, &[], timeout).await
}

/// [`request`] with `headers` added (a probe's `httpHeaders`; a `Host`
/// among them replaces the address, as the kubelet does).
pub async fn request_with_headers(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<Answer> {
    tokio::time::timeout(timeout, async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let mut builder = http::Request::builder().method(method.clone()).uri(path);
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            builder = builder.header("host", addr.to_string());
        }
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Full::new(Bytes::new()))?;
        exchange(stream, request).await
    })
    .await
    .with_context(|| format!("{method} http://{addr}{path} timed out"))?
}

/// A TLS client that trusts only the mesh root.
pub fn tls_connector(roots_pem: &[u8]) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem) {
        roots
            .add(cert.context("the trust bundle is not PEM")?)
            .context("the trust bundle holds an unusable certificate")?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// `POST path` with a JSON body over TLS, the server proving `server_name`.
pub async fn post_json_tls(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    server_name: &str,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> anyhow::Result<Answer> {
    let name = ServerName::try_from(server_name.to_string())?;
    tokio::time::timeout(timeout, async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS with {server_name} at {addr}"))?;
        let request = http::Request::post(path)
            .header("host", server_name)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        exchange(tls, request).await
    })
    .await
    .with_context(|| format!("POST https://{server_name}{path} timed out"))?
}

/// `request` to the origin of `url` (`http://` or `https://`, the port
/// defaulting to the scheme's) on a new connection, within `timeout`;
/// HTTPS is verified with `tls`. The request's URI should be the path
/// and query; a `Host` header is added when missing.
pub async fn send(
    url: &http::Uri,
    tls: Option<&tokio_rustls::TlsConnector>,
    mut request: http::Request<Full<Bytes>>,
    timeout: Duration,
) -> anyhow::Result<Answer> {
    let host = url.host().context("the URL names no host")?.to_string();
    let https = match url.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => anyhow::bail!("the URL's scheme is {other:?}: http or https"),
    };
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    if !request.headers().contains_key(http::header::HOST) {
        let value = http::HeaderValue::from_str(&format!("{host}:{port}"))?;
        request.headers_mut().insert(http::header::HOST, value);
    }
    let what = format!("{} {url}{}", request.method(), request.uri());
    tokio::time::timeout(timeout, async {
        // Brackets of an IPv6 literal are the URL's, not the address's.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
            .await
            .with_context(|| format!("cannot connect to {host}:{port}"))?;
        if !https {
            return exchange(tcp, request).await;
        }
        let connector = tls.context("an https URL needs a TLS client")?;
        let name = ServerName::try_from(bare.clone())?;
        let stream = connector
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS with {host}:{port}"))?;
        exchange(stream, request).await
    })
    .await
    .with_context(|| format!("{what} timed out"))?
}

/// A TLS client trusting the roots in `roots_pem` or, when None, the
/// system's.
pub fn tls_client(roots_pem: Option<&[u8]>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    if let Some(pem) = roots_pem {
        return tls_connector(pem);
    }
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A system certificate rustls cannot use is left out, as browsers do.
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
