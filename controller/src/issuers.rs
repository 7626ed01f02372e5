//! Who signs proxies' certificates, as the controller's flags (the chart's
//! `osm.certificateProvider.kind`, `osm.vault.*`, `osm.certmanager.*`,
//! OSM's names) choose: `tresor`, the controller's own CA (the default);
//! `vault`; or `cert-manager`. The controller's own certificates (its
//! gRPC server, webhooks, the injector's) always come from its own CA.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;

use crate::{
    ca::{
        Issuer,
        vault::{VaultAuth, VaultIssuer, VaultSettings},
    },
    kubernetes::cert_manager::{CertManagerIssuer, CertManagerSettings},
};

/// The flags that choose and configure the issuer.
#[derive(Debug, Clone, clap::Args)]
pub struct IssuerArgs {
    /// Who signs proxies' certificates: `tresor` (the controller's own CA,
    /// kept in osm-ca-bundle), `vault` (a PKI secrets engine), or
    /// `cert-manager` (CertificateRequests; Kubernetes only).
    #[arg(long, default_value = "tresor", value_parser = ["tresor", "vault", "cert-manager"])]
    pub certificate_provider: String,

    /// Vault's address: `http(s)://host:port` (the chart builds it from
    /// vault.protocol, vault.host and vault.port).
    #[arg(long, env = "OSM_VAULT_ADDR")]
    pub vault_addr: Option<String>,

    /// The PKI secrets engine's mount.
    #[arg(long, default_value = "pki")]
    pub vault_pki_mount: String,

    /// The PKI role that signs (`pki/sign/<role>`).
    #[arg(long, default_value = "openservicemesh")]
    pub vault_role: String,

    /// A Vault token (better from the environment than the command line).
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: Option<String>,

    /// A file holding the Vault token (a mounted Secret).
    #[arg(long, conflicts_with = "vault_token")]
    pub vault_token_file: Option<PathBuf>,

    /// Log in with Vault's Kubernetes auth method as this role instead of
    /// a token, with the controller's ServiceAccount token.
    #[arg(long, conflicts_with_all = ["vault_token", "vault_token_file"])]
    pub vault_kubernetes_role: Option<String>,

    /// The Kubernetes auth method's mount.
    #[arg(long, default_value = "kubernetes")]
    pub vault_kubernetes_mount: String,

    /// The ServiceAccount token for Vault's Kubernetes auth.
    #[arg(
        long,
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    pub vault_kubernetes_jwt: PathBuf,

    /// The CA Vault's HTTPS certificate chains to (PEM file); default: the
    /// system's roots.
    #[arg(long)]
    pub vault_ca_file: Option<PathBuf>,

    /// The cert-manager issuer that signs.
    #[arg(long, default_value = "osm-ca")]
    pub cert_manager_issuer_name: String,

    /// `Issuer` (in the control plane's namespace) or `ClusterIssuer`.
    #[arg(long, default_value = "Issuer", value_parser = ["Issuer", "ClusterIssuer"])]
    pub cert_manager_issuer_kind: String,

    /// The issuer's API group.
    #[arg(long, default_value = "cert-manager.io")]
    pub cert_manager_issuer_group: String,

    /// How long a CertificateRequest may wait to be approved and signed.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub cert_manager_timeout: Duration,
}

impl IssuerArgs {
    /// The external issuer chosen (None: the controller's own CA).
    /// `client` is the Kubernetes API (None in local mode).
    pub async fn build(
        &self,
        client: Option<&kube::Client>,
        osm_namespace: &str,
    ) -> anyhow::Result<Option<Arc<dyn Issuer>>> {
        match self.certificate_provider.as_str() {
            "vault" => Ok(Some(Arc::new(self.vault().await?))),
            "cert-manager" => {
                let client = client.context(
                    "--certificate-provider cert-manager needs the Kubernetes API (--kubernetes)",
                )?;
                Ok(Some(Arc::new(CertManagerIssuer::new(
                    client.clone(),
                    CertManagerSettings {
                        namespace: osm_namespace.into(),
                        issuer_name: self.cert_manager_issuer_name.clone(),
                        issuer_kind: self.cert_manager_issuer_kind.clone(),
                        issuer_group: self.cert_manager_issuer_group.clone(),
                        timeout: self.cert_manager_timeout,
                    },
                ))))
            }
            _ => Ok(None),
        }
    }

    async fn vault(&self) -> anyhow::Result<VaultIssuer> {
        let addr: http::Uri = self
            .vault_addr
            .as_deref()
            .context("--certificate-provider vault needs --vault-addr (http(s)://host:port)")?
            .parse()
            .context("--vault-addr")?;
        let auth = match (
            &self.vault_kubernetes_role,
            &self.vault_token,
            &self.vault_token_file,
        ) {
            (Some(role), _, _) => VaultAuth::Kubernetes {
                mount: self.vault_kubernetes_mount.clone(),
                role: role.clone(),
                jwt_path: self.vault_kubernetes_jwt.clone(),
            },
            (None, Some(token), _) => VaultAuth::Token(token.clone()),
            (None, None, Some(file)) => VaultAuth::Token(
                std::fs::read_to_string(file)
                    .with_context(|| format!("--vault-token-file {}", file.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None, None) => anyhow::bail!(
                "--certificate-provider vault needs a token (VAULT_TOKEN, --vault-token-file) or \
                 --vault-kubernetes-role"
            ),
        };
        let tls_ca_pem = match &self.vault_ca_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("--vault-ca-file {}", file.display()))?,
            ),
            None => None,
        };
        VaultIssuer::connect(VaultSettings {
            addr,
            mount: self.vault_pki_mount.clone(),
            role: self.vault_role.clone(),
            auth,
            tls_ca_pem,
        })
        .await
        .context("Vault")
    }
}
