//! Applying the rendered chart to a cluster (`osm install`), and waiting
//! for the control plane to be ready; listing and removing meshes
//! (`osm mesh list`, `osm uninstall mesh`).

use std::{io::Write, time::Duration};

use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams},
};
use serde::Deserialize as _;
use serde_json::Value;

use super::{kinds::lookup, namespace::FIELD_MANAGER};

/// The control plane's Deployments (name, label app).
pub const COMPONENTS: &[&str] = &["osm-controller", "osm-injector"];

/// The objects of a YAML stream, in order.
pub fn documents(manifests: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(manifests).enumerate() {
        let v = Value::deserialize(doc).map_err(|e| format!("manifest {}: {e}", i + 1))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn name_of(v: &Value) -> String {
    format!(
        "{}/{}",
        v["kind"].as_str().unwrap_or("?").to_lowercase(),
        v["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn api_for(client: &Client, object: &Value) -> Result<(Api<DynamicObject>, String), String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (resource, namespaced) = lookup(api_version, kind).ok_or_else(|| {
        format!("{kind} {api_version}: not a kind osm install knows how to apply")
    })?;
    let name = object["metadata"]["name"]
        .as_str()
        .ok_or_else(|| format!("a {kind} without a name"))?
        .to_string();
    let api = if namespaced {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .ok_or_else(|| format!("{kind} {name} has no namespace"))?;
        Api::namespaced_with(client.clone(), ns, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    };
    Ok((api, name))
}

/// The namespaces where a mesh of this name runs (its controller
/// Deployment, labelled by the chart).
pub async fn installed(client: &Client, mesh: &str) -> Result<Vec<String>, String> {
    let api: Api<Deployment> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(&format!(
            "app=osm-controller,app.kubernetes.io/instance={mesh}"
        )))
        .await
        .map_err(|e| format!("listing meshes: {e}"))?;
    Ok(list
        .items
        .iter()
        .filter_map(|d| d.metadata.namespace.clone())
        .collect())
}

/// Server-side applies every object (force: the chart owns its fields),
/// the control plane's namespace first.
pub async fn apply(
    client: &Client,
    out: &mut impl Write,
    manifests: &str,
    namespace: &str,
) -> Result<(), String> {
    let mut objects = documents(manifests)?;
    objects.insert(
        0,
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    );
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in &objects {
        let (api, name) = api_for(client, object)?;
        api.patch(&name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| format!("applying {}: {e}", name_of(object)))?;
        writeln!(out, "{} applied", name_of(object)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Waits until every component Deployment has all its replicas ready,
/// printing progress; Err names what is not ready.
pub async fn wait_ready(
    client: &Client,
    out: &mut impl Write,
    namespace: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<(), String> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let began = tokio::time::Instant::now();
    let mut last = String::new();
    loop {
        let mut waiting = Vec::new();
        let mut states = Vec::new();
        for component in COMPONENTS {
            let (ready, wanted) = match api.get_opt(component).await.map_err(|e| e.to_string())? {
                Some(d) => (
                    d.status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0),
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ),
                None => (0, 1),
            };
            states.push(format!("{component} {ready}/{wanted}"));
            if ready < wanted {
                waiting.push(*component);
            }
        }
        let line = states.join(", ");
        if line != last {
            writeln!(out, "ready: {line}").map_err(|e| e.to_string())?;
            last = line;
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if began.elapsed() >= timeout {
            return Err(format!(
                "{} not ready after {}s: see kubectl -n {namespace} describe deployment {} (and its pods' events)",
                waiting.join(" and "),
                timeout.as_secs(),
                waiting.join(" ")
            ));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Re-applies the chart to an installed mesh and waits for it.
pub async fn upgrade(
    client: &Client,
    out: &mut impl Write,
    manifests: &str,
    mesh: &str,
    namespace: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<(), String> {
    if !installed(client, mesh)
        .await?
        .iter()
        .any(|n| n == namespace)
    {
        return Err(format!(
            "no mesh [{mesh}] in namespace [{namespace}] to upgrade (see `osm mesh list`, or `osm install`)"
        ));
    }
    apply(client, out, manifests, namespace).await?;
    wait_ready(client, out, namespace, timeout, poll).await
}

/// Deletes what the chart made; CRDs and the CA's Secrets only when
/// `cluster_wide` (their loss breaks every mesh resource and identity).
pub async fn uninstall(
    client: &Client,
    out: &mut impl Write,
    manifests: &str,
    namespace: &str,
    cluster_wide: bool,
    delete_namespace: bool,
) -> Result<(), String> {
    let mut objects = documents(manifests)?;
    if cluster_wide {
        for secret in ["osm-ca-bundle", "osm-injector-tls"] {
            objects.push(serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": secret, "namespace": namespace}}));
        }
    } else {
        objects.retain(|o| o["kind"] != "CustomResourceDefinition");
    }
    if delete_namespace {
        objects.push(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}));
    }
    // Workloads first, definitions last: the reverse of install.
    for object in objects.iter().rev() {
        let (api, name) = api_for(client, object)?;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => writeln!(out, "{} deleted", name_of(object)).map_err(|e| e.to_string())?,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(format!("deleting {}: {e}", name_of(object))),
        }
    }
    Ok(())
}

/// `osm mesh list`: every mesh's name, namespace, version and readiness.
pub async fn list(client: &Client, out: &mut impl Write) -> Result<(), String> {
    let api: Api<Deployment> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels("app=osm-controller"))
        .await
        .map_err(|e| format!("listing meshes: {e}"))?;
    if list.items.is_empty() {
        writeln!(
            out,
            "No osm mesh is installed in this cluster (osm install)"
        )
        .map_err(|e| e.to_string())?;
        return Ok(());
    }
    let rows: Vec<[String; 4]> = list
        .items
        .iter()
        .map(|d| {
            let labels = d.metadata.labels.clone().unwrap_or_default();
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            [
                labels
                    .get("app.kubernetes.io/instance")
                    .cloned()
                    .unwrap_or_default(),
                d.metadata.namespace.clone().unwrap_or_default(),
                labels
                    .get("app.kubernetes.io/version")
                    .cloned()
                    .unwrap_or_default(),
                format!("{ready}/{wanted}"),
            ]
        })
        .collect();
    crate::table::write(
        out,
        &["MESH NAME", "NAMESPACE", "VERSION", "CONTROLLER READY"],
        &rows,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
