//! `osm local logs` and `osm local exec`: find a pod (by name or
//! `deploy/NAME`) and its container, then read its log or run a command
//! in its network namespace as that container would run.

use std::{collections::BTreeMap, io::Write as _, net::Ipv4Addr, time::Duration};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod};
use serde_json::Value;

use super::{
    daemon::bin_dir,
    runtime::{
        deployments::owned_by,
        launch::{PodContext, launch},
    },
    shim::exit_code,
    state::{Instance, StateDir},
    store::{Key, Store},
};

/// A pod named directly, or the first ready pod of `deploy/NAME`.
pub fn find_pod(store: &Store, namespace: &str, target: &str) -> anyhow::Result<Value> {
    if let Some(deployment) = target
        .strip_prefix("deploy/")
        .or_else(|| target.strip_prefix("deployment/"))
        .or_else(|| target.strip_prefix("deployments/"))
    {
        store
            .get(&Key::new("Deployment", namespace, deployment))?
            .with_context(|| {
                format!("Error from server (NotFound): deployments.apps \"{deployment}\" not found")
            })?;
        let mut pods: Vec<Value> = store
            .list()?
            .into_iter()
            .filter(|s| s.key.kind == "Pod" && s.key.namespace == namespace)
            .map(|s| s.value)
            .filter(|p| owned_by(p, deployment))
            .collect();
        // Running pods first.
        pods.sort_by_key(|p| p.pointer("/status/phase").and_then(Value::as_str) != Some("Running"));
        return pods
            .into_iter()
            .next()
            .with_context(|| format!("deployment {deployment} has no pods yet"));
    }
    let name = target.strip_prefix("pod/").unwrap_or(target);
    store
        .get(&Key::new("Pod", namespace, name))?
        .with_context(|| format!("Error from server (NotFound): pods \"{name}\" not found"))
}

/// The container `-c` names, else the pod's only app container (or the
/// one its `kubectl.kubernetes.io/default-container` annotation names).
pub fn pick_container(pod: &Pod, wanted: Option<&str>) -> anyhow::Result<Container> {
    let spec = pod.spec.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let all: Vec<Container> = spec
        .init_containers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .chain(spec.containers.clone())
        .collect();
    let default = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .cloned();
    let wanted = wanted
        .map(str::to_string)
        .or(default)
        .or_else(|| (spec.containers.len() == 1).then(|| spec.containers[0].name.clone()));
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    match wanted {
        Some(w) => all.iter().find(|c| c.name == w).cloned().with_context(|| {
            format!(
                "container {w} is not valid for pod {name}: choose one of [{}]",
                names.join(" ")
            )
        }),
        None => anyhow::bail!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            names.join(" ")
        ),
    }
}

