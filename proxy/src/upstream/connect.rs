//! Connecting to an upstream: TCP with a timeout, then mTLS for a mesh
//! endpoint, checking that the server proves the identity the config expects.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use arc_swap::ArcSwapOption;
use tokio::net::TcpStream;

use super::{MeshIo, Stream, Wire};
use crate::identity::{
    SpiffeId,
    tls::{PeerIdentityError, TlsState, check_server_identity, server_name_for},
};
use crate::resilience::breaker::{Breaker, CountPermit, Overflow};

/// Why a connection to an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting to {addr} timed out after {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("connecting to {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr}: {source}")]
    Tls {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr} failed identity verification: {source}")]
    Identity {
        addr: SocketAddr,
        source: PeerIdentityError,
    },
    #[error("the proxy has no certificate yet, so it cannot reach mesh endpoint {addr}")]
    NoCredentials { addr: SocketAddr },
    /// The upstream's circuit breaker holds no more connections.
    #[error("{addr}: the upstream's {} limit is reached", .overflow.label())]
    Overflow {
        addr: SocketAddr,
        overflow: Overflow,
    },
    #[error(transparent)]
    InvalidIdentity(#[from] crate::identity::tls::ServerNameError),
}

/// Connects to one upstream address; a tower service for hyper's pool.
#[derive(Debug, Clone)]
pub struct Connector {
    addr: SocketAddr,
    identity: Option<SpiffeId>,
    tls: Arc<ArcSwapOption<TlsState>>,
    wire: Wire,
    timeout: Duration,
    /// The upstream's circuit breaker, as the current config sets it.
    breaker: Arc<ArcSwapOption<Breaker>>,
    /// The local address to connect from (None: the kernel's choice).
    source: Option<IpAddr>,
}

impl Connector {
    pub fn new(
        addr: SocketAddr,
        identity: Option<SpiffeId>,
        tls: Arc<ArcSwapOption<TlsState>>,
        wire: Wire,
        timeout: Duration,
    ) -> Self {
        Self {
            addr,
            identity,
            tls,
            wire,
            timeout,
            breaker: Arc::default(),
            source: None,
        }
    }

    /// Counts its connections against the breaker `breaker` holds.
    pub fn with_breaker(mut self, breaker: Arc<ArcSwapOption<Breaker>>) -> Self {
        self.breaker = breaker;
        self
    }

    pub fn with_source(mut self, source: Option<IpAddr>) -> Self {
        self.source = source;
        self
    }

    /// A place among the upstream's `maxConnections`, and whether its
    /// requests are to be counted (`maxRequestsPerConnection`).
    pub fn admit(&self) -> Result<(Option<CountPermit>, bool), ConnectError> {
        let Some(breaker) = self.breaker.load_full() else {
            return Ok((None, false));
        };
        let permit = breaker
            .admit_connection()
            .map_err(|overflow| ConnectError::Overflow {
                addr: self.addr,
                overflow,
            })?;
        let count_uses = breaker.limits.max_requests_per_connection.is_some();
        Ok((Some(permit), count_uses))
    }

    pub async fn connect(&self) -> Result<Stream, ConnectError> {
        let tcp = connect_from(self.addr, self.source, self.timeout).await?;
        let Some(expected) = &self.identity else {
            return Ok(Stream::Plain(tcp));
        };
        let tls = self
            .tls
            .load_full()
            .ok_or(ConnectError::NoCredentials { addr: self.addr })?;
        let config = match self.wire {
            Wire::Http1 => tls.client_http1.clone(),
            Wire::Http1Only => tls.client_http1_only.clone(),
            Wire::Http2 => tls.client_h2.clone(),
            Wire::Tcp => tls.client_tcp.clone(),
        };
        let server_name = server_name_for(expected).map_err(ConnectError::InvalidIdentity)?;
        let handshake = tokio_rustls::TlsConnector::from(config).connect(server_name, tcp);
        let stream = tokio::time::timeout(self.timeout, handshake)
            .await
            .map_err(|_| ConnectError::Timeout {
                addr: self.addr,
                timeout: self.timeout,
            })?
            .map_err(|source| ConnectError::Tls {
                addr: self.addr,
                source,
            })?;
        // webpki checked the chain and the DNS SAN; the SPIFFE ID must match
        // exactly too before any request byte is written.
        check_server_identity(stream.get_ref().1.peer_certificates(), expected).map_err(
            |source| ConnectError::Identity {
                addr: self.addr,
                source,
            },
        )?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// A TCP connection with a timeout and Nagle off.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    connect_from(addr, None, timeout).await
}

/// Where the proxy connects to its application at `addr` from: the app
/// source when the application is reached at the pod's own address, so
/// that osm-init's rules let the connection through instead of sending it
/// to the inbound side again ([`osm_api::compat::APP_SOURCE_V4`]).
pub fn app_source(addr: SocketAddr) -> Option<IpAddr> {
    match addr.ip() {
        ip if ip.is_loopback() => None,
        IpAddr::V4(_) => Some(IpAddr::V4(osm_api::compat::APP_SOURCE_V4)),
        IpAddr::V6(_) => Some(IpAddr::V6(osm_api::compat::APP_SOURCE_V6)),
    }
}

/// Connects to `addr` from `source` (any port) when given.
pub async fn connect_from(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let io = |source| ConnectError::Io { addr, source };
    let connecting = async {
        match source {
            None => TcpStream::connect(addr).await,
            Some(ip) => {
                let socket = if ip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(addr).await
            }
        }
    };
    let tcp = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| ConnectError::Timeout { addr, timeout })?
        .map_err(io)?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = MeshIo;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<MeshIo, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (permit, count_uses) = this.admit()?;
            let stream = this.connect().await?;
            // HTTP/1.1 goes multiplexed when the peer proxy chose so.
            let http2 = this.wire == Wire::Http2
                || crate::http1_over_h2::negotiated(stream.alpn_protocol());
            Ok(MeshIo::new(stream, http2).limited(permit, count_uses))
        })
    }
}
