//! A pod's volumes on disk: emptyDir, configMap, secret and projected
//! sources (ServiceAccount tokens the runtime mints and renews, configMaps,
//! Secrets), configMap and secret files kept in step with their objects.
//! The
//! directories stay root's: an emptyDir is open to all (as Kubernetes
//! makes it), the others are readable by the group of the container that
//! mounts them and writable by no pod; every file is written through
//! [`super::safe_files`], so nothing a pod plants redirects a write.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use k8s_openapi::api::core::v1::{Container, Volume};
use osm_controller::token::{AUDIENCE, PodIdentity};

use super::{
    PodRun, Sources,
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

/// A file a configMap or secret source puts in a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SourceFile {
    name: String,
    bytes: Vec<u8>,
    mode: u32,
}

/// What a volume's configMap and secret sources wrote, kept to follow
/// their changes: the group its files belong to, and the files.
#[derive(Debug, Clone, Default)]
pub(super) struct Written {
    gid: u32,
    files: Vec<SourceFile>,
}

/// A source's keys as files of `mode`; a key that is not a file name is
/// refused (`what` and `name` say whose).
fn as_files(
    what: &str,
    name: &str,
    entries: impl Iterator<Item = (String, Vec<u8>)>,
    mode: u32,
) -> Result<Vec<SourceFile>, String> {
    entries
        .map(|(key, bytes)| {
            if key.contains('/') || key.starts_with('.') {
                return Err(format!("{what} {name}: key {key:?} is not a file name"));
            }
            Ok(SourceFile {
                name: key,
                bytes,
                mode,
            })
        })
        .collect()
}

/// A key and its bytes.
type Entry = (String, Vec<u8>);

/// A ConfigMap or Secret a volume reads, by name.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    ConfigMap(&'a str),
    Secret(&'a str),
}

/// The files of `origin` in `namespace` (none when it is missing and
/// `optional`): a ConfigMap's keys 0644; a Secret's readable by the
/// container's group only (root-owned, 0440), its values never in a
/// message.
fn files_of(
    sources: &Sources,
    namespace: &str,
    origin: Origin<'_>,
    optional: Option<bool>,
    volume: &str,
) -> Result<Vec<SourceFile>, String> {
    let (what, name, mode, entries): (_, _, _, Option<Vec<Entry>>) = match origin {
        Origin::ConfigMap(name) => (
            "configmap",
            name,
            0o644,
            sources
                .0
                .iter()
                .find(|c| {
                    c.metadata.name.as_deref() == Some(name)
                        && c.metadata.namespace.as_deref() == Some(namespace)
                })
                .map(|cm| {
                    cm.data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                        .collect()
                }),
        ),
        Origin::Secret(name) => (
            "secret",
            name,
            0o440,
            crate::runtime::secrets::find(&sources.1, namespace, name).map(|found| {
                crate::runtime::secrets::secret_data(found)
                    .into_iter()
                    .collect()
            }),
        ),
    };
    match entries {
        Some(entries) => as_files(what, name, entries.into_iter(), mode),
        None if optional == Some(true) => Ok(Vec::new()),
        None => Err(format!("volume {volume}: {what} {name:?} not found")),
    }
}

/// The files `volume`'s configMap and secret sources hold in `sources`
/// (none for an emptyDir or a projection of tokens only).
fn source_files(
    sources: &Sources,
    namespace: &str,
    volume: &Volume,
) -> Result<Vec<SourceFile>, String> {
    let name = volume.name.as_str();
    if let Some(cm) = &volume.config_map {
        return files_of(
            sources,
            namespace,
            Origin::ConfigMap(&cm.name),
            cm.optional,
            name,
        );
    }
    if let Some(sv) = &volume.secret {
        let secret = sv.secret_name.as_deref().unwrap_or_default();
        return files_of(
            sources,
            namespace,
            Origin::Secret(secret),
            sv.optional,
            name,
        );
    }
    let mut files = Vec::new();
    for source in volume
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
    {
        if let Some(cm) = &source.config_map {
            files.extend(files_of(
                sources,
                namespace,
                Origin::ConfigMap(&cm.name),
                cm.optional,
                name,
            )?);
        } else if let Some(sp) = &source.secret {
            files.extend(files_of(
                sources,
                namespace,
                Origin::Secret(&sp.name),
                sp.optional,
                name,
            )?);
        } else if source.service_account_token.is_none() {
            return Err(format!(
                "volume {name}: only serviceAccountToken, configMap and secret projections are supported in local mode"
            ));
        }
    }
    Ok(files)
}

