//! Running iptables: read the nat table, plan, and restore in one call.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use crate::{
    plan::plan,
    rules::rules,
    settings::{Family, Settings},
};

/// The save and restore commands of a family.
fn tools(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::V4 => ("iptables-save", "iptables-restore"),
        Family::V6 => ("ip6tables-save", "ip6tables-restore"),
    }
}

/// Why the rules could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot run {command}: {source} (is iptables installed, and do we have NET_ADMIN?)")]
    Spawn {
        command: &'static str,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        command: &'static str,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// The nat table as iptables-save prints it.
pub fn saved(family: Family) -> Result<String, ApplyError> {
    let (save, _) = tools(family);
    let output = Command::new(save)
        .args(["-t", "nat"])
        .output()
        .map_err(|source| ApplyError::Spawn {
            command: save,
            source,
        })?;
    if !output.status.success() {
        return Err(ApplyError::Failed {
            command: save,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The restore input for a family, planned against the current table.
pub fn planned(settings: &Settings, family: Family) -> Result<String, ApplyError> {
    Ok(plan(&saved(family)?, &rules(settings, family)))
}

/// Applies a planned input with one `iptables-restore --noflush`.
pub fn restore(family: Family, input: &str) -> Result<(), ApplyError> {
    let (_, restore) = tools(family);
    let mut child = Command::new(restore)
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ApplyError::Spawn {
            command: restore,
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|source| ApplyError::Spawn {
                command: restore,
                source,
            })?;
    }
    let output = child
        .wait_with_output()
        .map_err(|source| ApplyError::Spawn {
            command: restore,
            source,
        })?;
    if !output.status.success() {
        return Err(ApplyError::Failed {
            command: restore,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Whether the kernel has IPv6 at all.
pub fn host_has_ipv6() -> bool {
    std::path::Path::new("/proc/net/if_inet6").exists()
}
