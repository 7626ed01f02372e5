//! The container's filesystem as a list of operations (pure): a new root
//! on tmpfs holding the host's top-level entries bound read-only, fresh
//! `/tmp`, `/run` and `/dev`, the host's `/proc`, the pod's `/sys`, then
//! each mount at its target. A target the host lacks (say `/etc/creds`)
//! needs a directory made where the host has a read-only one: that
//! directory is "exploded", a tmpfs directory whose entries are bound one
//! by one, so the mount point can be made beside them without touching
//! the host. Hidden paths (the state directory: the mesh's keys, other
//! pods' volumes) are left out the same way.
//!
//! The plan reads the host through `HostFs`, so it is tested with tables.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    path::{Component, Path, PathBuf},
};

use super::Mount;

/// What a host path is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Dir,
    File,
    Link(PathBuf),
    /// Sockets, pipes, devices: not carried into the new root.
    Other,
}

/// The host's filesystem as the plan reads it.
pub trait HostFs {
    fn kind(&self, path: &Path) -> Option<Kind>;
    /// A directory's entries, sorted by name.
    fn list(&self, dir: &Path) -> Vec<(OsString, Kind)>;
}

/// One step of building the root. Paths are the container's; `source`
/// is the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Dir(PathBuf),
    /// An empty file to mount a file over.
    File(PathBuf),
    Link {
        path: PathBuf,
        to: PathBuf,
    },
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
        recursive: bool,
    },
    Tmpfs {
        target: PathBuf,
        mode: u32,
    },
    Sysfs(PathBuf),
}

/// Replaced wholesale in the new root, never bound from the host.
const SPECIAL: [&str; 5] = ["/proc", "/sys", "/dev", "/tmp", "/run"];
/// Device nodes a container gets, as container runtimes give them.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// Always exploded: hosts bind files over some of its entries (a
/// container host's `/etc/resolv.conf`), which a per-entry bind carries.
const ALWAYS_EXPLODED: &str = "/etc";

fn is_special(path: &Path) -> bool {
    SPECIAL.iter().any(|s| path.starts_with(s))
}

/// `path` with the host's symbolic links resolved (at most 32), so a
/// target such as `/var/run/x` is planned where it lands (`/run/x`).
pub fn resolve(path: &Path, host: &dyn HostFs) -> PathBuf {
    let parts = |p: &Path| -> Vec<PathBuf> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(PathBuf::from(n)),
                Component::ParentDir => Some(PathBuf::from("..")),
                _ => None,
            })
            .rev()
            .collect()
    };
    let mut todo = parts(path);
    let mut out = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == Path::new("..") {
            out.pop();
            continue;
        }
        let next = out.join(&part);
        match host.kind(&next) {
            Some(Kind::Link(to)) if links < 32 && !is_special(&next) => {
                links += 1;
                if to.is_absolute() {
                    out = PathBuf::from("/");
                }
                // `out` stays the link's directory for a relative target.
                todo.extend(parts(&to));
            }
            _ => out = next,
        }
    }
    out
}

/// The directories to explode for a mount at `target` (resolved): every
/// ancestor down to the last one the host has, when the host lacks a
/// directory on the way or the target itself.
fn explode_for(target: &Path, host: &dyn HostFs, out: &mut BTreeSet<PathBuf>) {
    let ancestors: Vec<&Path> = target.ancestors().skip(1).collect();
    // From the root down: the deepest existing ancestor.
    for dir in ancestors.iter().rev() {
        if is_special(dir) {
            return;
        }
        let child = target
            .strip_prefix(dir)
            .ok()
            .and_then(|rest| rest.components().next())
            .map(|c| dir.join(c));
        let Some(child) = child else { return };
        let child_is_last = child == target;
        let present = match host.kind(&child) {
            Some(Kind::Dir) => true,
            Some(Kind::File | Kind::Other) => child_is_last,
            _ => false,
        };
        if !present || is_special(&child) {
            for a in dir.ancestors() {
                out.insert(a.to_path_buf());
            }
            return;
        }
    }
}

