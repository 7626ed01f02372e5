//! `Identity.Certify`: a proxy proves who it is with its token and gets a
//! certificate for that identity only.

use std::time::Duration;

use osm_api::{
    identity::{PodBinding, SpiffeId},
    v1,
};

use crate::{
    ca::{CaError, Issuer},
    token::{TokenError, TokenReviewer},
};

/// Why a proven pod may not hold a mesh identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotMeshed {
    /// Not in the controller's view yet (the proxy retries).
    #[error("pod {0} is not known to the controller yet")]
    UnknownPod(String),
    #[error("pod {pod} is in namespace {namespace}, which is not in the mesh")]
    NotMonitored { pod: String, namespace: String },
    #[error("pod {0} has no osm-proxy sidecar: only injected pods get a mesh identity")]
    NoProxy(String),
}

/// Whether a pod is part of the mesh (the controller's index answers).
pub trait Membership: Send + Sync {
    fn check(&self, namespace: &str, pod: &str) -> Result<(), NotMeshed>;
}

/// Why a certificate was refused; each maps to a gRPC status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertifyError {
    #[error("{0}")]
    NotMeshed(#[from] NotMeshed),
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("the request names pod {claimed}, but the token was issued to pod {proven}")]
    PodMismatch { claimed: String, proven: String },
    #[error("the token's pod identity is not a valid mesh identity: {0}")]
    Identity(String),
    #[error("{0}")]
    Ca(#[from] CaError),
}

/// Checks the token and that its pod is meshed (an injected pod in a
/// monitored namespace: a token alone, from any pod, is not enough), then
/// signs the CSR for the token's ServiceAccount.
pub async fn certify(
    reviewer: &dyn TokenReviewer,
    membership: &dyn Membership,
    issuer: &dyn Issuer,
    trust_domain: &str,
    validity: Duration,
    request: &v1::CertifyRequest,
) -> Result<v1::CertifyResponse, CertifyError> {
    if request.token.len() > crate::token::MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong(request.token.len()).into());
    }
    let proven = reviewer.review(&request.token).await?;
    let claimed = (&request.pod_namespace, &request.pod_name);
    if (!claimed.0.is_empty() && *claimed.0 != proven.namespace)
        || (!claimed.1.is_empty() && *claimed.1 != proven.pod)
    {
        return Err(CertifyError::PodMismatch {
            claimed: format!("{}/{}", claimed.0, claimed.1),
            proven: format!("{}/{}", proven.namespace, proven.pod),
        });
    }
    membership.check(&proven.namespace, &proven.pod)?;
    let identity: SpiffeId =
        SpiffeId::new(trust_domain, &proven.namespace, &proven.service_account)
            .to_string()
            .parse()
            .map_err(|e: osm_api::identity::SpiffeIdError| CertifyError::Identity(e.to_string()))?;
    let pod = PodBinding::new(&proven.namespace, &proven.pod);
    let issued = issuer
        .issue(&request.csr_pem, &identity, &pod, validity)
        .await?;
    Ok(v1::CertifyResponse {
        cert_chain_pem: issued.chain_pem,
        trust_bundle: Some(v1::TrustBundle {
            pem: issuer.trust_bundle(),
        }),
        not_after: issued.not_after,
    })
}

#[cfg(test)]
mod tests;
