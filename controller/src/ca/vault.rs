//! HashiCorp Vault's PKI secrets engine as the issuer of proxies'
//! certificates (OSM's `certificateProvider.kind: vault`): each CSR goes
//! to `POST /v1/<mount>/sign/<role>` with the identity as the URI SAN and
//! its DNS name, authenticated by a token given to the controller or
//! obtained with Kubernetes auth (`POST /v1/auth/<mount>/login` with the
//! controller's ServiceAccount token). The CA proxies must trust is read
//! from `GET /v1/<mount>/ca_chain` at start and from every signing.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use osm_api::identity::{PodBinding, SpiffeId};
use serde_json::{Value, json};

use super::{
    CaError, Issued, Issuer,
    external::{self, Signed},
};

/// How long one call to Vault may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How the controller proves itself to Vault.
#[derive(Clone)]
pub enum VaultAuth {
    /// A token given to the controller (OSM's `vault.token`).
    Token(String),
    /// Vault's Kubernetes auth method: the controller's ServiceAccount
    /// token, read from `jwt_path` at each login, for a token of `role`.
    Kubernetes {
        mount: String,
        role: String,
        jwt_path: PathBuf,
    },
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        match self {
            Self::Token(_) => f.write_str("Token(..)"),
            Self::Kubernetes { mount, role, .. } => f
                .debug_struct("Kubernetes")
                .field("mount", mount)
                .field("role", role)
                .finish_non_exhaustive(),
        }
    }
}

/// Where Vault is and what to ask it for.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// `http(s)://host:port`.
    pub addr: http::Uri,
    /// The PKI secrets engine's mount (`pki`).
    pub mount: String,
    /// The PKI role that signs (OSM's `vault.role`, `openservicemesh`).
    pub role: String,
    pub auth: VaultAuth,
    /// The CA Vault's HTTPS certificate chains to (PEM); None: the
    /// system's roots.
    pub tls_ca_pem: Option<String>,
}

/// The body of `POST /v1/<mount>/sign/<role>` for `identity`.
pub fn sign_body(csr_pem: &str, identity: &SpiffeId, validity: Duration) -> Value {
    let dns = identity.dns_name();
    json!({
        "csr": csr_pem,
        "common_name": dns,
        "alt_names": dns,
        "uri_sans": identity.to_string(),
        "ttl": format!("{}s", validity.as_secs()),
        "format": "pem",
    })
}

/// The certificate and CA of a sign response's `data`.
pub fn signed_of(data: &Value) -> Result<Signed, CaError> {
    let certificate = data["certificate"]
        .as_str()
        .ok_or_else(|| CaError::Unavailable("Vault's answer has no data.certificate".into()))?
        .to_string();
    let mut ca: Vec<String> = data["ca_chain"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    if let Some(issuing) = data["issuing_ca"].as_str()
        && !ca.iter().any(|c| c == issuing)
    {
        ca.insert(0, issuing.to_string());
    }
    Ok(Signed { certificate, ca })
}

/// Vault's reason in an error answer (`{"errors": [...]}`), or the body.
pub fn error_of(status: u16, body: &[u8]) -> String {
    let reasons = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v["errors"].as_array().map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .filter(|r| !r.is_empty());
    let reason = reasons.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    format!("{status}: {reason}")
}

/// A Vault token and when to get a new one.
struct Token {
    value: String,
    renew_at: Option<Instant>,
}

/// Signs proxies' CSRs with Vault.
pub struct VaultIssuer {
    settings: VaultSettings,
    tls: tokio_rustls::TlsConnector,
    token: tokio::sync::Mutex<Option<Token>>,
    /// The CA proxies trust for Vault's certificates (PEM), as last read.
    anchor: external::Anchor,
}

impl std::fmt::Debug for VaultIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultIssuer")
            .field("addr", &self.settings.addr)
            .field("role", &self.settings.role)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> CaError {
    CaError::Unavailable(format!("Vault {what}: {e}"))
}

impl VaultIssuer {
    /// An issuer for `settings`; it reads Vault's CA now, and when Vault
    /// does not answer yet, at the first signing (the controller starts
    /// either way; proxies retry).
    pub async fn connect(settings: VaultSettings) -> Result<Self, CaError> {
        let tls = osm_serve::fetch::tls_client(settings.tls_ca_pem.as_deref().map(str::as_bytes))
            .map_err(|e| CaError::Load(format!("Vault's TLS CA: {e:#}")))?;
        let issuer = Self {
            settings,
            tls,
            token: tokio::sync::Mutex::new(None),
            anchor: external::Anchor::default(),
        };
        if let Err(e) = issuer.read_ca().await {
            tracing::warn!(error = %e, "Vault's CA is not known yet; read again at the first signing");
        }
        Ok(issuer)
    }

    /// One call; (status, body).
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Bytes), CaError> {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("x-vault-token", token);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unavailable(path, e))?;
        let answer = osm_serve::fetch::send(&self.settings.addr, Some(&self.tls), request, TIMEOUT)
            .await
            .map_err(|e| unavailable(&format!("at {}", self.settings.addr), format!("{e:#}")))?;
        Ok((answer.status, answer.body))
    }

    /// Reads the mount's CA chain: its top is the anchor.
    async fn read_ca(&self) -> Result<(), CaError> {
        let path = format!("/v1/{}/ca_chain", self.settings.mount);
        let (status, body) = self.call(Method::GET, &path, None, None).await?;
        if status != 200 || body.is_empty() {
            return Err(unavailable(&path, error_of(status, &body)));
        }
        let pems = super::chain::pem_blocks(&String::from_utf8_lossy(&body));
        let anchor = pems
            .iter()
            .rev()
            .find(|p| {
                x509_parser::pem::parse_x509_pem(p.as_bytes())
                    .ok()
                    .and_then(|(_, b)| b.parse_x509().ok().map(|c| c.subject() == c.issuer()))
                    .unwrap_or(false)
            })
            .or(pems.last())
            .cloned()
            .ok_or_else(|| unavailable(&path, "no certificate in the answer"))?;
        self.anchor.set(anchor);
        Ok(())
    }

    /// A token, logging in when there is none or it is due.
    async fn token(&self, fresh: bool) -> Result<String, CaError> {
        let mut held = self.token.lock().await;
        if !fresh
            && let Some(token) = held
                .as_ref()
                .filter(|t| t.renew_at.is_none_or(|at| Instant::now() < at))
        {
            return Ok(token.value.clone());
        }
        let token = match &self.settings.auth {
            VaultAuth::Token(value) => Token {
                value: value.clone(),
                renew_at: None,
            },
            VaultAuth::Kubernetes {
                mount,
                role,
                jwt_path,
            } => {
                let jwt = std::fs::read_to_string(jwt_path)
                    .map_err(|e| CaError::Load(format!("{}: {e}", jwt_path.display())))?;
                let path = format!("/v1/auth/{mount}/login");
                let body = json!({"role": role, "jwt": jwt.trim()});
                let (status, answer) = self.call(Method::POST, &path, None, Some(&body)).await?;
                if status != 200 {
                    return Err(unavailable(&path, error_of(status, &answer)));
                }
                let auth: Value =
                    serde_json::from_slice(&answer).map_err(|e| unavailable(&path, e))?;
                let value = auth["auth"]["client_token"]
                    .as_str()
                    .ok_or_else(|| unavailable(&path, "no auth.client_token in the answer"))?
                    .to_string();
                // Logged in again at 80 % of the lease.
                let lease = auth["auth"]["lease_duration"].as_u64().unwrap_or(0);
                Token {
                    value,
                    renew_at: (lease > 0)
                        .then(|| Instant::now() + Duration::from_secs(lease * 4 / 5)),
                }
            }
        };
        let value = token.value.clone();
        *held = Some(token);
        Ok(value)
    }
}

