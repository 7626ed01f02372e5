//! The CA kept in the Secret `osm-ca-bundle` (keys `ca.crt` and
//! `private.key`, as OSM kept it, and a root rotation's state beside them):
//! read when it exists, made and stored on first start, never made anew
//! while the mesh runs on a root the Secret lost ([`super::lost_root`]).
//! Two replicas racing to create it both end up with the one that won; a
//! write over a Secret changed since it was read is refused (its
//! `resourceVersion`), so two replicas cannot overwrite each other's
//! rotation step.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, Client, api::PostParams};

use crate::ca::{
    CaError, LocalCa,
    rotation::{self, Phase, Stored},
    store::CaStore,
};

pub use super::CA_SECRET as SECRET_NAME;

/// The Secret's keys a rotation writes (left out of the data it keeps).
const ROTATION_PREFIX: &str = "rotation.";

fn decode(secret: &Secret) -> Result<Stored, CaError> {
    let data: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    rotation::decode(&data).map_err(|e| CaError::Load(format!("Secret {SECRET_NAME}: {e}")))
}

/// The Secret `osm-ca-bundle` of a namespace.
#[derive(Clone)]
pub struct SecretStore {
    client: Client,
    namespace: String,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl SecretStore {
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            client,
            namespace: namespace.into(),
        }
    }

    fn api(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn api_error(&self) -> impl Fn(kube::Error) -> CaError + '_ {
        move |e| CaError::Load(format!("Secret {}/{SECRET_NAME}: {e}", self.namespace))
    }

    /// The mesh CA, created when missing unless meshed pods of
    /// `mesh_name` still depend on the root the Secret held.
    pub async fn load_or_create(
        &self,
        mesh_name: &str,
        validity: Duration,
    ) -> Result<Stored, CaError> {
        let api = self.api();
        if let Some(secret) = api.get_opt(SECRET_NAME).await.map_err(self.api_error())? {
            return decode(&secret);
        }
        if let Some(lost) =
            super::lost_root::find(self.client.clone(), &self.namespace, mesh_name).await?
        {
            return Err(CaError::LostRoot(lost.to_string()));
        }
        let (cert, key) = LocalCa::generate(validity)?.to_pem();
        let stored = Stored {
            cert,
            key,
            phase: Phase::Steady,
        };
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(SECRET_NAME.into()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/name".to_string(),
                    "openservicemesh.io".to_string(),
                )])),
                ..Default::default()
            },
            data: Some(bytes(&rotation::encode(&stored))),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(stored),
            // Another replica stored its CA first: use that one.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                decode(&api.get(SECRET_NAME).await.map_err(self.api_error())?)
            }
            Err(e) => Err(self.api_error()(e)),
        }
    }
}

fn bytes(data: &BTreeMap<String, String>) -> BTreeMap<String, ByteString> {
    data.iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
        .collect()
}

#[tonic::async_trait]
impl CaStore for SecretStore {
    async fn load(&self) -> Result<Stored, CaError> {
        decode(
            &self
                .api()
                .get(SECRET_NAME)
                .await
                .map_err(self.api_error())?,
        )
    }

    async fn save(&self, stored: &Stored, _bundle_pem: &str) -> Result<(), CaError> {
        let api = self.api();
        let mut secret = api.get(SECRET_NAME).await.map_err(self.api_error())?;
        // Keys of the user's own are kept; the CA's and the rotation's are
        // written whole.
        let mut data = secret.data.take().unwrap_or_default();
        data.retain(|k, _| {
            !k.starts_with(ROTATION_PREFIX) && k != rotation::CERT_KEY && k != rotation::KEY_KEY
        });
        data.extend(bytes(&rotation::encode(stored)));
        secret.data = Some(data);
        // The resourceVersion read above makes the write fail if another
        // replica wrote in between.
        api.replace(SECRET_NAME, &PostParams::default(), &secret)
            .await
            .map_err(self.api_error())?;
        Ok(())
    }
}

/// The guard against a lost root ([`super::lost_root`]), as `load_or_create` applies it.
#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use serde_json::json;

    use crate::kubernetes::{bootstrap::Bootstrap, ca_secret, fake::FakeApi};

    const SECRET_NAME: &str = super::SECRET_NAME;

    const NS: &str = "osm-system";

    fn meshed_pod(fake: &FakeApi) {
        fake.put(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"openservicemesh.io/monitored-by": "osm"}}}));
        fake.put(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"initContainers": [{"name": "osm-proxy", "image": "p"}],
                "containers": [{"name": "app", "image": "a"}]}}));
    }

    /// A cluster a controller ran in: the CA Secret and the injector's.
    async fn ran_once(fake: &FakeApi) {
        let stored = ca_secret::SecretStore::new(fake.client(), NS)
            .load_or_create("osm", Duration::from_secs(3600))
            .await
            .unwrap();
        let ca = crate::ca::authority::Authority::fixed(Arc::new(
            crate::ca::LocalCa::from_pem(&stored.cert, &stored.key).unwrap(),
        ));
        let bootstrap = Bootstrap {
            client: fake.client(),
            namespace: NS.into(),
            mesh_name: "osm".into(),
            ca: Arc::new(ca),
        };
        bootstrap.run_once().await.unwrap();
    }

    #[tokio::test]
    async fn a_vanished_root_with_meshed_pods_is_not_replaced() {
        let fake = FakeApi::new();
        ran_once(&fake).await;
        meshed_pod(&fake);
        fake.delete("", "secrets", NS, SECRET_NAME, true);
        let err = ca_secret::SecretStore::new(fake.client(), NS)
            .load_or_create("osm", Duration::from_secs(3600))
            .await
            .unwrap_err()
            .to_string();
        for needle in [
            "Secret osm-system/osm-ca-bundle is gone",
            "shop/web-1",
            "Restore the Secret from a backup",
            "delete secret osm-injector-tls",
        ] {
            assert!(err.contains(needle), "{needle:?} in {err}");
        }
        assert!(
            fake.get("", "secrets", NS, SECRET_NAME).is_none(),
            "no new root was stored"
        );
    }

    #[tokio::test]
    async fn without_meshed_pods_or_a_previous_root_a_new_root_is_made() {
        // A controller ran, but nothing is meshed any more.
        let fake = FakeApi::new();
        ran_once(&fake).await;
        fake.delete("", "secrets", NS, SECRET_NAME, true);
        ca_secret::SecretStore::new(fake.client(), NS)
            .load_or_create("osm", Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(fake.get("", "secrets", NS, SECRET_NAME).is_some());

        // Meshed pods, but no previous root (a first install).
        let fake = FakeApi::new();
        meshed_pod(&fake);
        ca_secret::SecretStore::new(fake.client(), NS)
            .load_or_create("osm", Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(fake.get("", "secrets", NS, SECRET_NAME).is_some());
    }
}
