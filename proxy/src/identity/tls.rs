//! rustls configurations for mTLS between proxies.
//!
//! Both sides present their mesh certificate and verify the peer's chain
//! against the trust bundle. The server reads the client's SPIFFE ID from its
//! certificate; the client checks, before it sends a byte, that the server's
//! certificate names exactly the identity its config expects for that
//! endpoint (chain and DNS SAN through webpki, then the SPIFFE URI SAN).

use std::sync::Arc;

use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    pki_types::{CertificateDer, ServerName},
    server::WebPkiClientVerifier,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{Credentials, SpiffeId, policy::TlsPolicy};

/// ALPN of HTTP/2 between proxies.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN of HTTP/1.1 between proxies.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
/// ALPN of opaque TCP between proxies.
pub const ALPN_TCP: &[u8] = b"osm/tcp";
/// ALPN of HTTP/2 between proxies whose every request was HTTP/1.1 and
/// reaches the application as HTTP/1.1: many requests multiplexed on one
/// connection. A property of the connection, bound to the handshake, so no
/// request can claim it (Linkerd marks each request with a header instead).
/// A proxy that does not know it answers `http/1.1`, which the client also
/// offers.
pub const ALPN_HTTP1_OVER_H2: &[u8] = b"osm/http1-over-h2";

/// Errors building TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("trust bundle: {0}")]
    TrustBundle(String),
    #[error("the proxy's certificate or key is not usable: {0}")]
    Credentials(String),
    #[error("the proxy's certificate carries no mesh identity: {0}")]
    NoIdentity(#[from] PeerIdentityError),
    #[error("TLS settings: {0}")]
    Policy(String),
}

pub use osm_api::identity::PeerIdentityError;

/// Everything the proxy needs for mTLS, built once per credential or trust
/// bundle change and swapped in atomically.
#[derive(Debug)]
pub struct TlsState {
    pub server: Arc<ServerConfig>,
    /// For HTTP/1.1 requests: offers [`ALPN_HTTP1_OVER_H2`] first when
    /// multiplexing is on, then `http/1.1`.
    pub client_http1: Arc<ClientConfig>,
    /// For what only HTTP/1.1 carries (upgrades, HTTP/1.0, CONNECT).
    pub client_http1_only: Arc<ClientConfig>,
    pub client_h2: Arc<ClientConfig>,
    pub client_tcp: Arc<ClientConfig>,
    /// The identity the proxy's own certificate proves.
    pub local_identity: SpiffeId,
    pub credentials: Credentials,
    pub trust_bundle: Vec<CertificateDer<'static>>,
    /// The versions, suites and groups these configs allow.
    pub policy: TlsPolicy,
}

// === impl TlsState ===

impl TlsState {
    /// `multiplex_http1`: whether HTTP/1.1 requests between this proxy and
    /// its peers may share one HTTP/2 connection ([`ALPN_HTTP1_OVER_H2`]),
    /// offered as a client and accepted as a server.
    pub fn new(
        credentials: Credentials,
        trust_bundle: &[CertificateDer<'static>],
        policy: &TlsPolicy,
        multiplex_http1: bool,
    ) -> Result<Self, TlsError> {
        let leaf = credentials
            .chain
            .first()
            .ok_or_else(|| TlsError::Credentials("empty certificate chain".into()))?;
        let local_identity = spiffe_id_of(leaf)?;
        let roots = root_store(trust_bundle)?;
        let provider = policy.provider().map_err(TlsError::Policy)?;
        let versions = policy.versions().map_err(TlsError::Policy)?;

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::TrustBundle(e.to_string()))?;
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::Credentials(e.to_string()))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(credentials.chain.clone(), credentials.key.clone_key())
            .map_err(|e| TlsError::Credentials(e.to_string()))?;
        // The server's order decides: a client offering both HTTP/1.1
        // forms gets the multiplexed one (when this proxy accepts it).
        let offered: &[&[u8]] = if multiplex_http1 {
            &[ALPN_H2, ALPN_HTTP1_OVER_H2, ALPN_HTTP1, ALPN_TCP]
        } else {
            &[ALPN_H2, ALPN_HTTP1, ALPN_TCP]
        };
        server.alpn_protocols = offered.iter().map(|p| p.to_vec()).collect();

