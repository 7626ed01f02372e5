//! `hostPath` volumes, refused unless `osm local up --allow-host-path`
//! allowed them (a pod that mounts a host path can read and change it),
//! and never over local mode's own state directory (the mesh's keys).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::HostPathVolumeSource;

use crate::sandbox::plan::Kind;

/// The host path to mount, or why not (pure: `kind` reads the host).
pub fn check(
    volume: &str,
    source: &HostPathVolumeSource,
    allowed: bool,
    state_dir: &Path,
    kind: impl Fn(&Path) -> Option<Kind>,
) -> Result<PathBuf, String> {
    if !allowed {
        return Err(format!(
            "volume {volume}: hostPath volumes give the pod this machine's files; local mode \
             refuses them unless it was started with `osm local up --allow-host-path`"
        ));
    }
    let path = Path::new(&source.path);
    if !path.is_absolute() || source.path.split('/').any(|p| p == "..") {
        return Err(format!(
            "volume {volume}: hostPath {:?} must be an absolute path without '..'",
            source.path
        ));
    }
    if path.starts_with(state_dir) || state_dir.starts_with(path) {
        return Err(format!(
            "volume {volume}: hostPath {} would show the pod local mode's state directory {} \
             (the mesh's keys, other pods' volumes)",
            path.display(),
            state_dir.display()
        ));
    }
    let found = kind(path);
    let wanted = source.type_.as_deref().unwrap_or("");
    let ok = match wanted {
        "" | "DirectoryOrCreate" | "FileOrCreate" => true,
        "Directory" => found == Some(Kind::Dir),
        "File" => found == Some(Kind::File),
        "Socket" | "CharDevice" | "BlockDevice" => found == Some(Kind::Other),
        other => {
            return Err(format!(
                "volume {volume}: hostPath type {other:?} is not one of Directory, \
                 DirectoryOrCreate, File, FileOrCreate, Socket, CharDevice, BlockDevice"
            ));
        }
    };
    if !ok {
        return Err(format!(
            "volume {volume}: hostPath {} is not a {wanted} on this machine",
            path.display()
        ));
    }
    if found.is_none() && wanted.is_empty() {
        return Err(format!(
            "volume {volume}: hostPath {} does not exist (type DirectoryOrCreate makes it)",
            path.display()
        ));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &str, kind: Option<&str>) -> HostPathVolumeSource {
        HostPathVolumeSource {
            path: path.into(),
            type_: kind.map(str::to_string),
        }
    }

    #[test]
    fn host_paths_are_refused_unless_allowed_and_never_over_the_state() {
        let host = |p: &Path| match p.to_str() {
            Some("/srv/data") => Some(Kind::Dir),
            Some("/srv/file") => Some(Kind::File),
            _ => None,
        };
        let state = Path::new("/var/lib/osm-local");
        let cases = [
            (source("/srv/data", None), false, Err("--allow-host-path")),
            (source("/srv/data", None), true, Ok("/srv/data")),
            (
                source("/srv/data", Some("Directory")),
                true,
                Ok("/srv/data"),
            ),
            (
                source("/srv/file", Some("Directory")),
                true,
                Err("is not a Directory"),
            ),
            (source("/srv/file", Some("File")), true, Ok("/srv/file")),
            (
                source("/srv/new", Some("DirectoryOrCreate")),
                true,
                Ok("/srv/new"),
            ),
            (source("/srv/new", None), true, Err("does not exist")),
            (
                source("/var/lib/osm-local/controller", None),
                true,
                Err("state directory"),
            ),
            (source("/var", None), true, Err("state directory")),
            (source("srv/data", None), true, Err("absolute")),
            (source("/srv/../etc", None), true, Err("absolute")),
            (
                source("/srv/data", Some("Pipe")),
                true,
                Err("is not one of"),
            ),
        ];
        for (s, allowed, want) in cases {
            let got = check("v", &s, allowed, state, host);
            match (got, want) {
                (Ok(p), Ok(w)) => assert_eq!(p, Path::new(w)),
                (Err(e), Err(w)) => assert!(e.contains(w), "{}: {e}", s.path),
                (got, want) => panic!("{}: {got:?}, wanted {want:?}", s.path),
            }
        }
    }
}
