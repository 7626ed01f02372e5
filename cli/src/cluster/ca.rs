//! `osm ca status`: the mesh's roots as the controller reports them on its
//! admin port (`/debug/ca`): the roots of the bundle proxies are sent, the
//! one that issues first, any root live certificates still chain to, and
//! how many live certificates the controller issued from each. On a
//! cluster through the API server's port-forward to a controller pod; with
//! `--local`, from local mode's controller on this machine.

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::ListParams};
use serde_json::Value;

use super::{client, local::LocalTarget, proxy::port_forward_get};
use osm_api::compat::CONTROLLER_ADMIN_PORT;

const PATH: &str = "/debug/ca";

/// `osm ca`: the mesh's certificate authority.
#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// The trust bundle's roots (the issuing one first), any root live
    /// certificates still chain to, and how many live certificates the
    /// controller issued from each.
    Status(CaStatus),
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

/// The report as a table: one row per root.
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
    crate::table::render(
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

impl CaCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let CaCommand::Status(status) = self;
        let (code, body) = if status.target.local {
            let instance =
                osm_local::state::StateDir::new(&status.target.state_dir).require_instance()?;
            let answer = osm_serve::fetch::get(
                instance.controller_admin(),
                PATH,
                std::time::Duration::from_secs(5),
            )
            .await?;
            (
                answer.status,
                String::from_utf8_lossy(&answer.body).into_owned(),
            )
        } else {
            let api: Api<Pod> = Api::namespaced(client().await?, &status.osm_namespace);
            let pod = controller_pod(&api, &status.osm_namespace).await?;
            port_forward_get(&api, &pod, CONTROLLER_ADMIN_PORT, PATH)
                .await
                .map_err(anyhow::Error::msg)?
        };
        if code != 200 {
            anyhow::bail!("the controller answered {code} on {PATH}: {}", body.trim());
        }
        let report: Value = serde_json::from_str(&body)
            .map_err(|e| anyhow::anyhow!("the controller's {PATH} is not JSON: {e}"))?;
        let text = match status.output.as_str() {
            "json" => serde_json::to_string_pretty(&report)? + "\n",
            _ => table(&report),
        };
        crate::output::print(&text)?;
        Ok(0)
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
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ROOT"), "{text}");
        assert!(
            lines[1].starts_with("CN=new")
                && lines[1].contains("9b46a7ebb28e7fb1")
                && lines[1].contains(" yes "),
            "{text}"
        );
        assert!(
            lines[2].starts_with("CN=old") && lines[2].ends_with("12"),
            "{text}"
        );
        assert_eq!(table(&json!({})).lines().count(), 1, "a header alone");
    }
}
