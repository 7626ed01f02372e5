//! The CA kept in the Secret `osm-ca-bundle` (keys `ca.crt` and
//! `private.key`, as OSM kept it): read when it exists, made and stored on
//! first start, never made anew while the mesh runs on a root the Secret
//! lost ([`super::lost_root`]). Two replicas racing to create it both end
//! up with the one that won.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, Client, api::PostParams};

use crate::ca::{CaError, LocalCa};

pub use super::CA_SECRET as SECRET_NAME;
const CERT_KEY: &str = "ca.crt";
const KEY_KEY: &str = "private.key";

fn from_secret(secret: &Secret) -> Result<LocalCa, CaError> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |k: &str| {
        data.get(k)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .ok_or_else(|| CaError::Load(format!("Secret {SECRET_NAME} has no {k}")))
    };
    LocalCa::from_pem(&text(CERT_KEY)?, &text(KEY_KEY)?)
}

/// The mesh CA from `namespace/osm-ca-bundle`, created when missing
/// unless meshed pods of `mesh_name` still depend on the root it held.
pub async fn load_or_create(
    client: Client,
    namespace: &str,
    mesh_name: &str,
    validity: Duration,
) -> Result<LocalCa, CaError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let api_error =
        |e: kube::Error| CaError::Load(format!("Secret {namespace}/{SECRET_NAME}: {e}"));
    if let Some(secret) = api.get_opt(SECRET_NAME).await.map_err(api_error)? {
        return from_secret(&secret);
    }
    if let Some(lost) = super::lost_root::find(client, namespace, mesh_name).await? {
        return Err(CaError::LostRoot(lost.to_string()));
    }
    let ca = LocalCa::generate(validity)?;
    let (cert, key) = ca.to_pem();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "openservicemesh.io".to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (CERT_KEY.to_string(), ByteString(cert.into_bytes())),
            (KEY_KEY.to_string(), ByteString(key.into_bytes())),
        ])),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(ca),
        // Another replica stored its CA first: use that one.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let stored = api.get(SECRET_NAME).await.map_err(api_error)?;
            from_secret(&stored)
        }
        Err(e) => Err(api_error(e)),
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
        let ca = ca_secret::load_or_create(fake.client(), NS, "osm", Duration::from_secs(3600))
            .await
            .unwrap();
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
        let err = ca_secret::load_or_create(fake.client(), NS, "osm", Duration::from_secs(3600))
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
        ca_secret::load_or_create(fake.client(), NS, "osm", Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(fake.get("", "secrets", NS, SECRET_NAME).is_some());

        // Meshed pods, but no previous root (a first install).
        let fake = FakeApi::new();
        meshed_pod(&fake);
        ca_secret::load_or_create(fake.client(), NS, "osm", Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(fake.get("", "secrets", NS, SECRET_NAME).is_some());
    }
}
