//! A container's process as the daemon holds it: started through
//! `osm-shim` (so it survives the daemon), recorded in a pid file with
//! its kernel start time (so a later daemon never mistakes a reused pid
//! for it), waited for as a child or, once adopted by a new daemon, by
//! watching /proc; stopped with SIGTERM then SIGKILL to its group.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use nix::{sys::signal::Signal, unistd::Pid};

use crate::{
    runtime::launch::Launch,
    shim::{self, exit_code},
};

use crate::process_record::Record;

pub fn pid_file(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join(format!("{container}.pid"))
}

pub fn exit_file(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join(format!("{container}.exit"))
}

/// What to run before a command so it runs inside a container as its
/// process does (namespaces, root, working directory): the process the
/// container's shim recorded, when it runs.
pub fn enter_container(pod_dir: &Path, container: &str) -> Option<Vec<String>> {
    let record = Record::read(&crate::shim::process_file(&exit_file(pod_dir, container)))?;
    record.alive().then(|| {
        [
            "nsenter",
            "--target",
            &record.pid.to_string(),
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--root",
            "--wd",
            "--",
        ]
        .map(str::to_string)
        .to_vec()
    })
}

/// A container's running process.
pub(super) enum Running {
    /// Started by this daemon: its shim is our child.
    Child(tokio::process::Child),
    /// Started by an earlier daemon and still running.
    Adopted(Record),
}

/// The shim's binary, beside the mesh's others.
pub const SHIM: &str = "osm-shim";

/// How often an adopted process is checked for its end.
const ADOPTED_POLL: Duration = Duration::from_millis(100);

impl Running {
    fn group(&self) -> Option<Pid> {
        match self {
            Self::Child(child) => child.id().map(|p| Pid::from_raw(p as i32)),
            Self::Adopted(record) => Some(Pid::from_raw(record.pid)),
        }
    }

    /// Waits for the end; the container's exit code, as its shim
    /// recorded it (137 when the shim was killed with it).
    pub async fn wait(&mut self, exit_file: &Path) -> i32 {
        let status = match self {
            Self::Child(child) => child.wait().await.map(exit_code).unwrap_or(-1),
            Self::Adopted(record) => {
                while record.alive() {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
                128 + Signal::SIGKILL as i32
            }
        };
        shim::read_exit(exit_file).unwrap_or(status)
    }

    /// SIGTERM to the container's process group, SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration, exit_file: &Path) {
        if let Some(group) = self.group() {
            let _ = nix::sys::signal::killpg(group, Signal::SIGTERM);
            if tokio::time::timeout(grace, self.wait(exit_file))
                .await
                .is_err()
            {
                let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
            }
        }
        self.wait(exit_file).await;
    }
}

/// Starts a container through its shim (`osm-shim` in `bin_dir`), logging
/// to the pod's log directory and recording the shim in the container's
/// pid file.
pub(super) fn spawn(
    launch: &Launch,
    bin_dir: &Path,
    pod_dir: &Path,
    container: &str,
) -> std::io::Result<Running> {
    let log_path = pod_dir.join("logs").join(format!("{container}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let exit = exit_file(pod_dir, container);
    let _ = std::fs::remove_file(&exit);
    let spec = pod_dir.join(format!("{container}.sandbox.json"));
    std::fs::write(
        &spec,
        serde_json::to_vec(&launch.sandbox).map_err(std::io::Error::other)?,
    )?;
    let child = tokio::process::Command::new(bin_dir.join(SHIM))
        .arg(&exit)
        .arg("--sandbox")
        .arg(&spec)
        .arg(&launch.program)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group, so stopping it reaches what it forks.
        // Not killed when the daemon goes: a new daemon adopts it.
        .process_group(0)
        .spawn()?;
    if let Some(record) = child.id().and_then(|p| Record::of(p as i32)) {
        std::fs::write(pid_file(pod_dir, container), record.text())?;
    }
    Ok(Running::Child(child))
}
