//! What the controller sets up in the cluster around itself, because it
//! owns the mesh CA: the injector's serving certificate (Secret
//! `osm-injector-tls`), the CA bundle of the two webhook configurations and
//! the TrafficMetrics APIService the chart installs, and `osm-mesh-config`, made once from the chart's
//! `preset-mesh-config` (an existing MeshConfig is never overwritten).
//! Repeated periodically, so a `helm upgrade` that resets a `caBundle`, or
//! a certificate close to expiry, is repaired.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{
        admissionregistration::v1::{
            MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
        },
        core::v1::{ConfigMap, Secret},
    },
    kube_aggregator::pkg::apis::apiregistration::v1::APIService,
};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, PostParams},
};
use tokio_util::sync::CancellationToken;

use crate::ca::{Issuer as _, authority::Authority};

pub const INJECTOR_SECRET: &str = "osm-injector-tls";
pub const PRESET_CONFIG_MAP: &str = "preset-mesh-config";
/// The chart's APIService of the TrafficMetrics API (when enabled).
pub const TRAFFIC_METRICS_API_SERVICE: &str = "v1alpha1.metrics.smi-spec.io";
const PRESET_KEY: &str = "preset-mesh-config.json";
use osm_api::compat::MESH_CONFIG_NAME as MESH_CONFIG;
const INJECTOR_CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// A certificate with less left than this is replaced.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Sets `bundle` on every client config; true when one differed.
fn set_bundle<'a>(
    configs: impl Iterator<Item = &'a mut WebhookClientConfig>,
    bundle: &ByteString,
) -> bool {
    let mut changed = false;
    for config in configs {
        if config.ca_bundle.as_ref() != Some(bundle) {
            config.ca_bundle = Some(bundle.clone());
            changed = true;
        }
    }
    changed
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub injector_secret_written: bool,
    pub webhooks_patched: Vec<String>,
    pub webhooks_missing: Vec<String>,
    pub mesh_config_created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> BootstrapError {
    let what = what.into();
    move |source| BootstrapError::Api { what, source }
}

/// The controller's cluster set-up.
#[derive(Clone)]
pub struct Bootstrap {
    pub client: Client,
    pub namespace: String,
    pub mesh_name: String,
    /// The mesh CA: its bundle goes into the webhooks and the injector's
    /// Secret, its issuing CA signs the injector's certificate.
    pub ca: Arc<Authority>,
}

fn seconds_left(cert_pem: &[u8]) -> Option<i64> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(cert.validity().not_after.timestamp() - i64::try_from(now).ok()?)
}

impl Bootstrap {
    fn mutating_name(&self) -> String {
        format!("osm-webhook-{}", self.mesh_name)
    }

    fn validating_name(&self) -> String {
        format!("osm-validator-mesh-{}", self.mesh_name)
    }

    /// One pass over everything.
    pub async fn run_once(&self) -> Result<Report, BootstrapError> {
        self.run_with(&[]).await
    }

    /// [`Bootstrap::run_once`], the webhooks also trusting `lingering`
    /// roots (recently retired ones).
    async fn run_with(&self, lingering: &[String]) -> Result<Report, BootstrapError> {
        let mut report = Report {
            injector_secret_written: self.injector_secret().await?,
            ..Report::default()
        };
        self.webhooks(&mut report, lingering).await?;
        report.mesh_config_created = self.mesh_config().await?;
        Ok(report)
    }

