//! `osm support bug-report`: what a maintainer needs to look at a mesh,
//! gathered through the API into one .tar.gz: versions, meshes, meshed
//! namespaces, each control plane's MeshConfig, pods and recent logs, and
//! every SMI and policy object. Secrets are never collected.

use std::io::Write as _;

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams, LogParams},
};
use osm_controller::sources::kubernetes::watched_kinds;

use super::client;

/// The report's files: (name, content).
pub async fn collect(client: &Client, mesh_namespaces: &[String]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    files.push((
        "version.txt".to_string(),
        format!("osm CLI {}\n", env!("CARGO_PKG_VERSION")),
    ));
    let mut meshes = Vec::new();
    let _ = super::install::list(client, &mut meshes).await;
    files.push((
        "meshes.txt".into(),
        String::from_utf8_lossy(&meshes).into_owned(),
    ));
    let mut namespaces = Vec::new();
    let _ = super::namespace::list(client.clone(), &mut namespaces, None).await;
    files.push((
        "namespaces.txt".into(),
        String::from_utf8_lossy(&namespaces).into_owned(),
    ));

    for ns in mesh_namespaces {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        match pods.list(&ListParams::default()).await {
            Ok(list) => {
                let redacted: Vec<Pod> = list.items.iter().cloned().map(redact_env).collect();
                files.push((format!("{ns}/pods.yaml"), yaml(&redacted)));
                for pod in &list.items {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let params = LogParams {
                        tail_lines: Some(2000),
                        ..LogParams::default()
                    };
                    let text = match pods.logs(&name, &params).await {
                        Ok(t) => t,
                        Err(e) => format!("(no log: {e})\n"),
                    };
                    files.push((format!("{ns}/logs/{name}.log"), text));
                }
            }
            Err(e) => files.push((format!("{ns}/pods.error"), format!("{e}\n"))),
        }
    }
    // Mesh resources, MeshConfigs included, from every namespace.
    for watched in watched_kinds().into_iter().filter(|w| w.custom) {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &watched.resource);
        let name = format!("resources/{}.yaml", watched.resource.plural);
        match api.list(&ListParams::default()).await {
            Ok(list) => files.push((name, yaml(&list.items))),
            Err(e) => files.push((name.replace(".yaml", ".error"), format!("{e}\n"))),
        }
    }
    files
}

/// A pod with every literal `env` value replaced: secrets are often passed
/// that way. References (`valueFrom`) say where a value comes from without
/// carrying it, and stay.
fn redact_env(mut pod: Pod) -> Pod {
    fn redact(env: Option<&mut Vec<k8s_openapi::api::core::v1::EnvVar>>) {
        for var in env.into_iter().flatten() {
            if var.value.is_some() {
                var.value = Some("(redacted)".into());
            }
        }
    }
    if let Some(spec) = pod.spec.as_mut() {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            redact(c.env.as_mut());
        }
        for c in spec.ephemeral_containers.iter_mut().flatten() {
            redact(c.env.as_mut());
        }
    }
    pod
}

fn yaml<T: serde::Serialize>(items: &[T]) -> String {
    serde_yaml_ng::to_string(items).unwrap_or_else(|e| format!("(not serializable: {e})\n"))
}

/// Writes the files as `<dir>/...` in a gzipped tar.
pub fn write_archive(
    path: &std::path::Path,
    dir: &str,
    files: &[(String, String)],
) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut archive = tar::Builder::new(gz);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        header.set_cksum();
        archive.append_data(&mut header, format!("{dir}/{name}"), content.as_bytes())?;
    }
    archive.into_inner()?.finish()?.flush()
}

/// `osm support`: help for maintainers.
#[derive(Debug, clap::Subcommand)]
pub enum SupportCommand {
    /// Gather versions, meshes, meshed namespaces, the control plane's pods
    /// and logs, and every SMI and policy object into a .tar.gz (never a
    /// Secret).
    BugReport {
        /// The archive to write.
        #[arg(short = 'o', long, default_value = "osm-bug-report.tar.gz")]
        out_file: std::path::PathBuf,
    },
}

impl SupportCommand {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let SupportCommand::BugReport { out_file } = self;
        let client = client().await?;
        let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> = kube::Api::all(client.clone());
        let mut namespaces: Vec<String> = api
            .list(&kube::api::ListParams::default().labels("app=osm-controller"))
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter_map(|d| d.metadata.namespace.clone())
                    .collect()
            })
            .unwrap_or_default();
        namespaces.sort();
        namespaces.dedup();
        if namespaces.is_empty() {
            namespaces.push("osm-system".into());
        }
        let files = collect(&client, &namespaces).await;
        write_archive(out_file, "osm-bug-report", &files)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out_file.display()))?;
        println!(
            "bug report written to {} ({} files)",
            out_file.display(),
            files.len()
        );
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use osm_controller::kubernetes::fake::FakeApi;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn the_report_holds_the_mesh_and_never_a_secret() {
        let fake = FakeApi::new();
        fake.put(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"openservicemesh.io/monitored-by": "osm"}}}));
        fake.put(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "osm-controller-1", "namespace": "osm-system"},
            "spec": {"containers": [{"name": "osm-controller", "image": "x", "env": [
                {"name": "DB_PASSWORD", "value": "hunter2-in-env"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}));
        fake.put(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "osm-ca-bundle", "namespace": "osm-system"},
            "data": {"private.key": "c2VjcmV0"}}));
        fake.put(json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
            "metadata": {"name": "tt", "namespace": "shop"},
            "spec": {"destination": {"kind": "ServiceAccount", "name": "a"}, "rules": [], "sources": []}}));
        let files = collect(&fake.client(), &["osm-system".to_string()]).await;
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        for expected in [
            "version.txt",
            "meshes.txt",
            "namespaces.txt",
            "osm-system/pods.yaml",
            "osm-system/logs/osm-controller-1.log",
            "resources/traffictargets.yaml",
        ] {
            assert!(names.contains(&expected), "{expected} missing: {names:?}");
        }
        let tts = &files
            .iter()
            .find(|(n, _)| n == "resources/traffictargets.yaml")
            .unwrap()
            .1;
        assert!(tts.contains("name: tt"), "{tts}");
        assert!(
            files.iter().all(|(_, c)| !c.contains("c2VjcmV0")),
            "a secret leaked into the report"
        );
        // Regression (issue 14, item 10): env values carry secrets too.
        let pods = &files
            .iter()
            .find(|(n, _)| n == "osm-system/pods.yaml")
            .unwrap()
            .1;
        assert!(!pods.contains("hunter2-in-env"), "{pods}");
        assert!(
            pods.contains("DB_PASSWORD") && pods.contains("(redacted)"),
            "{pods}"
        );
        assert!(pods.contains("fieldPath: metadata.name"), "{pods}");
        assert!(
            !fake.requests().iter().any(|r| r.contains("/secrets")),
            "secrets were read"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.tar.gz");
        write_archive(&path, "osm-bug-report", &files).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
            std::fs::File::open(&path).unwrap(),
        ));
        let mut found = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            found.push((entry.path().unwrap().display().to_string(), text));
        }
        assert_eq!(found.len(), files.len());
        assert_eq!(
            found[0],
            ("osm-bug-report/version.txt".to_string(), files[0].1.clone())
        );
    }
}
