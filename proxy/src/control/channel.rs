//! A gRPC channel to the controller over TLS.
//!
//! The controller's certificate is checked against the CA the proxy was
//! given at start (the mesh root) and the controller's name, before the
//! token or anything else is sent. The proxy presents its own mesh
//! certificate once it has one (`Config.Stream` requires it).

use std::{sync::Arc, time::Duration};

use hyper_util::rt::TokioIo;
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, ServerName},
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::identity::Credentials;

/// The whole connection: TCP, TLS and HTTP/2 (a controller busy with a
/// crowd of reconnecting proxies may take a while to handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The TCP connect alone (after resolving): a SYN that went unanswered
/// (a controller that was restarting) is sent again on a new attempt after
/// the reconnect back-off, not left to the kernel's retransmissions.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the controller is and how to recognise it.
#[derive(Debug, Clone)]
pub struct ControllerAddr {
    /// `host:port`; resolved at each connection.
    pub authority: String,
    /// The name its certificate must carry (the host, unless overridden).
    pub server_name: ServerName<'static>,
    /// The roots the controller's certificate must chain to.
    pub roots: Arc<RootCertStore>,
}

/// Why a controller address is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    #[error("{0:?} is not host:port")]
    NotHostPort(String),
    #[error("{0:?} is not a valid server name")]
    ServerName(String),
    #[error("the controller CA: {0}")]
    Roots(String),
}

impl ControllerAddr {
    /// `authority` is `host:port` (IPv6 in brackets); `server_name`
    /// overrides the host for certificate checks; `ca_pem` holds the roots.
    pub fn new(
        authority: &str,
        server_name: Option<&str>,
        ca_pem: &[u8],
    ) -> Result<Self, AddrError> {
        let (host, port) = authority
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            .ok_or_else(|| AddrError::NotHostPort(authority.into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = server_name.unwrap_or(host).to_string();
        let server_name =
            ServerName::try_from(name.clone()).map_err(|_| AddrError::ServerName(name))?;
        let mut roots = RootCertStore::empty();
        let certs = crate::identity::parse_certificates(ca_pem)
            .map_err(|e| AddrError::Roots(e.to_string()))?;
        if certs.is_empty() {
            return Err(AddrError::Roots("no certificate in the PEM data".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| AddrError::Roots(e.to_string()))?;
        }
        let _ = port;
        Ok(Self {
            authority: authority.to_string(),
            server_name,
            roots: Arc::new(roots),
        })
    }
}

impl ControllerAddr {
    /// This address, its certificate checked against the injected roots
    /// and `bundle` too: the trust bundle the controller sent last. The
    /// injected CA is for the first connection; after a root rotation the
    /// controller presents a certificate only the bundle knows.
    pub fn also_trusting(&self, bundle: &[CertificateDer<'static>]) -> Self {
        if bundle.is_empty() {
            return self.clone();
        }
        let mut roots = RootCertStore::clone(&self.roots);
        // A root the store cannot use is left out; the others still count.
        let _ = roots.add_parsable_certificates(bundle.iter().cloned());
        Self {
            roots: Arc::new(roots),
            ..self.clone()
        }
    }
}

fn client_config(
    addr: &ControllerAddr,
    credentials: Option<&Credentials>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(addr.roots.clone());
    let mut config = match credentials {
        Some(c) => builder.with_client_auth_cert(
            c.chain
                .iter()
                .map(|d| CertificateDer::clone(d).into_owned())
                .collect(),
            c.key.clone_key(),
        )?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Why the controller cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot connect to the controller at {authority}: {source}")]
    Transport {
        authority: String,
        source: tonic::transport::Error,
    },
}

/// Connects (TCP, TLS, HTTP/2), presenting `credentials` when given.
pub async fn connect(
    addr: &ControllerAddr,
    credentials: Option<&Credentials>,
) -> Result<Channel, ConnectError> {
    let connector = TlsConnector::from(client_config(addr, credentials)?);
    let authority = addr.authority.clone();
    let server_name = addr.server_name.clone();
    let dial = tower::service_fn(move |_: Uri| {
        let connector = connector.clone();
        let authority = authority.clone();
        let server_name = server_name.clone();
        async move {
            // Resolving gets the whole budget (a cluster's DNS may be slow);
            // the TCP connect only its own.
            let addrs: Vec<std::net::SocketAddr> =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host(&authority))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "resolving timed out")
                    })??
                    .collect();
            let tcp = tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(&addrs[..]))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                })??;
            let _ = tcp.set_nodelay(true);
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name, tcp))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    let transport = |source| ConnectError::Transport {
        authority: addr.authority.clone(),
        source,
    };
    Endpoint::from_shared(format!("http://{}", addr.authority))
        .map_err(transport)?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_with_connector(dial)
        .await
        .map_err(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBbjCCARSgAwIBAgIUQ6m3\n-----END CERTIFICATE-----\n";

    #[test]
    fn addresses_are_checked() {
        for bad in ["controller", ":15128", "host:port", "host:99999"] {
            assert!(
                matches!(
                    ControllerAddr::new(bad, None, PEM.as_bytes()),
                    Err(AddrError::NotHostPort(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            ControllerAddr::new("osm-controller.osm-system.svc:15128", None, b"not pem"),
            Err(AddrError::Roots(_))
        ));
    }
}
