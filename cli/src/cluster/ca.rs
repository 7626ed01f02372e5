//! `osm ca`: the mesh's certificate authority, as the controller reports
//! and drives it on its admin port.
//!
//! - `status`: `/debug/ca`: the root rotation's phase and what it waits
//!   for, the roots of the bundle proxies are sent (the one that issues
//!   first), any root live certificates still chain to, and how many live
//!   certificates each has.
//! - `rotate`: `POST /ca/rotate`, then (with `--wait`) the phases as they
//!   pass until the old root is gone.
//!
//! On a cluster through the API server's port-forward to a controller pod;
//! with `--local`, local mode's controller on this machine.

use std::time::{Duration, Instant};

use http::Method;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::ListParams};
use serde_json::Value;

use super::{client, local::LocalTarget, proxy::port_forward};
use osm_api::compat::CONTROLLER_ADMIN_PORT;

const STATUS_PATH: &str = "/debug/ca";
const ROTATE_PATH: &str = "/ca/rotate";

/// `osm ca`: the mesh's certificate authority.
#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// The root rotation's phase and what it waits for; the trust bundle's
    /// roots (the issuing one first), any root live certificates still
    /// chain to, and how many live certificates each has.
    Status(CaStatus),
    /// Rotates the mesh root without dropping a request: a new root joins
    /// every proxy's trust bundle; once every connected proxy holds it, it
    /// issues (proxies renew at once); once no live certificate chains to
    /// the old root, the old root leaves the bundles. A controller
    /// restarted meanwhile resumes from the phase it stored.
    Rotate(CaRotate),
}

#[derive(Debug, clap::Args)]
pub struct CaStatus {
    /// The control plane's namespace.
    #[arg(long, default_value = osm_api::compat::DEFAULT_OSM_NAMESPACE)]
    pub osm_namespace: String,
    /// `table`, or `json` (the controller's report as it is).
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
    #[command(flatten)]
    pub target: LocalTarget,
}

#[derive(Debug, clap::Args)]
pub struct CaRotate {
    /// The control plane's namespace.
    #[arg(long, default_value = osm_api::compat::DEFAULT_OSM_NAMESPACE)]
    pub osm_namespace: String,
    /// Follow the rotation, one line per phase, until it is over (exit 1
    /// when --timeout passes first).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub target: LocalTarget,
}

/// The phase line: the phase, and what it waits for.
pub fn phase_line(report: &Value) -> String {
    let phase = report["phase"].as_str().unwrap_or("unknown");
    match report["waitingFor"].as_str().filter(|w| !w.is_empty()) {
        Some(waiting) => format!("PHASE: {phase} (waiting: {waiting})\n"),
        None => format!("PHASE: {phase}\n"),
    }
}

/// The issuer line: who signs proxies' certificates, and its failures.
pub fn issuer_line(report: &Value) -> String {
    let issuer = &report["issuer"];
    let kind = issuer["kind"].as_str().unwrap_or("unknown");
    match issuer["consecutiveFailures"].as_u64().unwrap_or(0) {
        0 => format!("ISSUER: {kind}\n"),
        failures => format!(
            "ISSUER: {kind} (failing: {failures} requests in a row; last error: {})\n",
            issuer["lastError"].as_str().unwrap_or("")
        ),
    }
}

/// The report as a table: the phase, the issuer, then one row per root.
pub fn table(report: &Value) -> String {
    let yes_no = |v: &Value| {
        if v.as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
    };
    let rows: Vec<Vec<String>> = report["roots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let fingerprint = r["fingerprint"].as_str().unwrap_or("");
            vec![
                r["subject"].as_str().unwrap_or("").to_string(),
                fingerprint.chars().take(16).collect(),
                yes_no(&r["issuing"]).to_string(),
                yes_no(&r["inBundle"]).to_string(),
                r["liveCertificates"].as_u64().unwrap_or(0).to_string(),
            ]
        })
        .collect();
    phase_line(report)
        + &issuer_line(report)
        + &crate::table::render(
            &[
                "ROOT",
                "FINGERPRINT",
                "ISSUING",
                "IN BUNDLE",
                "LIVE CERTIFICATES",
            ],
            &rows,
        )
}

/// A running controller pod of the namespace.
async fn controller_pod(api: &Api<Pod>, namespace: &str) -> anyhow::Result<String> {
    let pods = api
        .list(&ListParams::default().labels("app=osm-controller"))
        .await
        .map_err(|e| anyhow::anyhow!("looking for osm-controller in {namespace}: {e}"))?;
    pods.items
        .iter()
        .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .and_then(|p| p.metadata.name.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no running osm-controller pod (label app=osm-controller) in {namespace}: is the \
                 mesh installed there? (--osm-namespace)"
            )
        })
}

/// Where the controller's admin port is.
enum Admin {
    Local(std::net::SocketAddr),
    Cluster { api: Box<Api<Pod>>, pod: String },
}

