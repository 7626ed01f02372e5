//! Plumbing shared by the control-plane servers (controller admin and
//! webhook, injector): an accept loop serving HTTP/1.1 and HTTP/2, over TLS
//! or not; a rustls config from PEM; the shutdown signal; AdmissionReview
//! in and out ([`admission`]).

#![forbid(unsafe_code)]

pub mod admission;
pub mod fetch;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

use std::{convert::Infallible, future::Future, pin::Pin, sync::Arc, time::Duration};

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// A whole-body response.
pub type Reply = Response<Full<Bytes>>;
/// Answers one request.
pub type Handler =
    Arc<dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// The address of the client a request came from (in its extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// The certificate a TLS client presented, when it presented one (in the
/// request's extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub Arc<rustls::pki_types::CertificateDer<'static>>);

/// How long a client may take to finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one client may hold of a server: the servers behind these (the
/// injector, whose failure policy blocks pod creation; the validating
/// webhook; the admin port) must not be held up by slow or many clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// How long a request's headers may take to arrive (an idle
    /// keep-alive connection included).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

async fn serve_connection<IO>(
    io: IO,
    (peer, certificate): (std::net::SocketAddr, Option<PeerCertificate>),
    handler: Handler,
    limits: Limits,
    stop: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(PeerAddr(peer));
        if let Some(c) = &certificate {
            req.extensions_mut().insert(c.clone());
        }
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(req).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    tokio::select! {
        _ = builder.serve_connection(TokioIo::new(io), service) => {}
        _ = stop.cancelled() => {}
    }
}

/// Serves `handler` on every connection until `stop` is cancelled, over
/// TLS when `tls` is given, within the default [`Limits`].
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Handler,
    stop: CancellationToken,
) {
    serve_with(listener, tls, handler, Limits::default(), stop).await;
}

/// [`serve`] within `limits`.
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Handler,
    limits: Limits,
    stop: CancellationToken,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection limit reached; closed");
            continue;
        };
        let (acceptor, handler, stop) = (acceptor.clone(), handler.clone(), stop.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None => serve_connection(tcp, (peer, None), handler, limits, stop).await,
                Some(acceptor) => {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    {
                        let certificate = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .map(|c| PeerCertificate(Arc::new(c.clone().into_owned())));
                        serve_connection(tls, (peer, certificate), handler, limits, stop).await;
                    }
                }
            }
        });
    }
}

/// A rustls server config presenting a PEM chain and key, without client
/// certificates, offering HTTP/2 and HTTP/1.1.
pub fn tls_from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    let (chain, key) = parse_pem(chain_pem, key_pem)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| format!("certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A PEM certificate chain and private key.
pub type Credentials = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// Reads a PEM chain and key, saying which one is wrong.
pub fn parse_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Credentials, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if chain.is_empty() {
        return Err("certificate: no certificate in the PEM data".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key: {e}"))?;
    Ok((chain, key))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A JSON response.
pub fn json_reply(status: http::StatusCode, body: String) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A request body of at most `max` bytes, or the 400 that says why not.
pub async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, Reply> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(req.into_body(), max)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => Err(json_reply(
            http::StatusCode::BAD_REQUEST,
            serde_json::json!({"error": format!("cannot read the body: {e}")}).to_string(),
        )),
    }
}

/// Logs to stderr with a RUST_LOG-style filter, colours only on a
/// terminal; the filter can be changed later through the handle.
pub fn init_logging(
    filter: &str,
) -> Result<std::sync::Arc<dyn osm_api::logging::LogFilter>, String> {
    osm_api::logging::init(filter).map_err(|e| e.to_string())
}
