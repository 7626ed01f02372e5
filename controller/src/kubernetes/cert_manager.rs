//! cert-manager as the issuer of proxies' certificates (OSM's
//! `certificateProvider.kind: cert-manager`): each CSR becomes a
//! `CertificateRequest` (cert-manager.io/v1) in the control plane's
//! namespace against the configured Issuer or ClusterIssuer; the
//! controller waits until cert-manager approved and signed it (`Ready`),
//! reads `status.certificate` and `status.ca`, and deletes the request.
//! A denied or failed request, or none signed in time, is the issuer's
//! failure: the proxy keeps its certificate and asks again with backoff.

use std::time::{Duration, Instant};

use base64::Engine as _;
use kube::{
    Api, Client,
    api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams},
};
use osm_api::identity::{PodBinding, SpiffeId};
use serde_json::{Value, json};

use crate::ca::{
    CaError, Issued, Issuer,
    external::{self, Signed},
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// How often a request's status is read while it waits.
const POLL: Duration = Duration::from_millis(200);

/// Which cert-manager issuer signs, and where requests are made.
#[derive(Debug, Clone)]
pub struct CertManagerSettings {
    /// The control plane's namespace (where requests are made, and where
    /// an `Issuer` must be).
    pub namespace: String,
    /// OSM's `certmanager.issuerName` (`osm-ca`).
    pub issuer_name: String,
    /// `Issuer` or `ClusterIssuer`.
    pub issuer_kind: String,
    /// `cert-manager.io` (or an external issuer's group).
    pub issuer_group: String,
    /// How long a request may wait to be approved and signed.
    pub timeout: Duration,
}

/// What a request's status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not decided yet.
    Pending,
    Signed(Signed),
    /// Denied, failed or invalid: why.
    Refused(String),
}

fn decoded(value: &Value) -> Option<String> {
    let bytes = B64.decode(value.as_str()?).ok()?;
    String::from_utf8(bytes).ok()
}

fn condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

/// Reads a request's `status` (cert-manager's conditions: `Approved`,
/// `Denied`, `InvalidRequest`, `Ready` with reason `Issued`, `Failed` or
/// `Pending`).
pub fn outcome(status: &Value) -> Outcome {
    for refusal in ["Denied", "InvalidRequest"] {
        if let Some(c) = condition(status, refusal) {
            return Outcome::Refused(format!(
                "{refusal}: {}",
                c["message"].as_str().unwrap_or("no message")
            ));
        }
    }
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    if let Some(ready) = ready
        && ready["status"] == "False"
        && ready["reason"] == "Failed"
    {
        return Outcome::Refused(format!(
            "Failed: {}",
            ready["message"].as_str().unwrap_or("no message")
        ));
    }
    match (condition(status, "Ready"), decoded(&status["certificate"])) {
        (Some(_), Some(certificate)) => Outcome::Signed(Signed {
            certificate,
            ca: decoded(&status["ca"]).into_iter().collect(),
        }),
        _ => Outcome::Pending,
    }
}

/// The request for `csr_pem` (names of the CSR; cert-manager signs what it
/// asks for), valid for `validity`.
pub fn request(
    settings: &CertManagerSettings,
    name: &str,
    csr_pem: &str,
    identity: &SpiffeId,
    validity: Duration,
) -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "CertificateRequest",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/managed-by": "osm-controller"},
            "annotations": {"openservicemesh.io/identity": identity.to_string()},
        },
        "spec": {
            "request": B64.encode(csr_pem),
            "issuerRef": {
                "name": settings.issuer_name,
                "kind": settings.issuer_kind,
                "group": settings.issuer_group,
            },
            "duration": format!("{}s", validity.as_secs()),
            "isCA": false,
            "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
        },
    })
}

/// Signs proxies' CSRs with cert-manager.
pub struct CertManagerIssuer {
    api: Api<DynamicObject>,
    settings: CertManagerSettings,
    /// The CA the last signed certificate chains to (PEM).
    anchor: external::Anchor,
}

