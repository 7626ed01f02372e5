//! A container's isolation, as a container runtime gives it: the pod's
//! network namespace; mount, UTS and IPC namespaces of its own; a root
//! filesystem that is the host's read-only with the state directory left
//! out (the mesh's keys, other pods' volumes), private `/tmp` and `/run`,
//! a small `/dev`, and its volumes mounted at their `mountPath`s.
//!
//! `osm-shim` starts `osm-shim --enter SPEC PROGRAM ARGS...`, which sets
//! this up and then becomes the container's program (exec: same process),
//! so the shim stays on the host to record the exit. PID namespaces are
//! not used: a program as PID 1 ignores SIGTERM unless it handles it,
//! which would turn every stop into a grace-period wait.

pub mod plan;

use std::{
    ffi::{CString, OsString},
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
};
use serde::{Deserialize, Serialize};

use self::plan::{HostFs, Kind, Op};

/// A volume (or file) mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Where it is on the host.
    pub source: PathBuf,
    /// Where the container sees it.
    pub target: PathBuf,
    pub read_only: bool,
}

/// What `--enter` builds, written by the daemon beside the container's
/// pid file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The pod's network namespace (under /run/netns).
    pub netns: String,
    pub hostname: String,
    pub mounts: Vec<Mount>,
    /// Host paths the container must not see.
    pub hidden: Vec<PathBuf>,
    /// The container's working directory.
    pub cwd: PathBuf,
    /// The cgroups the container joins (its limits).
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
}

/// What a host path is (a link is not followed).
pub fn kind_of(path: &Path) -> Option<Kind> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some(if meta.is_symlink() {
        Kind::Link(std::fs::read_link(path).ok()?)
    } else if meta.is_dir() {
        Kind::Dir
    } else if meta.is_file() {
        Kind::File
    } else {
        Kind::Other
    })
}

/// The host's filesystem, read before the root is switched.
struct RealFs;

impl HostFs for RealFs {
    fn kind(&self, path: &Path) -> Option<Kind> {
        kind_of(path)
    }
    fn list(&self, dir: &Path) -> Vec<(OsString, Kind)> {
        let mut out: Vec<(OsString, Kind)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.file_name(), self.kind(&e.path())?)))
            .collect();
        out.sort();
        out
    }
}

/// Where the host's root is while the new one is built.
const OLD_ROOT: &str = "/.oldroot";

fn fail(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

/// Enters the sandbox; on success the caller execs the program.
pub fn enter(sandbox: &Sandbox) -> Result<(), String> {
    // Joined first: what the container forks is counted too.
    let me = std::process::id().to_string();
    for cgroup in &sandbox.cgroups {
        let procs = cgroup.join("cgroup.procs");
        std::fs::write(&procs, &me).map_err(|e| fail("cannot join", &procs, e))?;
    }
    let netns = Path::new("/run/netns").join(&sandbox.netns);
    let ns = std::fs::File::open(&netns).map_err(|e| fail("cannot open", &netns, e))?;
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| fail("cannot enter", &netns, e))?;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC)
        .map_err(|e| format!("cannot make the container's namespaces: {e}"))?;
    // Nothing mounted here reaches the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make / a slave mount: {e}"))?;
    let ops = plan::plan(&sandbox.mounts, &sandbox.hidden, &RealFs);

    // The new root: a tmpfs, first staged over /tmp (of this namespace).
    let stage = Path::new("/tmp");
    mount(
        Some("tmpfs"),
        stage,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(|e| fail("cannot mount a tmpfs on", stage, e))?;
    let old = stage.join(OLD_ROOT.trim_start_matches('/'));
    std::fs::create_dir(&old).map_err(|e| fail("cannot make", &old, e))?;
    nix::unistd::pivot_root(stage, &old).map_err(|e| format!("cannot pivot_root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("cannot enter the new root: {e}"))?;
    for op in &ops {
        apply(op)?;
    }
    umount2(OLD_ROOT, MntFlags::MNT_DETACH)
        .map_err(|e| format!("cannot drop the host root: {e}"))?;
    std::fs::remove_dir(OLD_ROOT).map_err(|e| fail("cannot remove", Path::new(OLD_ROOT), e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make the root read-only: {e}"))?;
    nix::unistd::sethostname(&sandbox.hostname)
        .map_err(|e| format!("cannot set the hostname: {e}"))?;
    nix::unistd::chdir(&sandbox.cwd).map_err(|e| fail("cannot enter", &sandbox.cwd, e))?;
    Ok(())
}

fn host(path: &Path) -> PathBuf {
    Path::new(OLD_ROOT).join(path.strip_prefix("/").unwrap_or(path))
}

fn apply(op: &Op) -> Result<(), String> {
    match op {
        Op::Dir(path) => {
            std::fs::create_dir_all(path).map_err(|e| fail("cannot make", path, e))?;
        }
        Op::File(path) => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| fail("cannot make", parent, e))?;
            }
            if std::fs::symlink_metadata(path).is_err() {
                std::fs::File::create(path).map_err(|e| fail("cannot make", path, e))?;
            }
        }
        Op::Link { path, to } => {
            std::os::unix::fs::symlink(to, path).map_err(|e| fail("cannot link", path, e))?;
        }
        Op::Bind {
            source,
            target,
            read_only,
            recursive,
        } => {
            let mut flags = MsFlags::MS_BIND;
            if *recursive {
                flags |= MsFlags::MS_REC;
            }
            mount(
                Some(&host(source)),
                target,
                None::<&str>,
                flags,
                None::<&str>,
            )
            .map_err(|e| fail("cannot mount", target, e))?;
            if *read_only {
                mount(
                    None::<&str>,
                    target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .map_err(|e| fail("cannot make read-only", target, e))?;
            }
        }
        Op::Tmpfs { target, mode } => {
            let options = format!("mode={mode:o}");
            mount(
                Some("tmpfs"),
                target,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(options.as_str()),
            )
            .map_err(|e| fail("cannot mount a tmpfs on", target, e))?;
        }
        Op::Sysfs(target) => {
            let flags =
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            // The pod's network's view (as `ip netns exec` gives); a host
            // that refuses a new sysfs gets its own, read-only.
            if mount(Some("sysfs"), target, Some("sysfs"), flags, None::<&str>).is_err() {
                apply(&Op::Bind {
                    source: target.clone(),
                    target: target.clone(),
                    read_only: true,
                    recursive: true,
                })?;
            }
        }
    }
    Ok(())
}

/// `osm-shim --enter SPEC PROGRAM ARGS...`: the sandbox, then the program
/// in place of this process. Returns only on failure (the message).
pub fn enter_and_exec(spec: &Path, program: &OsString, args: &[OsString]) -> String {
    let sandbox: Sandbox = match std::fs::read(spec)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return fail("cannot read the sandbox", spec, e),
    };
    if let Err(e) = enter(&sandbox) {
        return e;
    }
    let c = |s: &OsString| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} holds a NUL"));
    let argv = match std::iter::once(program)
        .chain(args)
        .map(c)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(v) => v,
        Err(e) => return e,
    };
    match nix::unistd::execvp(&argv[0], &argv) {
        Ok(never) => match never {},
        Err(e) => format!("cannot run {}: {e}", program.to_string_lossy()),
    }
}