    /// The injector's certificate for its Service names, signed by the
    /// mesh CA, made when missing, from another CA, or close to expiry.
    async fn injector_secret(&self) -> Result<bool, BootstrapError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let what = format!("Secret {}/{INJECTOR_SECRET}", self.namespace);
        let existing = api
            .get_opt(INJECTOR_SECRET)
            .await
            .map_err(api_error(&what))?;
        // The whole bundle: during a root rotation, pods injected now must
        // trust the controller whichever root signs its certificate.
        let root = self.ca.trust_bundle();
        if let Some(secret) = &existing {
            let data = secret.data.clone().unwrap_or_default();
            let same_ca = data.get("ca.crt").is_some_and(|c| c.0 == root.as_bytes());
            let fresh = data
                .get("tls.crt")
                .and_then(|c| seconds_left(&c.0))
                .is_some_and(|left| left > RENEW_BEFORE.as_secs() as i64);
            if same_ca && fresh {
                return Ok(false);
            }
        }
        let names: Vec<String> = ["svc", "svc.cluster.local"]
            .iter()
            .map(|suffix| format!("osm-injector.{}.{suffix}", self.namespace))
            .chain([format!("osm-injector.{}", self.namespace)])
            .collect();
        let cert = self
            .ca
            .current()
            .ca
            .serving_cert(&names, INJECTOR_CERT_LIFETIME)
            .map_err(|e| BootstrapError::Invalid(format!("the injector's certificate: {e}")))?;
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(INJECTOR_SECRET.into()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/part-of".to_string(),
                    "osm".to_string(),
                )])),
                resource_version: existing
                    .as_ref()
                    .and_then(|s| s.metadata.resource_version.clone()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(BTreeMap::from([
                (
                    "tls.crt".to_string(),
                    ByteString(cert.chain_pem.into_bytes()),
                ),
                ("tls.key".to_string(), ByteString(cert.key_pem.into_bytes())),
                ("ca.crt".to_string(), ByteString(root.as_bytes().to_vec())),
            ])),
            ..Default::default()
        };
        let pp = PostParams::default();
        match existing {
            Some(_) => api.replace(INJECTOR_SECRET, &pp, &secret).await,
            None => api.create(&pp, &secret).await,
        }
        .map_err(api_error(&what))?;
        tracing::info!(secret = %what, "injector certificate written");
        Ok(true)
    }

    /// Puts the CA into every webhook of both configurations and into the
    /// TrafficMetrics APIService.
    async fn webhooks(
        &self,
        report: &mut Report,
        lingering: &[String],
    ) -> Result<(), BootstrapError> {
        let bundle = ByteString((self.ca.trust_bundle() + &lingering.concat()).into_bytes());
        self.put_ca_bundle::<MutatingWebhookConfiguration>(&self.mutating_name(), report, |c| {
            set_bundle(
                c.webhooks
                    .iter_mut()
                    .flatten()
                    .map(|h| &mut h.client_config),
                &bundle,
            )
        })
        .await?;
        self.put_ca_bundle::<ValidatingWebhookConfiguration>(
            &self.validating_name(),
            report,
            |c| {
                set_bundle(
                    c.webhooks
                        .iter_mut()
                        .flatten()
                        .map(|h| &mut h.client_config),
                    &bundle,
                )
            },
        )
        .await?;
        self.put_ca_bundle::<APIService>(TRAFFIC_METRICS_API_SERVICE, report, |s| {
            let spec = s.spec.get_or_insert_with(Default::default);
            let changed = spec.ca_bundle.as_ref() != Some(&bundle);
            spec.ca_bundle = Some(bundle.clone());
            changed
        })
        .await
    }

    /// Gets a webhook configuration, lets `set` put the bundle in, and
    /// replaces it when that changed something.
    async fn put_ca_bundle<K>(
        &self,
        name: &str,
        report: &mut Report,
        set: impl Fn(&mut K) -> bool,
    ) -> Result<(), BootstrapError>
    where
        K: kube::Resource<Scope = kube::core::ClusterResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + serde::Serialize,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let what = format!("{} {name}", K::kind(&()));
        match api.get_opt(name).await.map_err(api_error(&what))? {
            Some(mut config) => {
                if set(&mut config) {
                    api.replace(name, &PostParams::default(), &config)
                        .await
                        .map_err(api_error(&what))?;
                    report.webhooks_patched.push(what);
                }
            }
            None => report.webhooks_missing.push(what),
        }
        Ok(())
    }

    /// `osm-mesh-config` from the preset, when there is none.
    async fn mesh_config(&self) -> Result<bool, BootstrapError> {
        let gvk = GroupVersionKind::gvk("config.openservicemesh.io", "v1alpha2", "MeshConfig");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "meshconfigs");
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.namespace, &resource);
        let what = format!("MeshConfig {}/{MESH_CONFIG}", self.namespace);
        if api
            .get_opt(MESH_CONFIG)
            .await
            .map_err(api_error(&what))?
            .is_some()
        {
            return Ok(false);
        }
        let presets: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let preset_what = format!("ConfigMap {}/{PRESET_CONFIG_MAP}", self.namespace);
        let Some(preset) = presets
            .get_opt(PRESET_CONFIG_MAP)
            .await
            .map_err(api_error(&preset_what))?
        else {
            return Ok(false);
        };
        let text = preset
            .data
            .as_ref()
            .and_then(|d| d.get(PRESET_KEY))
            .ok_or_else(|| BootstrapError::Invalid(format!("{preset_what} has no {PRESET_KEY}")))?;
        let spec: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| BootstrapError::Invalid(format!("{preset_what}: {PRESET_KEY}: {e}")))?;
        // The mesh's own parser judges the preset before it becomes config.
        let object = serde_json::json!({
            "apiVersion": "config.openservicemesh.io/v1alpha2",
            "kind": "MeshConfig",
            "metadata": {"name": MESH_CONFIG, "namespace": self.namespace},
            "spec": spec,
        });
        osm_api::load::parse_object(object.clone())
            .map_err(|e| BootstrapError::Invalid(format!("{preset_what}: {}", e.message)))?;
        let mesh: DynamicObject =
            serde_json::from_value(object).map_err(|e| BootstrapError::Invalid(e.to_string()))?;
        match api.create(&PostParams::default(), &mesh).await {
            Ok(_) => {
                tracing::info!(meshconfig = %what, "created from the preset");
                Ok(true)
            }
            // Another replica made it first.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(api_error(&what)(e)),
        }
    }

    /// Runs a pass now and every `period` until `stop`; problems are
    /// logged and retried at the next pass.
    pub async fn keep(self, period: Duration, stop: CancellationToken) {
        let mut changes = self.ca.changes();
        let mut retired = Retired::default();
        loop {
            let lingering = retired.follow(&self.ca.trust_bundle(), std::time::Instant::now());
            match self.run_with(&lingering).await {
                Ok(report) => {
                    for missing in &report.webhooks_missing {
                        tracing::debug!(%missing, "not installed; nothing to patch");
                    }
                    for patched in &report.webhooks_patched {
                        tracing::info!(%patched, "CA bundle written");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cluster set-up failed; retrying"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(period) => {}
                // A root rotation's step: the injector's certificate and
                // the webhooks' bundle follow at once.
                changed = changes.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// How long the webhooks' `caBundle` keeps a root after it left the mesh's
/// bundle: the injector presents the certificate of its mounted Secret,
/// which the kubelet updates about a minute after the controller rewrote
/// it.
const RETIRED_GRACE: Duration = Duration::from_secs(300);

/// Roots that left the bundle, and when.
#[derive(Debug, Default)]
struct Retired {
    last: Vec<String>,
    gone: Vec<(String, std::time::Instant)>,
}

impl Retired {
    /// Notes `bundle_pem` at `now`; returns the roots still to trust
    /// beside it.
    fn follow(&mut self, bundle_pem: &str, now: std::time::Instant) -> Vec<String> {
        let roots = crate::ca::chain::pem_blocks(bundle_pem);
        for root in self.last.drain(..) {
            if !roots.contains(&root) {
                self.gone.push((root, now));
            }
        }
        self.gone
            .retain(|(root, at)| now.duration_since(*at) < RETIRED_GRACE && !roots.contains(root));
        self.last = roots;
        self.gone.iter().map(|(root, _)| root.clone()).collect()
    }
}

#[cfg(test)]
mod tests;
