//! `osm namespace add|remove|list|ignore`: the labels and annotation that
//! put a namespace in a mesh (`openservicemesh.io/monitored-by`,
//! `openservicemesh.io/sidecar-injection`) or keep it out
//! (`openservicemesh.io/ignore`). Decisions are pure; the API calls are
//! merge patches with the field manager `osm`.

use std::io::Write;

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{client, code, local};

pub use osm_api::compat::{IGNORE, MONITORED_BY, SIDECAR_INJECTION as INJECTION};
pub const FIELD_MANAGER: &str = "osm";

fn label<'a>(ns: &'a Namespace, key: &str) -> Option<&'a str> {
    ns.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// What `add` does to one namespace (pure): the merge patch, or why not.
pub fn decide_add(
    ns: &Namespace,
    mesh: &str,
    osm_namespace: &str,
    disable_injection: bool,
) -> Result<Value, String> {
    let name = ns.metadata.name.as_deref().unwrap_or_default();
    if name == osm_namespace {
        return Err(format!(
            "Namespace [{name}] is the control plane's namespace: it cannot join a mesh"
        ));
    }
    if label(ns, IGNORE).is_some() {
        return Err(format!(
            "Namespace [{name}] is ignored by the mesh (label {IGNORE}): remove the label first \
             (kubectl label namespace {name} {IGNORE}-)"
        ));
    }
    if let Some(other) = label(ns, MONITORED_BY).filter(|m| *m != mesh) {
        return Err(format!(
            "Namespace [{name}] already belongs to mesh [{other}]: remove it first \
             (osm namespace remove {name} --mesh-name {other})"
        ));
    }
    let injection = if disable_injection {
        "disabled"
    } else {
        "enabled"
    };
    Ok(json!({"metadata": {
        "labels": {MONITORED_BY: mesh},
        "annotations": {INJECTION: injection},
    }}))
}

/// What `remove` does (pure).
pub fn decide_remove(ns: &Namespace, mesh: &str) -> Result<Value, String> {
    let name = ns.metadata.name.as_deref().unwrap_or_default();
    match label(ns, MONITORED_BY) {
        Some(m) if m == mesh => Ok(json!({"metadata": {
            "labels": {MONITORED_BY: null},
            "annotations": {INJECTION: null},
        }})),
        Some(other) => Err(format!(
            "Namespace [{name}] belongs to mesh [{other}], not [{mesh}] (use --mesh-name {other})"
        )),
        None => Err(format!("Namespace [{name}] is not in any mesh")),
    }
}

fn not_found(name: &str, e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 404 => {
            format!(
                "Namespace [{name}] does not exist: create it first (kubectl create namespace {name})"
            )
        }
        other => format!("Namespace [{name}]: {other}"),
    }
}

async fn patch(api: &Api<Namespace>, name: &str, body: &Value) -> Result<(), String> {
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Merge(body),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("Namespace [{name}]: {e}"))
}

/// `osm namespace add`: a line per namespace; false when any failed.
pub async fn add(
    client: Client,
    out: &mut impl Write,
    names: &[String],
    mesh: &str,
    osm_namespace: &str,
    disable_injection: bool,
) -> std::io::Result<bool> {
    let api: Api<Namespace> = Api::all(client);
    let mut ok = true;
    for name in names {
        let result = async {
            let ns = api.get(name).await.map_err(|e| not_found(name, e))?;
            let body = decide_add(&ns, mesh, osm_namespace, disable_injection)?;
            patch(&api, name, &body).await
        }
        .await;
        match result {
            Ok(()) if disable_injection => writeln!(
                out,
                "Namespace [{name}] successfully added to mesh [{mesh}] without sidecar injection"
            )?,
            Ok(()) => writeln!(
                out,
                "Namespace [{name}] successfully added to mesh [{mesh}]"
            )?,
            Err(e) => {
                writeln!(out, "{e}")?;
                ok = false;
            }
        }
    }
    Ok(ok)
}

/// `osm namespace remove`.
pub async fn remove(
    client: Client,
    out: &mut impl Write,
    name: &str,
    mesh: &str,
) -> std::io::Result<bool> {
    let api: Api<Namespace> = Api::all(client);
    let result = async {
        let ns = api.get(name).await.map_err(|e| not_found(name, e))?;
        let body = decide_remove(&ns, mesh)?;
        patch(&api, name, &body).await
    }
    .await;
    match result {
        Ok(()) => {
            writeln!(
                out,
                "Namespace [{name}] successfully removed from mesh [{mesh}]"
            )?;
            writeln!(
                out,
                "Pods created from now on get no sidecar; restart the running ones to remove theirs."
            )?;
            Ok(true)
        }
        Err(e) => {
            writeln!(out, "{e}")?;
            Ok(false)
        }
    }
}

/// `osm namespace ignore`.
pub async fn ignore(
    client: Client,
    out: &mut impl Write,
    names: &[String],
) -> std::io::Result<bool> {
    let api: Api<Namespace> = Api::all(client);
    let mut ok = true;
    for name in names {
        let result = async {
            api.get(name).await.map_err(|e| not_found(name, e))?;
            patch(
                &api,
                name,
                &json!({"metadata": {"labels": {IGNORE: "true"}}}),
            )
            .await
        }
        .await;
        match result {
            Ok(()) => writeln!(out, "Namespace [{name}] is now ignored by every mesh")?,
            Err(e) => {
                writeln!(out, "{e}")?;
                ok = false;
            }
        }
    }
    Ok(ok)
}

