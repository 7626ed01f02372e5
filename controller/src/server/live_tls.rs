//! The controller's serving certificate and the roots it verifies proxies'
//! client certificates with, replaced while it serves: a root rotation
//! changes both (the new root joins the client roots, then signs the
//! serving certificate), and listeners keep their TLS configs, which read
//! from here at each handshake.

use std::sync::{Arc, RwLock};

use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, UnixTime},
    server::{
        ClientHello, ResolvesServerCert,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};

use crate::ca::ServingCert;

/// The certificate presented and the client roots, as of the last update.
pub struct LiveTls {
    provider: Arc<CryptoProvider>,
    cert: RwLock<Arc<CertifiedKey>>,
    clients: RwLock<Arc<dyn ClientCertVerifier>>,
}

impl std::fmt::Debug for LiveTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTls").finish_non_exhaustive()
    }
}

fn certified_key(provider: &CryptoProvider, cert: &ServingCert) -> Result<CertifiedKey, String> {
    let (chain, key) = osm_serve::parse_pem(cert.chain_pem.as_bytes(), cert.key_pem.as_bytes())?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| format!("serving certificate: {e}"))
}

/// Client certificates are optional (a proxy certifies before it has
/// one) and verified against the bundle when presented.
fn client_verifier(
    provider: &Arc<CryptoProvider>,
    bundle_pem: &str,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    super::tls::client_verifier(provider, ("trust bundle", bundle_pem), false)
}

impl LiveTls {
    pub fn new(cert: &ServingCert, bundle_pem: &str) -> Result<Arc<Self>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(Arc::new(Self {
            cert: RwLock::new(Arc::new(certified_key(&provider, cert)?)),
            clients: RwLock::new(client_verifier(&provider, bundle_pem)?),
            provider,
        }))
    }

    /// Presents `cert` and verifies clients against `bundle_pem` from the
    /// next handshake on; nothing changes when either is unusable.
    pub fn update(&self, cert: &ServingCert, bundle_pem: &str) -> Result<(), String> {
        let key = certified_key(&self.provider, cert)?;
        let verifier = client_verifier(&self.provider, bundle_pem)?;
        *self.cert.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        *self.clients.write().unwrap_or_else(|e| e.into_inner()) = verifier;
        Ok(())
    }

    /// Verifies clients against `bundle_pem` from the next handshake on.
    pub fn set_client_roots(&self, bundle_pem: &str) -> Result<(), String> {
        let verifier = client_verifier(&self.provider, bundle_pem)?;
        *self.clients.write().unwrap_or_else(|e| e.into_inner()) = verifier;
        Ok(())
    }

    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The gRPC listener's config: client certificates optional and
    /// verified against the bundle, HTTP/2 only.
    pub fn grpc_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, String> {
        self.config_with(Arc::new(Clients(self.clone())), &[b"h2"])
    }

    /// The webhook's TLS: the live certificate, no client certificate
    /// (the API server authenticates the webhook, not the other way
    /// round), HTTP/2 or HTTP/1.1.
    pub fn webhook_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, String> {
        self.config_with(
            rustls::server::WebPkiClientVerifier::no_client_auth(),
            &[b"h2", b"http/1.1"],
        )
    }

    /// A config presenting the live certificate, verifying clients with
    /// `verifier` (the webhook: none; the TrafficMetrics API: the API
    /// server's front-proxy CA), offering `alpn`.
    pub fn config_with(
        self: &Arc<Self>,
        verifier: Arc<dyn ClientCertVerifier>,
        alpn: &[&[u8]],
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for LiveTls {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.cert.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The client verifier of the moment.
#[derive(Debug)]
struct Clients(Arc<LiveTls>);

impl ClientCertVerifier for Clients {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints would borrow from a verifier that may be replaced; proxies
        // present their one certificate without them.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .verifier()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.verifier().supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustls::{RootCertStore, pki_types::pem::PemObject};

    use super::*;
    use crate::ca::{Issuer as _, LocalCa};

    fn names() -> Vec<String> {
        vec!["localhost".into()]
    }

    /// A TLS client trusting `roots_pem`, optionally presenting `client`.
    async fn handshake(
        addr: std::net::SocketAddr,
        roots_pem: &str,
    ) -> Result<Vec<u8>, std::io::Error> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect("localhost".try_into().unwrap(), tcp)
            .await?;
        Ok(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec())
    }

    #[tokio::test]
    async fn a_new_certificate_is_presented_from_the_next_handshake() {
        let hour = Duration::from_secs(3600);
        let (old, new) = (
            LocalCa::generate(hour).unwrap(),
            LocalCa::generate(hour).unwrap(),
        );
        let live = LiveTls::new(
            &old.serving_cert(&names(), hour).unwrap(),
            &old.trust_bundle(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(live.grpc_config().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                    }
                });
            }
        });
        assert!(handshake(addr, &old.trust_bundle()).await.is_ok());
        assert!(handshake(addr, &new.trust_bundle()).await.is_err());

        let both = format!("{}{}", new.trust_bundle(), old.trust_bundle());
        live.update(&new.serving_cert(&names(), hour).unwrap(), &both)
            .unwrap();
        assert!(handshake(addr, &new.trust_bundle()).await.is_ok());
        assert!(handshake(addr, &old.trust_bundle()).await.is_err());

        // Something unusable changes nothing.
        let broken = ServingCert {
            chain_pem: "nope".into(),
            key_pem: "nope".into(),
        };
        assert!(live.update(&broken, &both).is_err());
        assert!(handshake(addr, &new.trust_bundle()).await.is_ok());
    }
}
