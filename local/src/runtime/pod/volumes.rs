//! A pod's volumes on disk: emptyDir, configMap and projected sources
//! (ServiceAccount tokens the runtime mints and renews, configMaps), owned
//! by the user of the container that mounts them.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::api::core::v1::Container;
use osm_controller::token::{AUDIENCE, PodIdentity};

use super::PodRun;
use crate::runtime::launch::run_as;

/// Projected tokens to renew.
pub(super) struct Tokens {
    pub volumes: BTreeMap<String, PathBuf>,
    pub files: Vec<TokenFile>,
    pub renew_every: Duration,
}

#[derive(Debug, Clone)]
pub(super) struct TokenFile {
    path: PathBuf,
    audience: String,
    ttl: Duration,
    owner: u32,
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
        let dir = run.dir.join("volumes").join(&volume.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Files belong to the (non-root) user of a container mounting it.
        let owner = all_containers
            .iter()
            .filter(|c| {
                c.volume_mounts
                    .iter()
                    .flatten()
                    .any(|m| m.name == volume.name)
            })
            .map(|c| run_as(c, &run.pod).0)
            .find(|uid| *uid != 0)
            .unwrap_or(0);
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
                        write_owned(&dir.join(key), value.as_bytes(), owner, 0o644)?;
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
        if volume.empty_dir.is_some() {
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        } else if let Some(cm) = &volume.config_map {
            config_map(&cm.name, cm.optional)?;
        } else if let Some(projected) = &volume.projected {
            for source in projected.sources.iter().flatten() {
                if let Some(t) = &source.service_account_token {
                    if t.path.contains("..") || t.path.starts_with('/') {
                        return Err(format!(
                            "volume {}: bad token path {:?}",
                            volume.name, t.path
                        ));
                    }
                    let ttl = Duration::from_secs(
                        u64::try_from(t.expiration_seconds.unwrap_or(3600)).unwrap_or(3600),
                    );
                    files.push(TokenFile {
                        path: dir.join(&t.path),
                        audience: t.audience.clone().unwrap_or_else(|| AUDIENCE.into()),
                        ttl,
                        owner,
                    });
                } else if let Some(cm) = &source.config_map {
                    config_map(&cm.name, cm.optional)?;
                } else {
                    return Err(format!(
                        "volume {}: only serviceAccountToken and configMap projections are supported in local mode",
                        volume.name
                    ));
                }
            }
        } else {
            return Err(format!(
                "volume {}: only emptyDir, configMap and projected volumes are supported in local mode",
                volume.name
            ));
        }
        if owner != 0 {
            let _ = nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(owner)), None);
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
        write_owned(&f.path, token.as_bytes(), f.owner, 0o600)?;
    }
    Ok(())
}

fn write_owned(path: &Path, bytes: &[u8], owner: u32, mode: u32) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode));
    if owner != 0 {
        nix::unistd::chown(&tmp, Some(nix::unistd::Uid::from_raw(owner)), None)
            .map_err(|e| format!("chown {}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
