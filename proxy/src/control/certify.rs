//! Getting a certificate: a fresh ECDSA P-256 key made here (it never
//! leaves the proxy), a CSR, and the pod's token as proof of identity.

use std::{path::Path, time::SystemTime};

use osm_api::v1::{self, identity_client::IdentityClient};
use rcgen::{
    CertificateParams, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, SanType, string::Ia5String,
};

use super::channel::{ControllerAddr, connect};
use crate::identity::Credentials;

/// Who the proxy says it is; the token proves it.
#[derive(Debug, Clone)]
pub struct PodRef {
    pub name: String,
    pub namespace: String,
    pub service_account: String,
    /// The mesh's trust domain, when the injector gave it: the CSR then
    /// names the identity (SPIFFE URI and DNS name), which an external
    /// issuer (cert-manager, a Vault role with `use_csr_sans`) signs as
    /// asked. The controller's own CA names it either way.
    pub trust_domain: Option<String>,
}

/// A certificate the controller issued.
#[derive(Debug)]
pub struct Certified {
    pub credentials: Credentials,
    pub not_after: SystemTime,
    pub received: SystemTime,
}

impl Certified {
    /// When to renew: about two thirds into the life left at receipt.
    pub fn renew_at(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.received)
            .unwrap_or_default();
        self.received + life.mul_f64(2.0 / 3.0)
    }
}

/// Why no certificate was obtained.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    #[error("cannot read the token at {path}: {source}")]
    Token {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot make a key or CSR: {0}")]
    Key(String),
    #[error("{0}")]
    Connect(#[from] super::channel::ConnectError),
    #[error("the controller refused: {0}")]
    Refused(String),
    #[error("the controller's certificate cannot be used: {0}")]
    Response(String),
}

/// A new key and a CSR for it. The CSR names no identity: the controller
/// signs for the identity the token proves, and nothing else.
pub fn key_and_csr(pod: &PodRef) -> Result<(KeyPair, String), CertifyError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CertifyError::Key(e.to_string()))?;
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| CertifyError::Key(e.to_string()))?;
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{}.{}", pod.name, pod.namespace),
    );
    if let Some(trust_domain) = pod.trust_domain.as_deref()
        && !pod.service_account.is_empty()
    {
        let (ns, sa) = (&pod.namespace, &pod.service_account);
        let text = |s: String| {
            Ia5String::try_from(s)
                .map_err(|e| CertifyError::Key(format!("the identity's names: {e}")))
        };
        params.subject_alt_names = vec![
            SanType::URI(text(format!("spiffe://{trust_domain}/ns/{ns}/sa/{sa}"))?),
            SanType::DnsName(text(format!("{sa}.{ns}.{trust_domain}"))?),
        ];
    }
    let csr = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| CertifyError::Key(e.to_string()))?;
    Ok((key, csr))
}

/// Asks the controller for a certificate.
pub async fn certify(
    addr: &ControllerAddr,
    pod: &PodRef,
    token_file: &Path,
) -> Result<Certified, CertifyError> {
    // Read at each request: the kubelet rotates projected tokens.
    let token = std::fs::read_to_string(token_file).map_err(|source| CertifyError::Token {
        path: token_file.display().to_string(),
        source,
    })?;
    let (key, csr_pem) = key_and_csr(pod)?;
    let channel = connect(addr, None).await?;
    let response = IdentityClient::new(channel)
        .certify(v1::CertifyRequest {
            csr_pem,
            token: token.trim().to_string(),
            pod_name: pod.name.clone(),
            pod_namespace: pod.namespace.clone(),
        })
        .await
        .map_err(|s| CertifyError::Refused(format!("{}: {}", s.code(), s.message())))?
        .into_inner();
    let credentials = Credentials::from_pem(
        response.cert_chain_pem.as_bytes(),
        key.serialize_pem().as_bytes(),
    )
    .map_err(|e| CertifyError::Response(e.to_string()))?;
    let not_after = SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(response.not_after).unwrap_or(0));
    Ok(Certified {
        credentials,
        not_after,
        received: SystemTime::now(),
    })
}
