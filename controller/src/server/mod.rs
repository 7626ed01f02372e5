//! The gRPC server on 15128: `Identity.Certify` and `Config.Stream` over
//! TLS.
//!
//! Served with hyper directly (no router framework): each TLS connection is
//! handshaken here, so the verified client certificate is read once and
//! handed to the services as a request extension. A client certificate is
//! optional at the TLS layer because a proxy calls `Certify` before it has
//! one; `Config.Stream` refuses a caller without one.

mod config;
mod identity;
pub mod live_tls;
pub mod tls;

pub use config::ConfigService;
pub use identity::IdentityService;

use std::{convert::Infallible, sync::Arc, time::Duration};

use hyper_util::rt::{TokioExecutor, TokioIo};
use osm_api::{
    identity::{PodBinding, SpiffeId, pod_binding_from_der, spiffe_id_from_der},
    v1::{config_server::ConfigServer, identity_server::IdentityServer},
};
use rustls::pki_types::CertificateDer;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The caller's mesh identity, from the client certificate rustls verified
/// against the mesh root.
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity {
    /// None when the caller presented no certificate (or one that does not
    /// name one identity and at most one pod).
    pub id: Option<SpiffeId>,
    /// The pod the certificate was issued to; None for a certificate from
    /// a controller before pod bindings.
    pub pod: Option<PodBinding>,
    /// The verified chain, leaf first (which root it ends in is what a
    /// root rotation waits on).
    pub chain: Arc<[CertificateDer<'static>]>,
}

impl PeerIdentity {
    /// Reads a verified leaf certificate.
    pub fn from_der(leaf: &[u8]) -> Self {
        match (spiffe_id_from_der(leaf), pod_binding_from_der(leaf)) {
            (Ok(id), Ok(pod)) => Self {
                id: Some(id),
                pod,
                chain: Arc::new([]),
            },
            _ => Self::default(),
        }
    }

    /// Reads a verified chain (leaf first).
    pub fn from_chain(chain: &[CertificateDer<'static>]) -> Self {
        match chain.first() {
            Some(leaf) => Self {
                chain: chain.into(),
                ..Self::from_der(leaf.as_ref())
            },
            None => Self::default(),
        }
    }

    /// The leaf's expiry, Unix seconds.
    pub fn not_after(&self) -> Option<i64> {
        let (_, cert) = x509_parser::parse_x509_certificate(self.chain.first()?).ok()?;
        Some(cert.validity().not_after.timestamp())
    }
}

/// Connections the gRPC listener holds at once: one per proxy, so far
/// above any mesh this controller serves (10,000 proxies measured), and a
/// bound on what a flood of connections can take.
pub const MAX_CONNECTIONS: usize = 65_536;

/// Serves until `stop` is cancelled; then every connection is closed at
/// once (proxies keep their config and reconnect elsewhere or later).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    identity: IdentityService,
    config: ConfigService,
    stop: CancellationToken,
) {
    serve_with(listener, tls, (identity, config), MAX_CONNECTIONS, stop).await;
}

/// [`serve`] with at most `max_connections` at once; more are closed at
/// accept. HTTP/2 pings find peers that vanished without closing.
pub async fn serve_with(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    (identity, config): (IdentityService, ConfigService),
    max_connections: usize,
    stop: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let identity = IdentityServer::new(identity);
    let config = ConfigServer::new(config);
    let mut connections = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = stop.cancelled() => break,
        };
        if connections.len() >= max_connections {
            tracing::debug!(%peer, "connection limit reached; closed");
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let identity = identity.clone();
        let config = config.clone();
        connections.spawn(async move {
            // Boxed: the handshake's state is freed once it is done instead
            // of sizing the task that then serves the connection for hours.
            let handshake = Box::pin(tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                acceptor.accept(tcp),
            ));
            let tls = match handshake.await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let caller = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(PeerIdentity::from_chain)
                .unwrap_or_default();
            let service =
                hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(caller.clone());
                    let identity = identity.clone();
                    let config = config.clone();
                    // Boxed: hyper runs each stream in a task sized for the
                    // largest of its states, and a config stream outlives
                    // the call that opened it by hours.
                    Box::pin(async move {
                        let response = if req.uri().path().starts_with("/osm.v1.Identity/") {
                            identity.oneshot(req).await
                        } else {
                            config.oneshot(req).await
                        };
                        Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
                    })
                });
            // HTTP/2 only, served by hyper's own HTTP/2 connection: the
            // `auto` one would keep an HTTP/1 state and a preface reader in
            // every connection's task for a protocol gRPC never speaks.
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive_interval(Some(Duration::from_secs(30)))
                .keep_alive_timeout(Duration::from_secs(20))
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    connections.shutdown().await;
}

#[cfg(test)]
mod tests;