        let client = |alpn: &[&[u8]]| -> Result<Arc<ClientConfig>, TlsError> {
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&versions)
                .map_err(|e| TlsError::Credentials(e.to_string()))?
                .with_root_certificates(roots.clone())
                .with_client_auth_cert(credentials.chain.clone(), credentials.key.clone_key())
                .map_err(|e| TlsError::Credentials(e.to_string()))?;
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        let client_http1_only = client(&[ALPN_HTTP1])?;
        Ok(Self {
            server: Arc::new(server),
            // Without multiplexing the two are one configuration.
            client_http1: if multiplex_http1 {
                client(&[ALPN_HTTP1_OVER_H2, ALPN_HTTP1])?
            } else {
                client_http1_only.clone()
            },
            client_http1_only,
            client_h2: client(&[ALPN_H2])?,
            client_tcp: client(&[ALPN_TCP])?,
            local_identity,
            credentials,
            trust_bundle: trust_bundle.to_vec(),
            policy: policy.clone(),
        })
    }
}

fn root_store(trust_bundle: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>, TlsError> {
    if trust_bundle.is_empty() {
        return Err(TlsError::TrustBundle("no root certificate".into()));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in trust_bundle.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|e| TlsError::TrustBundle(format!("certificate {i}: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// An identity whose DNS SAN is not a valid server name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{id}: {reason}")]
pub struct ServerNameError {
    pub id: SpiffeId,
    pub reason: String,
}

/// The server name a client verifies for an endpoint that must prove `id`.
pub fn server_name_for(id: &SpiffeId) -> Result<ServerName<'static>, ServerNameError> {
    ServerName::try_from(id.dns_name()).map_err(|e| ServerNameError {
        id: id.clone(),
        reason: e.to_string(),
    })
}

/// The SPIFFE ID a certificate carries in its URI SAN.
pub fn spiffe_id_of(cert: &CertificateDer<'_>) -> Result<SpiffeId, PeerIdentityError> {
    osm_api::identity::spiffe_id_from_der(cert.as_ref())
}

/// The verified identity of a TLS peer, from the certificates rustls checked.
pub fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Result<SpiffeId, PeerIdentityError> {
    let leaf = certs
        .and_then(|c| c.first())
        .ok_or(PeerIdentityError::NoCertificate)?;
    spiffe_id_of(leaf)
}

/// Checks that a server's verified certificate names the expected identity.
pub fn check_server_identity(
    certs: Option<&[CertificateDer<'_>]>,
    expected: &SpiffeId,
) -> Result<(), PeerIdentityError> {
    let actual = peer_identity(certs)?;
    if &actual == expected {
        Ok(())
    } else {
        Err(PeerIdentityError::Mismatch {
            expected: expected.clone(),
            actual,
        })
    }
}

/// What `/certs` shows of a certificate (never a key).
#[derive(Debug, serde::Serialize)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub uri_sans: Vec<String>,
    pub dns_sans: Vec<String>,
}

pub fn summarize(cert: &CertificateDer<'_>) -> Option<CertSummary> {
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let mut uri_sans = Vec::new();
    let mut dns_sans = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(u) => uri_sans.push(u.to_string()),
                GeneralName::DNSName(d) => dns_sans.push(d.to_string()),
                _ => {}
            }
        }
    }
    Some(CertSummary {
        subject: parsed.subject().to_string(),
        issuer: parsed.issuer().to_string(),
        serial: parsed.raw_serial_as_string(),
        not_before: parsed.validity().not_before.to_string(),
        not_after: parsed.validity().not_after.to_string(),
        uri_sans,
        dns_sans,
    })
}
