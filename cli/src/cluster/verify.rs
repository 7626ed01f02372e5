//! `osm verify connectivity`: two proxies' config dumps checked for a path
//! between them ([`super::proxy::verify`]).

use super::{client, code, policy, proxy};

/// `osm verify`: checks of a running mesh.
#[derive(Debug, clap::Subcommand)]
pub enum VerifyCommand {
    /// Whether traffic from one pod can reach another: both proxies hold a
    /// config, the source routes to the destination pod with its identity,
    /// and the destination accepts the source's identity. Exits 1 when not.
    Connectivity {
        /// NAMESPACE/POD
        #[arg(long)]
        from_pod: String,
        /// NAMESPACE/POD
        #[arg(long)]
        to_pod: String,
    },
}

impl VerifyCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let VerifyCommand::Connectivity { from_pod, to_pod } = self;
        let src = policy::parse_pod_ref(from_pod, "default").map_err(anyhow::Error::msg)?;
        let dst = policy::parse_pod_ref(to_pod, "default").map_err(anyhow::Error::msg)?;
        let client = client().await?;
        let mut sides = Vec::new();
        for (ns, name) in [&src, &dst] {
            let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
                kube::Api::namespaced(client.clone(), ns);
            let pod = pods
                .get_opt(name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("pod {ns}/{name} not found"))?;
            let sa = osm_api::k8s::service_account(&pod).to_string();
            let (_, body) = proxy::get(&client, ns, name, "config_dump")
                .await
                .map_err(anyhow::Error::msg)?;
            let dump: serde_json::Value = serde_json::from_str(&body)
                .map_err(|e| anyhow::anyhow!("{ns}/{name}: the config dump is not JSON: {e}"))?;
            sides.push((sa, dump));
        }
        let from = proxy::Side {
            namespace: &src.0,
            pod: &src.1,
            service_account: &sides[0].0,
            dump: &sides[0].1,
        };
        let to = proxy::Side {
            namespace: &dst.0,
            pod: &dst.1,
            service_account: &sides[1].0,
            dump: &sides[1].1,
        };
        let checks = proxy::verify(&from, &to);
        for c in &checks {
            println!("[{}] {}", if c.ok { "ok" } else { "FAILED" }, c.text);
        }
        Ok(code(checks.iter().all(|c| c.ok)))
    }
}
