//! Certificate authority: signs a proxy's CSR for the identity it proved,
//! and nothing else.
//!
//! [`Issuer`] is the seam for other backends (Vault, cert-manager);
//! [`LocalCa`] is the controller's own: a self-signed ECDSA P-256 root kept
//! in the Secret `osm-ca-bundle` on Kubernetes, or a file in local mode.

pub mod authority;
pub mod chain;
pub mod external;
pub mod health;
pub mod ledger;
mod local;
pub mod rotation;
pub mod store;
pub mod vault;

pub use local::{LocalCa, ServingCert};

use std::time::Duration;

use osm_api::identity::{PodBinding, SpiffeId};

/// A certificate issued to a proxy.
#[derive(Debug, Clone)]
pub struct Issued {
    /// PEM, leaf first.
    pub chain_pem: String,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
    /// Hex.
    pub serial: String,
}

/// Why a certificate was not issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaError {
    #[error("the CSR cannot be read or its signature does not verify: {0}")]
    BadCsr(String),
    #[error("the CSR asks for {requested}, but the caller proved {proven}")]
    IdentityMismatch { requested: String, proven: String },
    #[error("the CSR asks for a name the mesh does not issue: {0}")]
    UnexpectedName(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("the CA cannot be loaded: {0}")]
    Load(String),
    #[error("{0}")]
    LostRoot(String),
    /// The external issuer did not answer, or refused: the proxy keeps
    /// its certificate and asks again with backoff.
    #[error("the issuer is unavailable: {0}")]
    Unavailable(String),
}

/// Something that signs mesh certificates: the controller's own CA, or an
/// external PKI (Vault, cert-manager) reached over the network.
#[tonic::async_trait]
pub trait Issuer: Send + Sync + std::fmt::Debug {
    /// Signs `csr_pem` for `identity`, bound to `pod` (see
    /// [`osm_api::identity::pod`]), valid for `validity`.
    async fn issue(
        &self,
        csr_pem: &str,
        identity: &SpiffeId,
        pod: &PodBinding,
        validity: Duration,
    ) -> Result<Issued, CaError>;

    /// The PEM roots proxies must trust.
    fn trust_bundle(&self) -> String;

    /// What `osm ca status` calls it (MeshConfig/Helm
    /// `certificateProvider.kind`).
    fn kind(&self) -> &'static str {
        "tresor"
    }
}
