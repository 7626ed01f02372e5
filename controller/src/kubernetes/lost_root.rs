//! A CA Secret that vanished while the mesh still runs on its root.
//!
//! Making a new root then looks harmless (the controller starts, new pods
//! work) but every running proxy holds a certificate from the old root and
//! trusts only it: within a certificate lifetime they can neither renew
//! nor reach each other's new peers. So when `osm-ca-bundle` is missing
//! the controller first looks for evidence of a previous root: the
//! injector's Secret (issued from it, carrying it as `ca.crt`) and meshed
//! pods still running. With both it refuses to start and says how to
//! restore the Secret or, knowingly, start over.

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::{Api, Client, api::ListParams};

use super::{CA_SECRET as SECRET_NAME, bootstrap::INJECTOR_SECRET};
use crate::ca::CaError;

/// The root the running mesh depends on, which no Secret holds any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRoot {
    pub namespace: String,
    /// The root's subject and end of validity, as far as they can be read.
    pub root: String,
    /// A meshed pod still running (`namespace/name`).
    pub meshed_pod: String,
}

impl std::fmt::Display for LostRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = &self.namespace;
        write!(
            f,
            "Secret {ns}/{SECRET_NAME} is gone, but the mesh still runs on the root it held \
             ({root}): Secret {ns}/{INJECTOR_SECRET} was issued from it and meshed pods still \
             run (for example {pod}), their proxies holding certificates from it and trusting \
             only it. A new root would be trusted by none of them; they would fail to renew \
             within their certificates' lifetime. Restore the Secret from a backup \
             (kubectl apply -f the saved {SECRET_NAME}) and restart the controller. To start \
             over with a new root instead, knowing every meshed pod must then be restarted: \
             kubectl -n {ns} delete secret {INJECTOR_SECRET}, then restart the controller",
            root = self.root,
            pod = self.meshed_pod,
        )
    }
}

/// Subject and expiry of a PEM certificate, for the message.
fn describe_root(pem: &[u8]) -> String {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(pem) else {
        return "a root that cannot be read".into();
    };
    match pem.parse_x509() {
        Ok(cert) => format!(
            "{}, valid until {}",
            cert.subject(),
            cert.validity().not_after
        ),
        Err(_) => "a root that cannot be read".into(),
    }
}

/// The lost root, when the injector's Secret still carries one and a
/// meshed pod of `mesh_name` still runs; None when a new root breaks
/// nothing.
pub async fn find(
    client: Client,
    namespace: &str,
    mesh_name: &str,
) -> Result<Option<LostRoot>, CaError> {
    let load = |what: String| move |e: kube::Error| CaError::Load(format!("{what}: {e}"));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let Some(injector) = secrets
        .get_opt(INJECTOR_SECRET)
        .await
        .map_err(load(format!("Secret {namespace}/{INJECTOR_SECRET}")))?
    else {
        return Ok(None);
    };
    let Some(root) = injector.data.as_ref().and_then(|d| d.get("ca.crt")) else {
        return Ok(None);
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let monitored =
        ListParams::default().labels(&format!("{}={mesh_name}", osm_api::compat::MONITORED_BY));
    let meshed_namespaces = namespaces
        .list(&monitored)
        .await
        .map_err(load("the mesh's namespaces".into()))?;
    for ns in meshed_namespaces.items {
        let Some(name) = ns.metadata.name else {
            continue;
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
        let listed = pods
            .list(&ListParams::default())
            .await
            .map_err(load(format!("the pods of {name}")))?;
        if let Some(pod) = listed.items.iter().find(|p| osm_api::k8s::has_proxy(*p)) {
            return Ok(Some(LostRoot {
                namespace: namespace.to_string(),
                root: describe_root(&root.0),
                meshed_pod: format!("{name}/{}", pod.metadata.name.as_deref().unwrap_or("")),
            }));
        }
    }
    Ok(None)
}