/// Writes `files` into `safe` where they differ from `before`, and
/// removes those `before` had that `files` has not.
fn write_files(
    safe: &SafeDir,
    gid: u32,
    before: &[SourceFile],
    files: &[SourceFile],
) -> Result<(), String> {
    for file in files {
        if !before.contains(file) {
            let owner = Ownership {
                uid: 0,
                gid,
                mode: file.mode,
            };
            safe.write(&file.name, &file.bytes, owner)?;
        }
    }
    for old in before {
        if !files.iter().any(|f| f.name == old.name) {
            safe.remove(&old.name)?;
        }
    }
    Ok(())
}

/// Writes the pod's volumes under its directory: emptyDir, configMap,
/// secret and projected (serviceAccountToken, configMap, secret) sources.
pub(super) fn materialize_volumes(run: &PodRun) -> Result<Tokens, String> {
    let spec = run.pod.spec.clone().unwrap_or_default();
    let namespace = run.pod.metadata.namespace.clone().unwrap_or_default();
    let sources = run.sources();
    let mut volumes = BTreeMap::new();
    let mut written = BTreeMap::new();
    let mut files = Vec::new();
    let all_containers: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    for volume in spec.volumes.iter().flatten() {
        crate::names::dns_label("volume", &volume.name)?;
        if let Some(source) = &volume.host_path {
            let state = &run.shared.state;
            let path = super::host_path::check(
                &volume.name,
                source,
                state.host_path_allowed(),
                &state.root,
                crate::sandbox::kind_of,
            )?;
            if matches!(source.type_.as_deref(), Some("DirectoryOrCreate")) {
                std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            } else if matches!(source.type_.as_deref(), Some("FileOrCreate")) && !path.exists() {
                std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            volumes.insert(volume.name.clone(), path);
            continue;
        }
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
        if volume.empty_dir.is_some() {
            safe.own(file(0o777))?;
        } else if volume.config_map.is_some()
            || volume.secret.is_some()
            || volume.projected.is_some()
        {
            let contents = source_files(&sources, &namespace, volume)?;
            write_files(&safe, group, &[], &contents)?;
            written.insert(
                volume.name.clone(),
                Written {
                    gid: group,
                    files: contents,
                },
            );
            for t in volume
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
                .filter_map(|s| s.service_account_token.as_ref())
            {
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
            }
        } else {
            return Err(format!(
                "volume {}: only emptyDir, configMap, secret, projected and hostPath volumes are supported in local mode",
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
    if let Ok(mut kept) = run.written.lock() {
        *kept = written;
    }
    Ok(Tokens {
        volumes,
        files,
        renew_every,
    })
}

/// Brings the configMap and secret files of the pod's volumes in line
/// with `sources` (a ConfigMap or Secret changed), as the kubelet does for
/// mounted volumes: each file replaced atomically, keys gone removed.
/// Returns the volumes that changed; a source that became unreadable
/// (deleted, not optional) leaves its volume as it was.
pub(super) fn refresh_volumes(run: &PodRun) -> Vec<Result<String, String>> {
    let spec = run.pod.spec.clone().unwrap_or_default();
    let namespace = run.pod.metadata.namespace.clone().unwrap_or_default();
    let sources = run.sources();
    let Ok(mut written) = run.written.lock() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        let Some(before) = written.get_mut(&volume.name) else {
            continue;
        };
        let outcome = source_files(&sources, &namespace, volume).and_then(|files| {
            if files == before.files {
                return Ok(None);
            }
            let safe = SafeDir::open(&run.dir.join("volumes").join(&volume.name))?;
            write_files(&safe, before.gid, &before.files, &files)?;
            before.files = files;
            Ok(Some(volume.name.clone()))
        });
        match outcome {
            Ok(Some(changed)) => out.push(Ok(changed)),
            Ok(None) => {}
            Err(e) => out.push(Err(e)),
        }
    }
    out
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
