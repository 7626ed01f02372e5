//! The soak's local mesh, driven through the real `osm` binary as a user
//! would (its own name, ranges and state directory, brought down when
//! dropped), and the churn applied to it.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use super::{Settings, schedule::Churn};

/// A local mesh of the soak's own.
pub struct Local {
    osm: PathBuf,
    state: tempfile::TempDir,
}

/// The soak mesh's pod range, and its gateway (the range's first
/// address, where local mode's control plane listens).
const POD_CIDR: &str = "10.231.0.0/16";
const GATEWAY: [u8; 4] = [10, 231, 0, 1];

impl Local {
    pub fn up(bin_dir: &Path) -> Result<Self> {
        let osm = bin_dir.join("osm");
        anyhow::ensure!(
            osm.is_file(),
            "{} is missing: build the workspace's binaries (cargo build --release --workspace --bins)",
            osm.display()
        );
        let mesh = Self {
            osm,
            state: tempfile::tempdir()?,
        };
        mesh.ok(&[
            "up",
            "--name",
            "soak",
            "--pod-cidr",
            POD_CIDR,
            "--service-cidr",
            "10.232.0.0/16",
        ])?;
        Ok(mesh)
    }

    pub fn state(&self) -> &Path {
        self.state.path()
    }

    /// The controller's admin port (local mode's 9091) on the gateway.
    pub fn controller_admin(&self) -> std::net::SocketAddr {
        (GATEWAY, 9091).into()
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

    fn pods(&self, namespace: &str) -> Result<Vec<Value>> {
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

    /// The client's `GET path` through `osm local exec`.
    fn client_get(&self, path: &str) -> Result<Value> {
        let url = format!("http://127.0.0.1:9000{path}");
        let out = self.ok(&["exec", "-n", "soak", "deploy/client", "--", "httpget", &url])?;
        let body = out.split_once('\n').map_or("", |(_, b)| b);
        serde_json::from_str(body).with_context(|| format!("the client's {path}: {out}"))
    }

    /// Waits until the client's requests succeed, then starts its count
    /// afresh (start-up is not the soak).
    pub fn wait_for_load(&self, timeout: Duration) -> Result<()> {
        let began = Instant::now();
        loop {
            let flowing = self
                .client_get("/report")
                .is_ok_and(|r| r["kinds"]["http"]["ok"].as_u64().unwrap_or(0) > 0);
            if flowing {
                self.client_get("/reset")?;
                return Ok(());
            }
            if began.elapsed() > timeout {
                bail!("no request succeeded within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The client's report and its clock (milliseconds since the reset).
    pub fn client_report(&self) -> Result<(Value, u64)> {
        let report = self.client_get("/report")?;
        let now = report["nowMs"].as_u64().unwrap_or(0);
        Ok((report, now))
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Err(e) = self.ok(&["down"]) {
            eprintln!("soak: osm local down failed: {e:#}");
        }
    }
}

/// Whether a pod's Ready condition is True.
fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn kill9(pid: i32) -> Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("kill -9 {pid}"))
}

fn first_pid(file: &Path) -> Result<i32> {
    std::fs::read_to_string(file)
        .with_context(|| format!("reading {}", file.display()))?
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no pid in {}", file.display()))
}

/// The state the churn keeps between events.
#[derive(Debug, Default)]
pub struct Churner {
    revision: u32,
    policy_applied: bool,
    quiet_logs: bool,
    apps_killed: usize,
}

impl Churner {
    /// Applies one churn event; what it did.
    pub fn apply(
        &mut self,
        mesh: &Local,
        churn: Churn,
        manifests: &str,
        settings: &Settings,
    ) -> Result<String> {
        match churn {
            Churn::Rollout => {
                self.revision += 1;
                let revised = manifests.replace(
                    "soak/revision: \"0\"",
                    &format!("soak/revision: \"{}\"", self.revision),
                );
                mesh.apply(&revised)?;
                Ok(format!(
                    "server-v1 and server-v2 to revision {}",
                    self.revision
                ))
            }
            Churn::Controller => {
                let pid = first_pid(&mesh.state().join("run/osm-controller.pid"))?;
                kill9(pid)?;
                Ok(format!("killed the controller (pid {pid})"))
            }
            Churn::App => {
                let mut servers: Vec<PathBuf> = std::fs::read_dir(mesh.state().join("pods/soak"))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.join("server.process").is_file())
                    .collect();
                servers.sort();
                anyhow::ensure!(!servers.is_empty(), "no server pod runs");
                let pod = &servers[self.apps_killed % servers.len()];
                self.apps_killed += 1;
                let pid = first_pid(&pod.join("server.process"))?;
                kill9(pid)?;
                Ok(format!(
                    "killed the app of {} (pid {pid})",
                    pod.file_name().unwrap_or_default().to_string_lossy()
                ))
            }
            Churn::Policy => {
                self.policy_applied = !self.policy_applied;
                if self.policy_applied {
                    mesh.apply(super::UNRELATED_POLICY)?;
                    Ok("applied TrafficTarget soak-unrelated".into())
                } else {
                    mesh.delete(super::UNRELATED_POLICY)?;
                    Ok("deleted TrafficTarget soak-unrelated".into())
                }
            }
            Churn::MeshConfig => {
                self.quiet_logs = !self.quiet_logs;
                mesh.apply(&super::mesh_config(
                    &settings.cert_validity,
                    !self.quiet_logs,
                ))?;
                Ok(format!(
                    "sidecar.logLevel {}",
                    if self.quiet_logs { "warn" } else { "error" }
                ))
            }
        }
    }
}
