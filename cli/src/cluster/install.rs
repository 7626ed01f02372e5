//! `osm install`: applying the rendered chart to a cluster and waiting for
//! the control plane to be ready; listing, upgrading and removing meshes
//! (used by `osm mesh` and `osm uninstall mesh`).

use std::{io::Write, time::Duration};

use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams},
};
use serde::Deserialize as _;
use serde_json::Value;

use super::{chart, client, kinds::lookup, namespace::FIELD_MANAGER};

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

/// Install the mesh's control plane: the chart in deploy/chart/osm,
/// rendered with its values and `--set` overrides, applied server-side;
/// waits until the controller and the injector are ready.
#[derive(Debug, Args)]
pub struct Install {
    /// The mesh's name (namespaces labelled
    /// openservicemesh.io/monitored-by=<name> join it).
    #[arg(long, default_value = "osm")]
    pub mesh_name: String,
    /// The control plane's namespace.
    #[arg(long, default_value = "osm-system")]
    pub osm_namespace: String,
    /// A chart value, key=value (repeatable): osm.controller.replicas=2,
    /// osm.enablePermissiveTrafficPolicy=false, ...
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the manifests instead of applying them.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for the control plane to be ready.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

impl Install {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let manifests = chart::manifests(&self.mesh_name, &self.osm_namespace, &self.set)?;
        if self.dry_run {
            crate::output::print(&manifests)?;
            return Ok(0);
        }
        let client = client().await?;
        let existing = installed(&client, &self.mesh_name)
            .await
            .map_err(anyhow::Error::msg)?;
        if let Some(ns) = existing.first() {
            anyhow::bail!(
                "mesh [{}] is already installed in namespace [{ns}]: upgrade it with `osm mesh upgrade`, \
                 or choose another --mesh-name",
                self.mesh_name
            );
        }
        let mut out = std::io::stdout();
        apply(&client, &mut out, &manifests, &self.osm_namespace)
            .await
            .map_err(anyhow::Error::msg)?;
        wait_ready(
            &client,
            &mut out,
            &self.osm_namespace,
            self.timeout,
            std::time::Duration::from_secs(2),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        println!(
            "OSM installed successfully in namespace [{}] with mesh name [{}]; add namespaces with `osm namespace add NS`",
            self.osm_namespace, self.mesh_name
        );
        Ok(0)
    }
}

#[cfg(test)]
mod tests;