impl Admin {
    async fn find(target: &LocalTarget, osm_namespace: &str) -> anyhow::Result<Self> {
        if target.local {
            let instance = osm_local::state::StateDir::new(&target.state_dir).require_instance()?;
            return Ok(Self::Local(instance.controller_admin()));
        }
        let api: Api<Pod> = Api::namespaced(client().await?, osm_namespace);
        let pod = controller_pod(&api, osm_namespace).await?;
        Ok(Self::Cluster {
            api: Box::new(api),
            pod,
        })
    }

    /// `method path`; (status, body).
    async fn call(&self, method: Method, path: &str) -> anyhow::Result<(u16, String)> {
        match self {
            Self::Local(addr) => {
                let answer =
                    osm_serve::fetch::request(*addr, method, path, Duration::from_secs(10)).await?;
                Ok((
                    answer.status,
                    String::from_utf8_lossy(&answer.body).into_owned(),
                ))
            }
            Self::Cluster { api, pod } => {
                port_forward(api, pod, CONTROLLER_ADMIN_PORT, method, path)
                    .await
                    .map_err(anyhow::Error::msg)
            }
        }
    }

    /// The controller's `/debug/ca`.
    async fn report(&self) -> anyhow::Result<Value> {
        let (code, body) = self.call(Method::GET, STATUS_PATH).await?;
        if code != 200 {
            anyhow::bail!(
                "the controller answered {code} on {STATUS_PATH}: {}",
                body.trim()
            );
        }
        serde_json::from_str(&body)
            .map_err(|e| anyhow::anyhow!("the controller's {STATUS_PATH} is not JSON: {e}"))
    }
}

impl CaCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        match self {
            CaCommand::Status(status) => {
                let report = Admin::find(&status.target, &status.osm_namespace)
                    .await?
                    .report()
                    .await?;
                let text = match status.output.as_str() {
                    "json" => serde_json::to_string_pretty(&report)? + "\n",
                    _ => table(&report),
                };
                crate::output::print(&text)?;
                Ok(0)
            }
            CaCommand::Rotate(rotate) => rotate.run().await,
        }
    }
}

impl CaRotate {
    async fn run(&self) -> anyhow::Result<i32> {
        let admin = Admin::find(&self.target, &self.osm_namespace).await?;
        let (code, body) = admin.call(Method::POST, ROTATE_PATH).await?;
        let answer: Value = serde_json::from_str(&body).unwrap_or_default();
        if code != 202 {
            let why = answer["error"].as_str().unwrap_or(body.trim());
            anyhow::bail!("the controller did not start a rotation ({code}): {why}");
        }
        let fingerprint: String = answer["newRoot"]["fingerprint"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(16)
            .collect();
        crate::output::print(&format!(
            "root rotation started: the new root {fingerprint} joins every trust bundle\n"
        ))?;
        if !self.wait {
            crate::output::print("follow it with `osm ca status`\n")?;
            return Ok(0);
        }
        let started = Instant::now();
        let mut last = String::new();
        loop {
            let report = admin.report().await?;
            let line = phase_line(&report);
            if line != last {
                crate::output::print(&format!("{:>6.1}s {line}", started.elapsed().as_secs_f64()))?;
                last = line;
            }
            if report["phase"] == "steady" {
                return Ok(0);
            }
            if started.elapsed() >= self.timeout {
                eprintln!(
                    "osm: the rotation is still in progress after {}; it goes on in the controller \
                     (`osm ca status` follows it)",
                    humantime::format_duration(self.timeout)
                );
                return Ok(1);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn roots_are_rows_issuing_first() {
        let report = json!({"roots": [
            {"fingerprint": "9b46a7ebb28e7fb1bd324d23ace5ab42", "subject": "CN=new", "issuing": true, "inBundle": true, "liveCertificates": 0},
            {"fingerprint": "0011223344556677889900", "subject": "CN=old", "issuing": false, "inBundle": true, "liveCertificates": 12},
        ]});
        let text = table(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(lines[0], "PHASE: unknown");
        assert_eq!(lines[1], "ISSUER: unknown");
        assert!(lines[2].starts_with("ROOT"), "{text}");
        assert!(
            lines[3].starts_with("CN=new")
                && lines[3].contains("9b46a7ebb28e7fb1")
                && lines[3].contains(" yes "),
            "{text}"
        );
        assert!(
            lines[4].starts_with("CN=old") && lines[4].ends_with("12"),
            "{text}"
        );
        assert_eq!(table(&json!({})).lines().count(), 3, "a header alone");
        let failing = json!({"issuer": {"kind": "vault", "consecutiveFailures": 3, "lastError": "503: Vault is sealed"}});
        assert_eq!(
            issuer_line(&failing),
            "ISSUER: vault (failing: 3 requests in a row; last error: 503: Vault is sealed)\n"
        );
        let waiting = json!({"phase": "distributing", "waitingFor": "1 of 3 connected proxies hold the new root"});
        assert_eq!(
            phase_line(&waiting),
            "PHASE: distributing (waiting: 1 of 3 connected proxies hold the new root)\n"
        );
    }
}
