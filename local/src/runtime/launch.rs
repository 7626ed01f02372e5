//! How a container becomes a process (pure): its `command` and `args`
//! with `$(VAR)` references expanded, its environment (values, downward
//! API fields, ConfigMap keys), its user, and its sandbox (the pod's
//! network namespace and hosts file, its volumes at their mount paths, the
//! host read-only without the state directory: `crate::sandbox`). Images
//! are not pulled, so a container must say what to run.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};

use crate::sandbox::{Mount, Sandbox};

/// A process to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub uid: u32,
    pub sandbox: Sandbox,
}

/// Who runs a container when neither it nor its pod names a user and it
/// does not ask for root: unprivileged, and no host account's (65532 is
/// distroless' `nonroot`).
pub const DEFAULT_UID: u32 = 65532;

/// What a launch needs besides the container.
#[derive(Debug)]
pub struct PodContext<'a> {
    pub pod: &'a Pod,
    pub netns: &'a str,
    pub pod_ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
    /// Volume name -> where its content is on the host.
    pub volumes: &'a BTreeMap<String, PathBuf>,
    pub config_maps: &'a [ConfigMap],
    pub secrets: &'a [Secret],
    /// Where the mesh's binaries are (first on PATH; visible read-only).
    pub bin_dir: &'a Path,
    /// Host paths no container may see (the state directory).
    pub hidden: &'a [PathBuf],
}

/// Where containers see the mesh's binaries: a path of their own, so a
/// build directory below a private one (`/root/...`) still runs them.
pub const BIN_MOUNT: &str = "/osm/bin";

const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `$(NAME)` replaced by a defined variable; `$$(NAME)` escapes it;
/// undefined references stay as written (Kubernetes' rules).
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$$") {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("$(")
            && let Some(end) = tail.find(')')
        {
            match vars.get(&tail[..end]) {
                Some(v) => out.push_str(v),
                None => out.push_str(&after[..end + 3]),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

fn field(pod: &Pod, ctx: &PodContext<'_>, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let map_key = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        let key = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    if let Some(v) = map_key("metadata.labels", meta.labels.as_ref()) {
        return Ok(v);
    }
    if let Some(v) = map_key("metadata.annotations", meta.annotations.as_ref()) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        "status.podIP" => ctx.pod_ip.to_string(),
        "status.hostIP" => ctx.host_ip.to_string(),
        other => return Err(format!("fieldRef {other:?} is not supported in local mode")),
    })
}

fn config_map_key(ctx: &PodContext<'_>, namespace: &str, name: &str, key: &str) -> Option<String> {
    ctx.config_maps
        .iter()
        .find(|c| {
            c.metadata.name.as_deref() == Some(name)
                && c.metadata.namespace.as_deref() == Some(namespace)
        })
        .and_then(|c| c.data.as_ref()?.get(key).cloned())
}

/// Whether Kubernetes always mounts a volume read-only (configMap,
/// secret, projected).
fn always_read_only(pod: &Pod, volume: &str) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .find(|v| v.name == volume)
        .is_some_and(|v| v.config_map.is_some() || v.secret.is_some() || v.projected.is_some())
}

/// The container's mounts: its volumes at their mount paths, the pod's
/// hosts file, the mesh's binaries.
fn mounts(container: &Container, ctx: &PodContext<'_>) -> Result<Vec<Mount>, String> {
    let mut out = vec![
        Mount {
            source: Path::new("/etc/netns").join(ctx.netns).join("hosts"),
            target: PathBuf::from("/etc/hosts"),
            read_only: true,
        },
        Mount {
            source: ctx.bin_dir.to_path_buf(),
            target: PathBuf::from(BIN_MOUNT),
            read_only: true,
        },
    ];
    for m in container.volume_mounts.iter().flatten() {
        let host = ctx.volumes.get(&m.name).ok_or_else(|| {
            format!(
                "volumeMounts: volume {:?} is not defined in the pod",
                m.name
            )
        })?;
        let source = match m.sub_path.as_deref() {
            Some(sub) if !sub.is_empty() => {
                if Path::new(sub).is_absolute() || sub.split('/').any(|part| part == "..") {
                    return Err(format!(
                        "volumeMounts: subPath {sub:?} must be a relative path without '..'"
                    ));
                }
                host.join(sub)
            }
            _ => host.clone(),
        };
        if !m.mount_path.starts_with('/') {
            return Err(format!(
                "volumeMounts: mountPath {:?} must be absolute",
                m.mount_path
            ));
        }
        out.push(Mount {
            source,
            target: PathBuf::from(&m.mount_path),
            read_only: m.read_only == Some(true) || always_read_only(ctx.pod, &m.name),
        });
    }
    Ok(out)
}

/// The user a container runs as: its own securityContext, else the pod's,
/// else root when it asks for root's powers (privileged, added
/// capabilities), else `DEFAULT_UID`: an image's USER is not known here,
/// and root by default would be root on the host.
pub fn run_as(container: &Container, pod: &Pod) -> (u32, u32) {
    let pod_ctx = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let own = container.security_context.as_ref();
    let wants_root = own.is_some_and(|c| {
        c.privileged == Some(true)
            || c.capabilities
                .as_ref()
                .is_some_and(|caps| caps.add.as_ref().is_some_and(|a| !a.is_empty()))
    });
    let uid = own
        .and_then(|c| c.run_as_user)
        .or_else(|| pod_ctx.and_then(|c| c.run_as_user))
        .unwrap_or(if wants_root {
            0
        } else {
            i64::from(DEFAULT_UID)
        });
    let gid = own
        .and_then(|c| c.run_as_group)
        .or_else(|| pod_ctx.and_then(|c| c.run_as_group))
        .unwrap_or(uid);
    (
        u32::try_from(uid).unwrap_or(0),
        u32::try_from(gid).unwrap_or(0),
    )
}

