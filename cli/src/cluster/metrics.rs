//! `osm metrics enable|disable --namespace NS...`: the namespace annotation
//! `openservicemesh.io/metrics` that makes the injector add Prometheus
//! scrape annotations to new pods. Only namespaces in a mesh qualify.

use std::io::Write;

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

use super::namespace::{FIELD_MANAGER, MONITORED_BY};

use super::{client, code};
pub use osm_api::compat::METRICS;

/// The patch for one namespace, or why not (pure).
pub fn decide(ns: &Namespace, enable: bool) -> Result<Value, String> {
    let name = ns.metadata.name.as_deref().unwrap_or_default();
    let monitored = ns
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(MONITORED_BY));
    if !monitored {
        return Err(format!(
            "Namespace [{name}] is not in a mesh: add it first (osm namespace add {name})"
        ));
    }
    let value = if enable {
        json!("enabled")
    } else {
        Value::Null
    };
    Ok(json!({"metadata": {"annotations": {METRICS: value}}}))
}

/// Runs the command; false when any namespace failed.
pub async fn set(
    client: Client,
    out: &mut impl Write,
    names: &[String],
    enable: bool,
) -> std::io::Result<bool> {
    let api: Api<Namespace> = Api::all(client);
    let mut ok = true;
    for name in names {
        let result = async {
            let ns = api.get(name).await.map_err(|e| match e {
                kube::Error::Api(s) if s.code == 404 => {
                    format!("Namespace [{name}] does not exist")
                }
                other => format!("Namespace [{name}]: {other}"),
            })?;
            let body = decide(&ns, enable)?;
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(&body),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("Namespace [{name}]: {e}"))
        }
        .await;
        match result {
            Ok(()) => {
                let word = if enable { "enabled" } else { "disabled" };
                writeln!(out, "Metrics successfully {word} in namespace [{name}]")?;
            }
            Err(e) => {
                writeln!(out, "{e}")?;
                ok = false;
            }
        }
    }
    if ok && !names.is_empty() {
        writeln!(
            out,
            "Pods created from now on are affected; restart running pods to apply it to them."
        )?;
    }
    Ok(ok)
}

/// `osm metrics`: Prometheus scraping of the sidecars of a namespace.
#[derive(Debug, clap::Subcommand)]
pub enum MetricsCommand {
    /// Annotate namespaces so new pods are scraped.
    Enable {
        #[arg(long = "namespace", short = 'n', required = true, num_args = 1..)]
        namespaces: Vec<String>,
    },
    /// Stop annotating new pods of namespaces for scraping.
    Disable {
        #[arg(long = "namespace", short = 'n', required = true, num_args = 1..)]
        namespaces: Vec<String>,
    },
}

impl MetricsCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let client = client().await?;
        let mut out = std::io::stdout();
        let (namespaces, enable) = match self {
            MetricsCommand::Enable { namespaces } => (namespaces, true),
            MetricsCommand::Disable { namespaces } => (namespaces, false),
        };
        Ok(code(set(client, &mut out, namespaces, enable).await?))
    }
}

#[cfg(test)]
mod tests {
    use osm_controller::kubernetes::fake::FakeApi;

    use super::*;

    #[tokio::test]
    async fn metrics_are_annotated_on_meshed_namespaces_only() {
        let fake = FakeApi::new();
        fake.put(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {MONITORED_BY: "osm"}}}));
        fake.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plain"}}));
        let mut out = Vec::new();
        assert!(
            !set(
                fake.client(),
                &mut out,
                &["shop".into(), "plain".into()],
                true
            )
            .await
            .unwrap()
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Metrics successfully enabled in namespace [shop]"),
            "{text}"
        );
        assert!(
            text.contains(
                "Namespace [plain] is not in a mesh: add it first (osm namespace add plain)"
            ),
            "{text}"
        );
        let shop = fake.get("", "namespaces", "", "shop").unwrap();
        assert_eq!(shop["metadata"]["annotations"][METRICS], "enabled");
        assert!(
            fake.get("", "namespaces", "", "plain").unwrap()["metadata"]
                .get("annotations")
                .is_none()
        );

        let mut out = Vec::new();
        assert!(
            set(fake.client(), &mut out, &["shop".into()], false)
                .await
                .unwrap()
        );
        let shop = fake.get("", "namespaces", "", "shop").unwrap();
        assert!(
            shop["metadata"]["annotations"].get(METRICS).is_none(),
            "{shop}"
        );
        let patches = fake.patches();
        assert_eq!(
            patches.last().unwrap().2,
            json!({"metadata": {"annotations": {METRICS: null}}})
        );
    }
}
