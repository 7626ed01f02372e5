//! A local mesh of a harness's own, driven through the real `osm` binary
//! as a user would (its own name, ranges and a temporary state directory,
//! brought down when dropped): the soak's and the interception bench's.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

/// The address ranges of one harness's mesh: its pod range's first
/// address is the gateway, where local mode's control plane listens.
#[derive(Debug, Clone, Copy)]
pub struct Ranges {
    pub name: &'static str,
    pub pod_cidr: &'static str,
    pub service_cidr: &'static str,
    pub gateway: [u8; 4],
}

/// A local mesh of a harness's own.
pub struct Local {
    osm: PathBuf,
    state: tempfile::TempDir,
    ranges: Ranges,
    /// `osm local down` if the harness is interrupted.
    _interrupt: crate::interrupt::Registered,
}

impl Local {
    /// `osm local up` with `ranges`, in a temporary state directory.
    pub fn up(bin_dir: &Path, ranges: Ranges) -> Result<Self> {
        let osm = bin_dir.join("osm");
        anyhow::ensure!(
            osm.is_file(),
            "{} is missing: build the workspace's binaries (cargo build --release --workspace --bins)",
            osm.display()
        );
        let state = tempfile::tempdir()?;
        let _interrupt = crate::interrupt::on_interrupt({
            let (osm, dir) = (osm.clone(), state.path().to_owned());
            move || {
                let down = Command::new(osm)
                    .args(["local", "down", "--state-dir"])
                    .arg(dir)
                    .status();
                if let Err(e) = down {
                    eprintln!("osm local down failed: {e}");
                }
            }
        });
        let mesh = Self {
            osm,
            state,
            ranges,
            _interrupt,
        };
        mesh.ok(&[
            "up",
            "--name",
            ranges.name,
            "--pod-cidr",
            ranges.pod_cidr,
            "--service-cidr",
            ranges.service_cidr,
        ])?;
        Ok(mesh)
    }

    pub fn state(&self) -> &Path {
        self.state.path()
    }

    /// The controller's admin port (local mode's 9091) on the gateway.
    pub fn controller_admin(&self) -> std::net::SocketAddr {
        (self.ranges.gateway, 9091).into()
    }

    /// `osm local ARGS...`: stdout, or an error with both outputs.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        self.run(args, None)
    }

    fn run(&self, args: &[&str], input: Option<&str>) -> Result<String> {
        let mut child = Command::new(&self.osm)
            .arg("local")
            .arg("--state-dir")
            .arg(self.state.path())
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", self.osm.display()))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "osm local {}: {}\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn apply(&self, yaml: &str) -> Result<String> {
        self.run(&["apply", "-f", "-"], Some(yaml))
    }

    pub fn delete(&self, yaml: &str) -> Result<String> {
        self.run(&["delete", "-f", "-"], Some(yaml))
    }

    pub fn pods(&self, namespace: &str) -> Result<Vec<Value>> {
        let text = self.ok(&["get", "pods", "-n", namespace, "-o", "json"])?;
        let list: Value = serde_json::from_str(&text)?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until `count` pods of `namespace` are ready.
    pub fn wait_ready(&self, namespace: &str, count: usize, timeout: Duration) -> Result<()> {
        let began = Instant::now();
        loop {
            let pods = self.pods(namespace)?;
            let ready = pods.iter().filter(|p| ready(p)).count();
            if ready >= count {
                return Ok(());
            }
            if began.elapsed() > timeout {
                bail!("{ready} of {count} pods of {namespace} ready after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Err(e) = self.ok(&["down"]) {
            eprintln!("osm local down failed: {e:#}");
        }
    }
}

/// `given`, else the directory of the running binary: where `osm` and
/// the mesh's binaries are when a harness runs from the build directory.
pub fn bin_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(dir) => Ok(dir),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("the harness's binary has no directory")?
            .to_path_buf()),
    }
}

/// Whether a pod's Ready condition is True.
pub fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

pub fn kill9(pid: i32) -> Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("kill -9 {pid}"))
}

pub fn first_pid(file: &Path) -> Result<i32> {
    std::fs::read_to_string(file)
        .with_context(|| format!("reading {}", file.display()))?
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no pid in {}", file.display()))
}