/// The process for a container, or why it cannot be started.
pub fn launch(container: &Container, ctx: &PodContext<'_>) -> Result<Launch, String> {
    // Its name becomes its log and pid file names.
    crate::names::dns_label("container", &container.name)?;
    let pod = ctx.pod;
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let command = container.command.clone().unwrap_or_default();
    if command.is_empty() {
        return Err(format!(
            "container {:?} has no command: local mode runs processes, it does not pull image {:?}",
            container.name,
            container.image.as_deref().unwrap_or("")
        ));
    }
    let mounts = mounts(container, ctx)?;
    let (uid, gid) = run_as(container, pod);
    let non_root = container
        .security_context
        .as_ref()
        .and_then(|c| c.run_as_non_root)
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.security_context.as_ref())
                .and_then(|c| c.run_as_non_root)
        });
    if uid == 0 && non_root == Some(true) {
        return Err(format!(
            "container {:?} has runAsNonRoot and would run as root (runAsUser 0, or privileged or added capabilities)",
            container.name
        ));
    }
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), format!("{BIN_MOUNT}:{SYSTEM_PATH}")),
        (
            "HOSTNAME".into(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        ("HOME".into(), if uid == 0 { "/root" } else { "/" }.into()),
    ];
    for from in container.env_from.iter().flatten() {
        if let Some(cm) = &from.config_map_ref {
            let found = ctx.config_maps.iter().find(|c| {
                c.metadata.name.as_deref() == Some(cm.name.as_str())
                    && c.metadata.namespace.as_deref() == Some(namespace.as_str())
            });
            match found {
                Some(c) => {
                    for (k, v) in c.data.iter().flatten() {
                        let name = format!("{}{k}", from.prefix.as_deref().unwrap_or(""));
                        vars.insert(name.clone(), v.clone());
                        env.push((name, v.clone()));
                    }
                }
                None if cm.optional == Some(true) => {}
                None => return Err(format!("envFrom: configmap {:?} not found", cm.name)),
            }
        } else if let Some(sr) = &from.secret_ref {
            match super::secrets::find(ctx.secrets, &namespace, &sr.name) {
                Some(secret) => {
                    for key in super::secrets::secret_data(secret).into_keys() {
                        let Some(value) = super::secrets::env_value(secret, &key) else {
                            continue;
                        };
                        let name = format!("{}{key}", from.prefix.as_deref().unwrap_or(""));
                        let value = value.map_err(|e| format!("envFrom: {e}"))?;
                        vars.insert(name.clone(), value.clone());
                        env.push((name, value));
                    }
                }
                None if sr.optional == Some(true) => {}
                None => return Err(format!("envFrom: secret {:?} not found", sr.name)),
            }
        } else {
            return Err(
                "envFrom: only configMapRef and secretRef are supported in local mode".into(),
            );
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                field(pod, ctx, &f.field_path)?
            } else if let Some(k) = &from.config_map_key_ref {
                match config_map_key(ctx, &namespace, &k.name, &k.key) {
                    Some(v) => v,
                    None if k.optional == Some(true) => continue,
                    None => {
                        return Err(format!(
                            "env {}: key {:?} of configmap {:?} not found",
                            var.name, k.key, k.name
                        ));
                    }
                }
            } else if let Some(k) = &from.secret_key_ref {
                let found = super::secrets::find(ctx.secrets, &namespace, &k.name)
                    .and_then(|s| super::secrets::env_value(s, &k.key));
                match found {
                    Some(value) => value.map_err(|e| format!("env {}: {e}", var.name))?,
                    None if k.optional == Some(true) => continue,
                    None => {
                        return Err(format!(
                            "env {}: key {:?} of secret {:?} not found",
                            var.name, k.key, k.name
                        ));
                    }
                }
            } else {
                return Err(format!(
                    "env {}: only value, fieldRef, configMapKeyRef and secretKeyRef are supported in local mode",
                    var.name
                ));
            }
        } else {
            expand(var.value.as_deref().unwrap_or(""), &vars)
        };
        vars.insert(var.name.clone(), value.clone());
        env.push((var.name.clone(), value));
    }
    let argv: Vec<String> = command
        .iter()
        .chain(container.args.iter().flatten())
        .map(|a| expand(a, &vars))
        .collect();
    let (program, args) = if uid != 0 {
        let mut args = vec![
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
            "--".into(),
        ];
        args.extend(argv);
        ("setpriv".to_string(), args)
    } else {
        (argv[0].clone(), argv[1..].to_vec())
    };
    let cwd = PathBuf::from(container.working_dir.as_deref().unwrap_or("/"));
    Ok(Launch {
        program,
        args,
        env,
        uid,
        sandbox: Sandbox {
            netns: ctx.netns.to_string(),
            hostname: pod.metadata.name.clone().unwrap_or_default(),
            mounts,
            hidden: ctx.hidden.to_vec(),
            cwd,
            cgroups: Vec::new(),
        },
    })
}

#[cfg(test)]
#[path = "launch_tests.rs"]
mod tests;