/// `osm local logs`.
pub async fn logs(
    state: &StateDir,
    namespace: &str,
    target: &str,
    container: Option<&str>,
    follow: bool,
    tail: Option<usize>,
) -> anyhow::Result<()> {
    let store = Store::new(state.api(), state.api_lock());
    let value = find_pod(&store, namespace, target)?;
    let pod: Pod = serde_json::from_value(value.clone())?;
    let container = pick_container(&pod, container)?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let path = state
        .pod_dir(namespace, &name)
        .join("logs")
        .join(format!("{}.log", container.name));
    let text = std::fs::read(&path).unwrap_or_default();
    let start = match tail {
        Some(n) => {
            let mut newlines = 0;
            text.iter()
                .enumerate()
                .rev()
                .find(|(i, b)| {
                    **b == b'\n' && *i + 1 < text.len() && {
                        newlines += 1;
                        newlines > n
                    }
                })
                .map_or(0, |(i, _)| i + 1)
        }
        None => 0,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&text[start..])?;
    out.flush()?;
    drop(out);
    if follow {
        let uid = value.pointer("/metadata/uid").cloned();
        let mut offset = text.len();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = std::fs::read(&path).unwrap_or_default();
            if now.len() > offset {
                let mut out = std::io::stdout().lock();
                out.write_all(&now[offset..])?;
                out.flush()?;
                offset = now.len();
            }
            let still = store
                .get(&Key::new("Pod", namespace, &name))?
                .and_then(|p| p.pointer("/metadata/uid").cloned());
            if still != uid {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// `osm local exec`: the command's exit code.
pub fn exec(
    state: &StateDir,
    instance: &Instance,
    namespace: &str,
    target: &str,
    container: Option<&str>,
    command: &[String],
) -> anyhow::Result<i32> {
    let status = exec_command(state, instance, namespace, target, container, command)?
        .status()
        .context("cannot run nsenter (util-linux)")?;
    Ok(exit_code(status))
}

/// The stored objects of a kind, typed.
fn of_kind<T: serde::de::DeserializeOwned>(objects: &[crate::store::Stored], kind: &str) -> Vec<T> {
    objects
        .iter()
        .filter(|s| s.key.kind == kind)
        .filter_map(|s| serde_json::from_value(s.value.clone()).ok())
        .collect()
}

/// The process `exec` runs: `command` inside the container (its
/// namespaces, root and working directory, entered through the process
/// its shim recorded), as its user and with its environment.
pub fn exec_command(
    state: &StateDir,
    instance: &Instance,
    namespace: &str,
    target: &str,
    container: Option<&str>,
    command: &[String],
) -> anyhow::Result<std::process::Command> {
    let store = Store::new(state.api(), state.api_lock());
    let value = find_pod(&store, namespace, target)?;
    let pod: Pod = serde_json::from_value(value.clone())?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut container = pick_container(&pod, container)?;
    let pod_ip: Ipv4Addr = value
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("pod {name} is not running yet"))?;
    let netns = instance.netns(namespace, &name);
    if !std::path::Path::new("/run/netns").join(&netns).exists() {
        anyhow::bail!("pod {name} is not running (no network namespace {netns})");
    }
    let dir = state.pod_dir(namespace, &name).join("volumes");
    let volumes: BTreeMap<String, std::path::PathBuf> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .map(|v| (v.name.clone(), dir.join(&v.name)))
        .collect();
    let objects = store.list()?;
    let config_maps: Vec<ConfigMap> = of_kind(&objects, "ConfigMap");
    let secrets: Vec<k8s_openapi::api::core::v1::Secret> = of_kind(&objects, "Secret");
    container.command = Some(command.to_vec());
    container.args = None;
    let bin = bin_dir()?;
    let launch = launch(
        &container,
        &PodContext {
            pod: &pod,
            netns: &netns,
            pod_ip,
            host_ip: instance.gateway(),
            volumes: &volumes,
            config_maps: &config_maps,
            secrets: &secrets,
            bin_dir: &bin,
            hidden: std::slice::from_ref(&state.root),
        },
    )
    .map_err(anyhow::Error::msg)?;
    let pod_dir = state.pod_dir(namespace, &name);
    let enter = crate::runtime::pod::process::enter_container(&pod_dir, &container.name)
        .with_context(|| {
            format!(
                "container {} of pod {name} is not running (see `osm local describe pod {name} -n {namespace}`)",
                container.name
            )
        })?;
    let mut process = std::process::Command::new(&enter[0]);
    process
        .args(&enter[1..])
        .arg(&launch.program)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/");
    Ok(process)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_container_is_chosen_like_kubectl() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "osm-proxy"}], "containers": [{"name": "app"}]},
        }))
        .unwrap();
        assert_eq!(pick_container(&pod, None).unwrap().name, "app");
        assert_eq!(
            pick_container(&pod, Some("osm-proxy")).unwrap().name,
            "osm-proxy"
        );
        let err = pick_container(&pod, Some("nope")).unwrap_err().to_string();
        assert_eq!(
            err,
            "container nope is not valid for pod p: choose one of [osm-proxy app]"
        );
        let two: Pod = serde_json::from_value(json!({
            "metadata": {"name": "q"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}))
        .unwrap();
        assert!(
            pick_container(&two, None)
                .unwrap_err()
                .to_string()
                .contains("choose one of: [a b]")
        );
    }
}
