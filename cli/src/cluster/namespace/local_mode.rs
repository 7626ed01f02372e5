//! `osm namespace add|remove|list|ignore --local`: the same decisions as
//! on a cluster, applied to local mode's stored namespaces.

use std::io::Write;

use k8s_openapi::api::core::v1::Namespace;
use osm_local::store::Key;

use super::{IGNORE, decide_add, decide_remove, write_list};
use crate::cluster::local::LocalTarget;

/// What a namespace verb does to one stored namespace.
pub enum NamespaceChange<'a> {
    Add {
        mesh: &'a str,
        disable_injection: bool,
    },
    Remove {
        mesh: &'a str,
    },
    Ignore,
}

/// `osm namespace add|remove|ignore --local` on one namespace: the line to
/// print, or the refusal.
pub fn change_namespace(
    target: &LocalTarget,
    name: &str,
    change: &NamespaceChange<'_>,
) -> anyhow::Result<Result<String, String>> {
    let store = target.store()?;
    let _lock = store.lock()?;
    let key = Key::new("Namespace", "", name);
    let Some(mut value) = store.get(&key)? else {
        return Ok(Err(format!(
            "Namespace [{name}] does not exist: create it first (osm local apply -f)"
        )));
    };
    let typed: Namespace = serde_json::from_value(value.clone())?;
    let decided = match change {
        NamespaceChange::Add {
            mesh,
            disable_injection,
        } => decide_add(
            &typed,
            mesh,
            osm_local::state::OSM_NAMESPACE,
            *disable_injection,
        )
        .map(|p| {
            (
                p,
                format!("Namespace [{name}] successfully added to mesh [{mesh}]"),
            )
        }),
        NamespaceChange::Remove { mesh } => decide_remove(&typed, mesh).map(|p| {
            (
                p,
                format!("Namespace [{name}] successfully removed from mesh [{mesh}]"),
            )
        }),
        NamespaceChange::Ignore => Ok((
            serde_json::json!({"metadata": {"labels": {IGNORE: "true"}}}),
            format!("Namespace [{name}] is now ignored by every mesh"),
        )),
    };
    Ok(match decided {
        Ok((patch, line)) => {
            json_patch::merge(&mut value, &patch);
            store.put(&value)?;
            Ok(line)
        }
        Err(e) => Err(e),
    })
}

/// `osm namespace list --local`.
pub fn list_namespaces(
    target: &LocalTarget,
    out: &mut dyn Write,
    mesh: Option<&str>,
) -> anyhow::Result<()> {
    let namespaces: Vec<Namespace> = target
        .store()?
        .list()?
        .into_iter()
        .filter(|s| s.key.kind == "Namespace")
        .filter_map(|s| serde_json::from_value(s.value).ok())
        .collect();
    write_list(out, &namespaces, mesh)?;
    Ok(())
}
