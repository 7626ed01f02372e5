//! Prometheus for local mode (`osm local up --with prometheus`): Debian's
//! `prometheus` on the host at `<gateway>:7070` (the port OSM's add-on
//! used), scraping every sidecar and the controller.
//!
//! The sidecar job is the chart's: the same relabeling
//! (`deploy/chart/osm/prometheus/sidecar-relabel.yaml`), fed by a file the
//! daemon writes with the labels Kubernetes service discovery would give
//! each pod's containers (`__meta_kubernetes_*`), instead of by the API
//! server local mode does not serve over HTTP.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};

use super::state::StateDir;

pub const PORT: u16 = 7070;
const SIDECAR_RELABEL: &str =
    include_str!("../../deploy/chart/osm/prometheus/sidecar-relabel.yaml");
/// Faster than a cluster's usual 30 s: a local mesh is watched as it is
/// changed.
const SCRAPE_INTERVAL: &str = "5s";

/// Where its files are: config, targets, data.
pub fn dir(state: &StateDir) -> PathBuf {
    state.root.join("prometheus")
}

pub fn targets_file(state: &StateDir) -> PathBuf {
    dir(state).join("sidecar-targets.json")
}

/// The Prometheus configuration.
pub fn config(targets: &Path, controller_admin: SocketAddr) -> String {
    let relabel: String = SIDECAR_RELABEL
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("    {l}\n"))
        .collect();
    format!(
        "# Written by osm local up --with prometheus; rewritten at every start.\n\
         global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\n\
         scrape_configs:\n\
         - job_name: osm-sidecars\n  file_sd_configs:\n  - files: [{targets:?}]\n    refresh_interval: {SCRAPE_INTERVAL}\n  \
         relabel_configs:\n{relabel}\
         - job_name: osm-control-plane\n  metrics_path: /metrics\n  static_configs:\n  \
         - targets: [\"{controller_admin}\"]\n    labels: {{app: osm-controller}}\n",
        targets = targets.display().to_string(),
    )
}

/// Kubernetes service discovery's name of a label or annotation key.
fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// One target group per container of every pod with an address, with the
/// `__meta_kubernetes_*` labels role `pod` gives a container without
/// ports (the relabeling sets the port from the pod's annotation).
pub fn targets(pods: &[Value]) -> Value {
    let mut groups = Vec::new();
    for pod in pods {
        let Some(ip) = pod.pointer("/status/podIP").and_then(Value::as_str) else {
            continue;
        };
        let meta = &pod["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        labels.insert(
            "__meta_kubernetes_namespace".into(),
            text(&meta["namespace"]),
        );
        labels.insert("__meta_kubernetes_pod_name".into(), text(&meta["name"]));
        labels.insert("__meta_kubernetes_pod_ip".into(), ip.to_string());
        labels.insert(
            "__meta_kubernetes_pod_phase".into(),
            text(&pod["status"]["phase"]),
        );
        for (prefix, map) in [
            ("__meta_kubernetes_pod_label_", &meta["labels"]),
            ("__meta_kubernetes_pod_annotation_", &meta["annotations"]),
        ] {
            for (k, v) in map.as_object().into_iter().flatten() {
                labels.insert(format!("{prefix}{}", sanitize(k)), text(v));
            }
        }
        let containers = ["initContainers", "containers"]
            .into_iter()
            .flat_map(|field| pod["spec"][field].as_array().cloned().unwrap_or_default());
        for container in containers {
            let mut labels = labels.clone();
            labels.insert(
                "__meta_kubernetes_pod_container_name".into(),
                text(&container["name"]),
            );
            groups.push(json!({"targets": [ip], "labels": labels}));
        }
    }
    Value::Array(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_of_a_pod_with_an_address_is_a_target_with_its_meta_labels() {
        let pods = [
            json!({
                "metadata": {"namespace": "bookstore", "name": "bookstore-v1-abc",
                    "labels": {"app": "bookstore", "app.kubernetes.io/name": "x"},
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "15010"}},
                "spec": {"initContainers": [{"name": "osm-init"}, {"name": "osm-proxy"}],
                         "containers": [{"name": "bookstore"}]},
                "status": {"podIP": "10.243.0.7", "phase": "Running"},
            }),
            json!({"metadata": {"namespace": "a", "name": "pending"}, "spec": {"containers": [{"name": "c"}]}}),
        ];
        let groups = targets(&pods);
        let groups = groups.as_array().unwrap();
        assert_eq!(groups.len(), 3, "{groups:?}");
        let proxy = &groups[1];
        assert_eq!(proxy["targets"], json!(["10.243.0.7"]));
        let l = &proxy["labels"];
        assert_eq!(l["__meta_kubernetes_pod_container_name"], "osm-proxy");
        assert_eq!(l["__meta_kubernetes_namespace"], "bookstore");
        assert_eq!(l["__meta_kubernetes_pod_name"], "bookstore-v1-abc");
        assert_eq!(l["__meta_kubernetes_pod_label_app"], "bookstore");
        assert_eq!(l["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "x");
        assert_eq!(
            l["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            "true"
        );
        assert_eq!(
            l["__meta_kubernetes_pod_annotation_prometheus_io_port"],
            "15010"
        );
    }

    #[test]
    fn the_config_carries_the_charts_relabeling() {
        let text = config(
            Path::new("/s/prometheus/t.json"),
            "10.243.0.1:9091".parse().unwrap(),
        );
        let parsed: Value = serde_yaml_ng::from_str(&text).unwrap();
        let jobs = parsed["scrape_configs"].as_array().unwrap();
        assert_eq!(jobs[0]["job_name"], "osm-sidecars");
        assert_eq!(
            jobs[0]["file_sd_configs"][0]["files"][0],
            "/s/prometheus/t.json"
        );
        let chart: Value = serde_yaml_ng::from_str(SIDECAR_RELABEL).unwrap();
        assert_eq!(jobs[0]["relabel_configs"], chart);
        assert_eq!(
            jobs[1]["static_configs"][0]["targets"][0],
            "10.243.0.1:9091"
        );
    }
}
