//! A pod's volumes on disk: emptyDir, configMap and projected sources
//! (ServiceAccount tokens the runtime mints and renews, configMaps). The
//! directories stay root's: an emptyDir is open to all (as Kubernetes
//! makes it), the others are readable by the group of the container that
//! mounts them and writable by no pod; every file is written through
//! [`super::safe_files`], so nothing a pod plants redirects a write.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use k8s_openapi::api::core::v1::Container;
use osm_controller::token::{AUDIENCE, PodIdentity};

use super::{
    PodRun,
    safe_files::{Ownership, SafeDir},
};
use crate::runtime::launch::run_as;

/// Projected tokens to renew.
pub(super) struct Tokens {
    pub volumes: BTreeMap<String, PathBuf>,
    pub files: Vec<TokenFile>,
    pub renew_every: Duration,
}

#[derive(Debug, Clone)]
pub(super) struct TokenFile {
    /// The volume's directory, and the token's path inside it.
    volume: PathBuf,
    path: String,
    audience: String,
    ttl: Duration,
    owner: Ownership,
}

/// Writes the pod's volumes under its directory: emptyDir, configMap and
/// projected (serviceAccountToken, configMap) sources.
pub(super) fn materialize_volumes(run: &PodRun) -> Result<Tokens, String> {
    let spec = run.pod.spec.clone().unwrap_or_default();
    let namespace = run.pod.metadata.namespace.clone().unwrap_or_default();
    let mut volumes = BTreeMap::new();
    let mut files = Vec::new();
    let all_containers: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    for volume in spec.volumes.iter().flatten() {
        crate::names::dns_label("volume", &volume.name)?;
        let dir = run.dir.join("volumes").join(&volume.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let safe = SafeDir::open(&dir)?;
        // Readable by the group of a (non-root) container mounting it.
        let group = all_containers
            .iter()
            .filter(|c| {
                c.volume_mounts
                    .iter()
                    .flatten()
                    .any(|m| m.name == volume.name)
            })
            .map(|c| run_as(c, &run.pod))
            .find(|(uid, _)| *uid != 0)
            .map_or(0, |(_, gid)| gid);
        let file = |mode| Ownership {
            uid: 0,
            gid: group,
            mode,
        };
        let config_map = |name: &str, optional: Option<bool>| -> Result<(), String> {
            let found = run.config_maps.iter().find(|c| {
                c.metadata.name.as_deref() == Some(name)
                    && c.metadata.namespace.as_deref() == Some(namespace.as_str())
            });
            match found {
                Some(cm) => {
                    for (key, value) in cm.data.iter().flatten() {
                        if key.contains('/') || key.starts_with('.') {
                            return Err(format!(
                                "configmap {name}: key {key:?} is not a file name"
                            ));
                        }
                        safe.write(key, value.as_bytes(), file(0o644))?;
                    }
                    Ok(())
                }
                None if optional == Some(true) => Ok(()),
                None => Err(format!(
                    "volume {}: configmap {name:?} not found",
                    volume.name
                )),
            }
        };
        // A Secret's files are readable by the container's group only
        // (root-owned, 0440), and its values never reach a message.
        let secret = |name: &str, optional: Option<bool>| -> Result<(), String> {
            match crate::runtime::secrets::find(&run.secrets, &namespace, name) {
                Some(found) => {
                    for (key, value) in crate::runtime::secrets::secret_data(found) {
                        if key.contains('/') || key.starts_with('.') {
                            return Err(format!("secret {name}: key {key:?} is not a file name"));
                        }
                        safe.write(&key, &value, file(0o440))?;
                    }
                    Ok(())
                }
                None if optional == Some(true) => Ok(()),
                None => Err(format!("volume {}: secret {name:?} not found", volume.name)),
            }
        };
        if volume.empty_dir.is_some() {
            safe.own(file(0o777))?;
        } else if let Some(cm) = &volume.config_map {
            config_map(&cm.name, cm.optional)?;
        } else if let Some(sv) = &volume.secret {
            secret(sv.secret_name.as_deref().unwrap_or_default(), sv.optional)?;
        } else if let Some(projected) = &volume.projected {
            for source in projected.sources.iter().flatten() {
                if let Some(t) = &source.service_account_token {
                    if let Err(e) = safe.walk(&t.path) {
                        return Err(format!("volume {}: token path: {e}", volume.name));
                    }
                    let ttl = Duration::from_secs(
                        u64::try_from(t.expiration_seconds.unwrap_or(3600)).unwrap_or(3600),
                    );
                    files.push(TokenFile {
                        volume: dir.clone(),
                        path: t.path.clone(),
                        audience: t.audience.clone().unwrap_or_else(|| AUDIENCE.into()),
                        ttl,
                        owner: file(0o640),
                    });
                } else if let Some(cm) = &source.config_map {
                    config_map(&cm.name, cm.optional)?;
                } else if let Some(sp) = &source.secret {
                    secret(&sp.name, sp.optional)?;
                } else {
                    return Err(format!(
                        "volume {}: only serviceAccountToken, configMap and secret projections are supported in local mode",
                        volume.name
                    ));
                }
            }
        } else {
            return Err(format!(
                "volume {}: only emptyDir, configMap, secret and projected volumes are supported in local mode",
                volume.name
            ));
        }
        if volume.empty_dir.is_none() {
            // The pod reads; only the runtime writes.
            safe.own(file(0o750))?;
        }
        volumes.insert(volume.name.clone(), dir);
    }
    write_tokens(run, &files)?;
    let renew_every = files
        .iter()
        .map(|f| f.ttl.mul_f64(0.8))
        .min()
        .unwrap_or(Duration::from_secs(3600))
        .max(Duration::from_secs(10));
    Ok(Tokens {
        volumes,
        files,
        renew_every,
    })
}

pub(super) fn write_tokens(run: &PodRun, files: &[TokenFile]) -> Result<(), String> {
    let identity = PodIdentity {
        namespace: run.pod.metadata.namespace.clone().unwrap_or_default(),
        pod: run.pod.metadata.name.clone().unwrap_or_default(),
        service_account: osm_api::k8s::service_account(&run.pod).to_string(),
    };
    for f in files {
        let token = run.shared.tokens.mint(&identity, &f.audience, f.ttl);
        let (dir, name) = SafeDir::open(&f.volume)?.walk(&f.path)?;
        dir.write(name, token.as_bytes(), f.owner)?;
    }
    Ok(())
}
