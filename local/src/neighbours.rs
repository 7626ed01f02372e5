//! Other local meshes running on this host. Two meshes with the same name
//! would share a bridge, iptables chains and namespace names; two whose
//! ranges overlap would both claim the gateway address, and the second's
//! control plane could not listen (its injector's port answered by the
//! first's, with another CA). `osm local up` refuses both, naming the
//! other mesh and how to bring it down.

use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use crate::state::{Instance, StateDir};

/// Why `ours` cannot run beside `theirs`; None when it can.
pub fn clash(ours: &Instance, theirs: &Instance) -> Option<String> {
    if ours.name == theirs.name {
        return Some(format!("it has the same --name {}", ours.name));
    }
    let ranges = |i: &Instance| [("pod", i.pod_cidr), ("service", i.service_cidr)];
    for (our_kind, our_net) in ranges(ours) {
        for (their_kind, their_net) in ranges(theirs) {
            if overlap(our_net, their_net) {
                return Some(format!(
                    "its {their_kind} range {their_net} overlaps this mesh's {our_kind} range {our_net}"
                ));
            }
        }
    }
    None
}

fn overlap(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The state directory a local daemon's command line names: `osm local
/// daemon --state-dir DIR` (NUL-separated, as /proc has it).
pub fn daemon_state_dir(cmdline: &[u8]) -> Option<PathBuf> {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let at = args
        .windows(2)
        .position(|w| w == [b"local".as_slice(), b"daemon".as_slice()])?;
    let rest = &args[at + 2..];
    let dir = rest
        .windows(2)
        .find(|w| w[0] == b"--state-dir")
        .map(|w| w[1])?;
    use std::os::unix::ffi::OsStrExt as _;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir)))
}

/// The local daemons running on this host: their pid and state directory.
fn running_daemons() -> Vec<(i32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, daemon_state_dir(&cmdline)?))
        })
        .collect()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Fails when a local mesh running from another state directory clashes
/// with `ours`, naming it and how to bring it down.
pub fn check(state: &StateDir, ours: &Instance) -> anyhow::Result<()> {
    for (pid, dir) in running_daemons() {
        if same_dir(&dir, &state.root) {
            continue;
        }
        let Ok(Some(theirs)) = StateDir::new(&dir).load_instance() else {
            continue;
        };
        if let Some(why) = clash(ours, &theirs) {
            anyhow::bail!(
                "another local mesh is running from {} (daemon pid {pid}, --name {}, pods {}, services {}): {why}; \
                 bring it down (`osm local down --state-dir {}`) or choose another --name, --pod-cidr or --service-cidr",
                dir.display(),
                theirs.name,
                theirs.pod_cidr,
                theirs.service_cidr,
                dir.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "neighbours_tests.rs"]
mod tests;