impl std::fmt::Debug for CertManagerIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertManagerIssuer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl CertManagerIssuer {
    pub fn new(client: Client, settings: CertManagerSettings) -> Self {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cert-manager.io", "v1", "CertificateRequest"),
            "certificaterequests",
        );
        Self {
            api: Api::namespaced_with(client, &settings.namespace, &resource),
            settings,
            anchor: external::Anchor::default(),
        }
    }

    /// Waits for `name`'s outcome.
    async fn wait(&self, name: &str) -> Result<Signed, CaError> {
        let deadline = Instant::now() + self.settings.timeout;
        loop {
            let object = self
                .api
                .get(name)
                .await
                .map_err(|e| CaError::Unavailable(format!("CertificateRequest {name}: {e}")))?;
            let status = object.data.get("status").cloned().unwrap_or(Value::Null);
            match outcome(&status) {
                Outcome::Signed(signed) => return Ok(signed),
                Outcome::Refused(why) => {
                    return Err(CaError::Unavailable(format!(
                        "cert-manager refused CertificateRequest {}/{name}: {why}",
                        self.settings.namespace
                    )));
                }
                Outcome::Pending if Instant::now() >= deadline => {
                    return Err(CaError::Unavailable(format!(
                        "CertificateRequest {}/{name} was not signed within {:?}: is cert-manager \
                         running, is the request approved, and does {} {} exist?",
                        self.settings.namespace,
                        self.settings.timeout,
                        self.settings.issuer_kind,
                        self.settings.issuer_name
                    )));
                }
                Outcome::Pending => tokio::time::sleep(POLL).await,
            }
        }
    }
}

#[tonic::async_trait]
impl Issuer for CertManagerIssuer {
    async fn issue(
        &self,
        csr_pem: &str,
        identity: &SpiffeId,
        pod: &PodBinding,
        validity: Duration,
    ) -> Result<Issued, CaError> {
        let name = format!("osm-{}-{}-{:08x}", pod.namespace, pod.name, fastrand_u32());
        // Object names are at most 253 characters, lowercase.
        let name: String = name.to_lowercase().chars().take(253).collect();
        let object: DynamicObject =
            serde_json::from_value(request(&self.settings, &name, csr_pem, identity, validity))
                .map_err(|e| CaError::Signing(e.to_string()))?;
        self.api
            .create(&PostParams::default(), &object)
            .await
            .map_err(|e| {
                CaError::Unavailable(format!(
                    "cannot create CertificateRequest {}/{name}: {e}",
                    self.settings.namespace
                ))
            })?;
        let signed = self.wait(&name).await;
        // Done with either way; a failed delete is left to the user's
        // cleanup (the request is labelled).
        if let Err(e) = self.api.delete(&name, &DeleteParams::default()).await {
            tracing::debug!(request = %name, error = %e, "CertificateRequest not deleted");
        }
        let accepted = external::accept(&signed?, identity)?;
        self.anchor.set(accepted.anchor_pem);
        Ok(accepted.issued)
    }

    fn trust_bundle(&self) -> String {
        self.anchor.get()
    }

    fn kind(&self) -> &'static str {
        "cert-manager"
    }
}

/// A random suffix for request names.
fn fastrand_u32() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CertManagerSettings {
        CertManagerSettings {
            namespace: "osm-system".into(),
            issuer_name: "osm-ca".into(),
            issuer_kind: "Issuer".into(),
            issuer_group: "cert-manager.io".into(),
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_request_names_the_issuer_and_its_status_is_read() {
        let id = SpiffeId::new("cluster.local", "shop", "buyer");
        let r = request(&settings(), "osm-x", "CSR", &id, Duration::from_secs(86400));
        assert_eq!(r["spec"]["request"], B64.encode("CSR"));
        assert_eq!(r["spec"]["issuerRef"]["name"], "osm-ca");
        assert_eq!(r["spec"]["duration"], "86400s");
        assert_eq!(r["metadata"]["namespace"], "osm-system");

        let cond = |kind: &str, status: &str, reason: &str| json!({"type": kind, "status": status, "reason": reason, "message": format!("{kind} says so")});
        let cases = [
            (json!(null), Outcome::Pending),
            (
                json!({"conditions": [cond("Approved", "True", "ok"), cond("Ready", "False", "Pending")]}),
                Outcome::Pending,
            ),
            (
                json!({"conditions": [cond("Denied", "True", "policy")]}),
                Outcome::Refused("Denied: Denied says so".into()),
            ),
            (
                json!({"conditions": [cond("Ready", "False", "Failed")]}),
                Outcome::Refused("Failed: Ready says so".into()),
            ),
            (
                json!({"conditions": [cond("Ready", "True", "Issued")],
                    "certificate": B64.encode("LEAF"), "ca": B64.encode("ROOT")}),
                Outcome::Signed(Signed {
                    certificate: "LEAF".into(),
                    ca: vec!["ROOT".into()],
                }),
            ),
            (
                // Ready without the certificate yet: still waiting.
                json!({"conditions": [cond("Ready", "True", "Issued")]}),
                Outcome::Pending,
            ),
        ];
        for (status, want) in cases {
            assert_eq!(outcome(&status), want, "{status}");
        }
    }
}