/// The operations that build the container's root.
pub fn plan(mounts: &[Mount], hidden: &[PathBuf], host: &dyn HostFs) -> Vec<Op> {
    let mounts: Vec<Mount> = mounts
        .iter()
        .map(|m| Mount {
            target: resolve(&m.target, host),
            ..m.clone()
        })
        .collect();
    let hidden: BTreeSet<PathBuf> = hidden.iter().map(|h| resolve(h, host)).collect();
    let mut exploded = BTreeSet::from([PathBuf::from("/"), PathBuf::from(ALWAYS_EXPLODED)]);
    for h in &hidden {
        for a in h.ancestors().skip(1) {
            exploded.insert(a.to_path_buf());
        }
    }
    for m in &mounts {
        explode_for(&m.target, host, &mut exploded);
    }
    let mut ops = Vec::new();
    emit(Path::new("/"), host, &exploded, &hidden, &mut ops);
    ops.extend(special_ops(host));
    let mut mounts = mounts;
    mounts.sort_by_key(|m| m.target.components().count());
    for m in mounts {
        let file = matches!(host.kind(&m.source), Some(Kind::File));
        ops.push(if file {
            Op::File(m.target.clone())
        } else {
            Op::Dir(m.target.clone())
        });
        ops.push(Op::Bind {
            source: m.source,
            target: m.target,
            read_only: m.read_only,
            recursive: false,
        });
    }
    ops
}

/// The entries of an exploded host directory, bound one by one.
fn emit(
    dir: &Path,
    host: &dyn HostFs,
    exploded: &BTreeSet<PathBuf>,
    hidden: &BTreeSet<PathBuf>,
    ops: &mut Vec<Op>,
) {
    for (name, kind) in host.list(dir) {
        let path = dir.join(name);
        if hidden.contains(&path) || SPECIAL.iter().any(|s| Path::new(s) == path) {
            continue;
        }
        if exploded.contains(&path) && kind == Kind::Dir {
            ops.push(Op::Dir(path.clone()));
            emit(&path, host, exploded, hidden, ops);
            continue;
        }
        let bind = |ops: &mut Vec<Op>| {
            ops.push(Op::Bind {
                source: path.clone(),
                target: path.clone(),
                read_only: true,
                recursive: false,
            });
        };
        match kind {
            Kind::Dir => {
                ops.push(Op::Dir(path.clone()));
                bind(ops);
            }
            Kind::File => {
                ops.push(Op::File(path.clone()));
                bind(ops);
            }
            Kind::Link(to) => ops.push(Op::Link { path, to }),
            Kind::Other => {}
        }
    }
}

/// `/proc` (the host's, recursively), `/sys` (the pod's network's),
/// `/dev` (a tmpfs with the usual nodes), private `/tmp` and `/run`.
fn special_ops(host: &dyn HostFs) -> Vec<Op> {
    let p = PathBuf::from;
    let mut ops = vec![
        Op::Dir(p("/proc")),
        Op::Bind {
            source: p("/proc"),
            target: p("/proc"),
            read_only: false,
            recursive: true,
        },
        Op::Dir(p("/sys")),
        Op::Sysfs(p("/sys")),
        Op::Dir(p("/dev")),
        Op::Tmpfs {
            target: p("/dev"),
            mode: 0o755,
        },
    ];
    for node in DEVICES {
        let path = Path::new("/dev").join(node);
        if host.kind(&path).is_some() {
            ops.push(Op::File(path.clone()));
            ops.push(Op::Bind {
                source: path.clone(),
                target: path,
                read_only: false,
                recursive: false,
            });
        }
    }
    ops.push(Op::Dir(p("/dev/shm")));
    ops.push(Op::Tmpfs {
        target: p("/dev/shm"),
        mode: 0o1777,
    });
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Link {
            path: Path::new("/dev").join(link),
            to: p(to),
        });
    }
    for (dir, mode) in [("/tmp", 0o1777), ("/run", 0o755)] {
        ops.push(Op::Dir(p(dir)));
        ops.push(Op::Tmpfs {
            target: p(dir),
            mode,
        });
    }
    ops
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