#[tonic::async_trait]
impl Issuer for VaultIssuer {
    async fn issue(
        &self,
        csr_pem: &str,
        identity: &SpiffeId,
        _pod: &PodBinding,
        validity: Duration,
    ) -> Result<Issued, CaError> {
        let path = format!("/v1/{}/sign/{}", self.settings.mount, self.settings.role);
        let body = sign_body(csr_pem, identity, validity);
        let mut answer = self
            .call(
                Method::POST,
                &path,
                Some(&self.token(false).await?),
                Some(&body),
            )
            .await?;
        // A token revoked or expired early: log in once more.
        if answer.0 == 403 && matches!(self.settings.auth, VaultAuth::Kubernetes { .. }) {
            answer = self
                .call(
                    Method::POST,
                    &path,
                    Some(&self.token(true).await?),
                    Some(&body),
                )
                .await?;
        }
        let (status, body) = answer;
        if status != 200 {
            return Err(unavailable(&path, error_of(status, &body)));
        }
        let answer: Value = serde_json::from_slice(&body).map_err(|e| unavailable(&path, e))?;
        let accepted = external::accept(&signed_of(&answer["data"])?, identity)?;
        self.anchor.set(accepted.anchor_pem);
        Ok(accepted.issued)
    }

    fn trust_bundle(&self) -> String {
        self.anchor.get()
    }

    fn kind(&self) -> &'static str {
        "vault"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_identity_and_the_answer_is_read() {
        let id = SpiffeId::new("cluster.local", "shop", "buyer");
        let body = sign_body("CSR", &id, Duration::from_secs(86400));
        assert_eq!(body["uri_sans"], "spiffe://cluster.local/ns/shop/sa/buyer");
        assert_eq!(body["common_name"], "buyer.shop.cluster.local");
        assert_eq!(body["alt_names"], "buyer.shop.cluster.local");
        assert_eq!(body["ttl"], "86400s");

        let signed = signed_of(&json!({
            "certificate": "LEAF", "issuing_ca": "INT", "ca_chain": ["INT", "ROOT"],
        }))
        .unwrap();
        assert_eq!(signed.ca, ["INT", "ROOT"]);
        let without_chain =
            signed_of(&json!({"certificate": "LEAF", "issuing_ca": "INT"})).unwrap();
        assert_eq!(without_chain.ca, ["INT"]);
        assert!(signed_of(&json!({})).is_err());

        assert_eq!(
            error_of(403, br#"{"errors":["permission denied"]}"#),
            "403: permission denied"
        );
        assert_eq!(error_of(502, b"bad gateway\n"), "502: bad gateway");
    }
}
