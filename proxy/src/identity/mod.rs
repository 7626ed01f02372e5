//! Workload identities and the proxy's own credentials.
//!
//! A workload's identity is its ServiceAccount, written as the SPIFFE ID
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. Certificates
//! carry it as a URI SAN, and as the DNS SAN `<sa>.<ns>.<trust-domain>`.

pub mod policy;
pub mod tls;

pub use osm_api::identity::{SpiffeId, SpiffeIdError};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The proxy's own certificate chain (leaf first) and private key.
#[derive(Debug)]
pub struct Credentials {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Errors reading PEM credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("no certificate found in the PEM data")]
    NoCertificate,
    #[error("no private key found in the PEM data")]
    NoKey,
    #[error("invalid PEM: {0}")]
    Pem(String),
}

impl Credentials {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, SEC1 or
    /// PKCS#1).
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, CredentialsError> {
        let chain = parse_certificates(chain_pem)?;
        if chain.is_empty() {
            return Err(CredentialsError::NoCertificate);
        }
        use rustls::pki_types::pem::PemObject;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => CredentialsError::NoKey,
            other => CredentialsError::Pem(other.to_string()),
        })?;
        Ok(Self { chain, key })
    }
}

/// Parses every certificate in PEM data.
pub fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CredentialsError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CredentialsError::Pem(e.to_string()))
}
