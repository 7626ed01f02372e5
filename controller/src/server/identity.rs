//! `Identity.Certify` over gRPC.

use crate::ca::ledger::RootId;
use std::sync::Arc;

use osm_api::v1;
use tonic::{Request, Response, Status};

use crate::{
    ca::{CaError, Issuer},
    certify::{CertifyError, NotMeshed, certify},
    hub::Hub,
    metrics::Metrics,
    token::TokenReviewer,
};

/// Signs proxies' CSRs for the identity their token proves.
#[derive(Clone)]
pub struct IdentityService {
    pub hub: Arc<Hub>,
    pub reviewer: Arc<dyn TokenReviewer>,
    pub issuer: Arc<dyn Issuer>,
    pub metrics: Arc<Metrics>,
    pub reviews: Arc<ReviewGate>,
    /// Where each issued certificate is recorded, by its root.
    pub ledger: Arc<crate::ca::ledger::Ledger>,
    /// The issuer's failures, for `osm ca status`.
    pub health: Arc<crate::ca::health::IssuerHealth>,
}

/// How many certificate requests are checked at once (each may cost a
/// TokenReview on the API server), and how long one waits for its turn
/// before it is told to come back (`RESOURCE_EXHAUSTED`; proxies retry
/// with backoff). A crowd of proxies starting together queues here instead
/// of flooding the API server.
#[derive(Debug)]
pub struct ReviewGate {
    permits: tokio::sync::Semaphore,
    wait: std::time::Duration,
}

impl ReviewGate {
    pub fn new(concurrent: usize, wait: std::time::Duration) -> Self {
        Self {
            permits: tokio::sync::Semaphore::new(concurrent),
            wait,
        }
    }

    async fn enter(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Status> {
        match tokio::time::timeout(self.wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Status::resource_exhausted(
                "too many certificate requests at once; retry shortly",
            )),
        }
    }
}

impl Default for ReviewGate {
    fn default() -> Self {
        Self::new(64, std::time::Duration::from_secs(2))
    }
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService").finish_non_exhaustive()
    }
}

/// The gRPC status for a refusal; the message says why.
pub fn status_of(error: &CertifyError) -> Status {
    let message = error.to_string();
    match error {
        CertifyError::Token(_) => Status::unauthenticated(message),
        CertifyError::NotMeshed(NotMeshed::UnknownPod(_)) => Status::unavailable(message),
        CertifyError::NotMeshed(_) => Status::permission_denied(message),
        CertifyError::PodMismatch { .. } | CertifyError::Identity(_) => {
            Status::permission_denied(message)
        }
        CertifyError::Ca(CaError::IdentityMismatch { .. } | CaError::UnexpectedName(_)) => {
            Status::permission_denied(message)
        }
        CertifyError::Ca(CaError::BadCsr(_)) => Status::invalid_argument(message),
        CertifyError::Ca(CaError::Unavailable(_)) => Status::unavailable(message),
        CertifyError::Ca(CaError::Signing(_) | CaError::Load(_) | CaError::LostRoot(_)) => {
            Status::internal(message)
        }
    }
}

#[tonic::async_trait]
impl v1::identity_server::Identity for IdentityService {
    async fn certify(
        &self,
        request: Request<v1::CertifyRequest>,
    ) -> Result<Response<v1::CertifyResponse>, Status> {
        let request = request.into_inner();
        let _turn = self.reviews.enter().await.inspect_err(|_| {
            self.metrics.error("certify-busy");
        })?;
        // Read per request: a MeshConfig change applies to the next
        // certificate.
        let validity = self.hub.cert_validity();
        let trust_domain = self.hub.trust_domain();
        let started = std::time::Instant::now();
        match certify(
            self.reviewer.as_ref(),
            self.hub.as_ref(),
            self.issuer.as_ref(),
            &trust_domain,
            validity,
            &request,
        )
        .await
        {
            Ok(mut response) => {
                self.metrics.certificate_issued(started.elapsed());
                self.health.issued();
                // What proxies are sent in their config (with an external
                // issuer, its roots and the controller's own).
                if let Some(pem) = self.hub.trust_bundle() {
                    response.trust_bundle = Some(v1::TrustBundle { pem });
                }
                // The issuing root is the bundle's first.
                if let Some(root) = RootId::of_pem(&self.issuer.trust_bundle()) {
                    let pod = format!("{}/{}", request.pod_namespace, request.pod_name);
                    self.ledger.record(&pod, root, response.not_after);
                }
                tracing::debug!(
                    pod = %format!("{}/{}", request.pod_namespace, request.pod_name),
                    not_after = response.not_after,
                    "certificate issued"
                );
                Ok(Response::new(response))
            }
            Err(e) => {
                self.metrics.error("certify");
                if let CertifyError::Ca(
                    CaError::Signing(_) | CaError::Load(_) | CaError::Unavailable(_),
                ) = &e
                {
                    self.health.failed(&e.to_string());
                    self.metrics.error("issuer");
                }
                tracing::info!(
                    pod = %format!("{}/{}", request.pod_namespace, request.pod_name),
                    reason = %e,
                    "certificate refused"
                );
                Err(status_of(&e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 14, item 8): every certificate request went to
    /// TokenReview at once, however many arrived.
    #[tokio::test]
    async fn certificate_requests_take_turns() {
        let gate = ReviewGate::new(1, std::time::Duration::ZERO);
        let first = gate.enter().await.expect("a turn");
        let busy = gate.enter().await.unwrap_err();
        assert_eq!(busy.code(), tonic::Code::ResourceExhausted);
        drop(first);
        assert!(gate.enter().await.is_ok(), "the turn is given back");
    }
}