/// `osm namespace list`: the namespaces of one mesh, or of every mesh.
pub async fn list(client: Client, out: &mut impl Write, mesh: Option<&str>) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client);
    let selector = match mesh {
        Some(m) => format!("{MONITORED_BY}={m}"),
        None => MONITORED_BY.to_string(),
    };
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("listing namespaces: {e}"))?;
    write_list(out, &list.items, mesh).map_err(|e| e.to_string())
}

/// The table of `namespace list` for the namespaces of `mesh` (every mesh
/// when None) among `namespaces`.
pub fn write_list(
    out: &mut dyn Write,
    namespaces: &[Namespace],
    mesh: Option<&str>,
) -> std::io::Result<()> {
    let rows: Vec<[String; 3]> = namespaces
        .iter()
        .filter_map(|ns| {
            let owner = label(ns, MONITORED_BY)?;
            if mesh.is_some_and(|m| m != owner) {
                return None;
            }
            let injection = ns
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(INJECTION))
                .map_or("enabled", String::as_str);
            Some([
                ns.metadata.name.clone().unwrap_or_default(),
                owner.to_string(),
                injection.to_string(),
            ])
        })
        .collect();
    if rows.is_empty() {
        return writeln!(
            out,
            "No namespace is in {}",
            mesh.map_or("any mesh".to_string(), |m| format!("mesh [{m}]"))
        );
    }
    crate::table::write(out, &["NAMESPACE", "MESH", "SIDECAR-INJECTION"], &rows)
}

/// `osm namespace`: which namespaces are in a mesh.
#[derive(Debug, clap::Subcommand)]
pub enum NamespaceCommand {
    /// Put namespaces in the mesh: new pods get a sidecar (unless
    /// --disable-sidecar-injection) and their traffic is governed by it.
    Add {
        #[arg(required = true)]
        namespaces: Vec<String>,
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        /// The control plane's namespace, which can never join.
        #[arg(long, default_value = "osm-system")]
        osm_namespace: String,
        /// Monitor the namespace without injecting sidecars.
        #[arg(long)]
        disable_sidecar_injection: bool,
        #[command(flatten)]
        target: local::LocalTarget,
    },
    /// Take a namespace out of the mesh (running pods keep their sidecar
    /// until restarted).
    Remove {
        namespace: String,
        #[arg(long, default_value = "osm")]
        mesh_name: String,
        #[command(flatten)]
        target: local::LocalTarget,
    },
    /// List the namespaces in a mesh (every mesh without --mesh-name).
    List {
        #[arg(long)]
        mesh_name: Option<String>,
        #[command(flatten)]
        target: local::LocalTarget,
    },
    /// Keep namespaces out of every mesh (label openservicemesh.io/ignore).
    Ignore {
        #[arg(required = true)]
        namespaces: Vec<String>,
        #[command(flatten)]
        target: local::LocalTarget,
    },
}

impl NamespaceCommand {
    fn local_target(&self) -> &local::LocalTarget {
        match self {
            NamespaceCommand::Add { target, .. }
            | NamespaceCommand::Remove { target, .. }
            | NamespaceCommand::List { target, .. }
            | NamespaceCommand::Ignore { target, .. } => target,
        }
    }

    fn run_local(&self) -> anyhow::Result<i32> {
        let target = self.local_target();
        let (names, change): (Vec<&String>, local_mode::NamespaceChange<'_>) = match self {
            NamespaceCommand::List { mesh_name, .. } => {
                local_mode::list_namespaces(target, &mut std::io::stdout(), mesh_name.as_deref())?;
                return Ok(0);
            }
            NamespaceCommand::Add {
                namespaces,
                mesh_name,
                disable_sidecar_injection,
                ..
            } => (
                namespaces.iter().collect(),
                local_mode::NamespaceChange::Add {
                    mesh: mesh_name,
                    disable_injection: *disable_sidecar_injection,
                },
            ),
            NamespaceCommand::Remove {
                namespace,
                mesh_name,
                ..
            } => (
                vec![namespace],
                local_mode::NamespaceChange::Remove { mesh: mesh_name },
            ),
            NamespaceCommand::Ignore { namespaces, .. } => (
                namespaces.iter().collect(),
                local_mode::NamespaceChange::Ignore,
            ),
        };
        let mut ok = true;
        for name in names {
            match local_mode::change_namespace(target, name, &change)? {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    println!("{e}");
                    ok = false;
                }
            }
        }
        Ok(code(ok))
    }

    pub async fn run(&self) -> anyhow::Result<i32> {
        if self.local_target().local {
            return self.run_local();
        }
        let client = client().await?;
        let mut out = std::io::stdout();
        Ok(match self {
            NamespaceCommand::Add {
                namespaces,
                mesh_name,
                osm_namespace,
                disable_sidecar_injection,
                ..
            } => code(
                add(
                    client,
                    &mut out,
                    namespaces,
                    mesh_name,
                    osm_namespace,
                    *disable_sidecar_injection,
                )
                .await?,
            ),
            NamespaceCommand::Remove {
                namespace: ns,
                mesh_name,
                ..
            } => code(remove(client, &mut out, ns, mesh_name).await?),
            NamespaceCommand::List { mesh_name, .. } => {
                list(client, &mut out, mesh_name.as_deref())
                    .await
                    .map_err(anyhow::Error::msg)?;
                0
            }
            NamespaceCommand::Ignore { namespaces, .. } => {
                code(ignore(client, &mut out, namespaces).await?)
            }
        })
    }
}

mod local_mode;

#[cfg(test)]
mod tests;
