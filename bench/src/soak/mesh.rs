//! The soak's local mesh (its ranges, its client's report) and the churn
//! applied to it.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use super::{Settings, schedule::Churn};
use crate::local_mesh::{Local, Ranges, first_pid, kill9};

/// The soak mesh's name and ranges.
pub const RANGES: Ranges = Ranges {
    name: "soak",
    pod_cidr: "10.231.0.0/16",
    service_cidr: "10.232.0.0/16",
    gateway: [10, 231, 0, 1],
};

/// The soak client's `GET path` (its control port, 9000) through `osm
/// local exec`.
fn client_get(mesh: &Local, path: &str) -> Result<Value> {
    let url = format!("http://127.0.0.1:9000{path}");
    let out = mesh.ok(&["exec", "-n", "soak", "deploy/client", "--", "httpget", &url])?;
    let body = out.split_once('\n').map_or("", |(_, b)| b);
    serde_json::from_str(body).with_context(|| format!("the client's {path}: {out}"))
}

/// Waits until the client's requests succeed, then starts its count
/// afresh (start-up is not the soak).
pub fn wait_for_load(mesh: &Local, timeout: Duration) -> Result<()> {
    let began = Instant::now();
    loop {
        let flowing = client_get(mesh, "/report")
            .is_ok_and(|r| r["kinds"]["http"]["ok"].as_u64().unwrap_or(0) > 0);
        if flowing {
            client_get(mesh, "/reset")?;
            return Ok(());
        }
        if began.elapsed() > timeout {
            bail!("no request succeeded within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The client's report and its clock (milliseconds since the reset).
pub fn client_report(mesh: &Local) -> Result<(Value, u64)> {
    let report = client_get(mesh, "/report")?;
    let now = report["nowMs"].as_u64().unwrap_or(0);
    Ok((report, now))
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
