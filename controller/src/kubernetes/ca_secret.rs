//! The CA kept in the Secret `osm-ca-bundle` (keys `ca.crt` and
//! `private.key`, as OSM kept it): read when it exists, made and stored on
//! first start, never made anew while the mesh runs on a root the Secret
//! lost ([`super::lost_root`]). Two replicas racing to create it both end
//! up with the one that won.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, Client, api::PostParams};

use crate::ca::{CaError, LocalCa};

pub const SECRET_NAME: &str = "osm-ca-bundle";
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
