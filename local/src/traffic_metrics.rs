//! `osm local get trafficmetrics`: SMI TrafficMetrics of the local mesh,
//! from every sidecar's series read directly (each proxy's metrics port on
//! its pod address, as Prometheus scrapes it), aggregated by
//! [`osm_api::traffic_metrics`]. Counts are since each proxy started.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::Pod;
use osm_api::traffic_metrics::{
    Kind, Requests, Workload, read_exposition,
    refused::{attribute, pod_workload},
    scrape::scrape_target,
    traffic_metrics,
};
use serde_json::Value;

use super::{http, store::Store};

/// Every sidecar's request series, with the plaintext requests they
/// refused as requests from the pods that sent them; a proxy that does not
/// answer is left out (its requests are missing from the counts) and named
/// on stderr.
pub async fn collect(store: &Store) -> anyhow::Result<Vec<Requests>> {
    let pods: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|o| o.key.kind == "Pod")
        .collect();
    let workloads_by_ip: BTreeMap<String, Workload> = pods
        .iter()
        .filter_map(|o| serde_json::from_value::<Pod>(o.value.clone()).ok())
        .filter_map(|pod| pod_workload(&pod))
        .collect();
    let mut out = Vec::new();
    for object in &pods {
        let Some((addr, path)) = scrape_target(&object.value) else {
            continue;
        };
        match http::get(addr, &path, Duration::from_secs(2)).await {
            Ok(answer) if answer.status == 200 => {
                let (requests, refused) = read_exposition(&String::from_utf8_lossy(&answer.body));
                out.extend(requests);
                out.extend(attribute(&refused, &workloads_by_ip));
            }
            Ok(answer) => eprintln!(
                "warning: {}/{}: metrics at {addr} answered {}",
                object.key.namespace, object.key.name, answer.status
            ),
            Err(e) => eprintln!(
                "warning: {}/{}: metrics at {addr}: {e}",
                object.key.namespace, object.key.name
            ),
        }
    }
    Ok(out)
}

/// The query `get trafficmetrics [KIND/NAME]` makes: the named resource's
/// edges, or every deployment of the namespace (what each received).
pub fn query(
    requests: &[Requests],
    namespace: &str,
    target: Option<&str>,
) -> Result<Value, String> {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let (kind, name, edges) = match target {
        None => (Kind::Deployment, None, false),
        Some(t) => {
            let (kind, name) = t.split_once('/').unwrap_or(("deployment", t));
            let kind = Kind::parse(kind).ok_or_else(|| {
                format!("{kind:?}: traffic metrics are kept for pods, deployments and namespaces")
            })?;
            (kind, Some(name), true)
        }
    };
    Ok(traffic_metrics(
        requests,
        kind,
        namespace,
        name,
        edges,
        &now,
        "since the proxies started",
    ))
}

/// A quantity as written by [`osm_api::traffic_metrics::quantity`].
fn number(q: &str) -> Option<f64> {
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|v| v / 1000.0),
        None => q.parse().ok(),
    }
}

/// The list as a table: one row per item and edge.
pub fn table(list: &Value) -> String {
    let metric = |item: &Value, name: &str| {
        item["metrics"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["name"] == name))
            .and_then(|m| m["value"].as_str())
            .and_then(number)
    };
    let rows: Vec<Vec<String>> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let resource = format!(
                "{}/{}",
                item["resource"]["kind"]
                    .as_str()
                    .unwrap_or("")
                    .to_lowercase(),
                item["resource"]["name"].as_str().unwrap_or("")
            );
            let peer = &item["edge"]["resource"];
            let edge = if peer.is_null() {
                "from *".to_string()
            } else {
                let ns = peer["namespace"]
                    .as_str()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default();
                format!(
                    "{} {ns}{}",
                    item["edge"]["direction"].as_str().unwrap_or(""),
                    peer["name"].as_str().unwrap_or("")
                )
            };
            let count = |name| metric(item, name).map_or("-".into(), |v| format!("{v}"));
            let ms = |name| metric(item, name).map_or("-".into(), |v| format!("{v:.3}ms"));
            vec![
                resource,
                edge,
                count("success_count"),
                count("failure_count"),
                metric(item, "success_rate").map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
                ms("p50_response_latency"),
                ms("p90_response_latency"),
                ms("p99_response_latency"),
            ]
        })
        .collect();
    crate::table::render(
        &[
            "RESOURCE",
            "EDGE",
            "SUCCESS",
            "FAILURE",
            "SUCCESS RATE",
            "P50",
            "P90",
            "P99",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn a_query_names_a_kind_the_metrics_are_kept_for() {
        assert!(query(&[], "bookstore", Some("deployment/bookstore-v1")).is_ok());
        assert!(query(&[], "bookstore", Some("bookstore-v1")).is_ok());
        assert_eq!(
            query(&[], "bookstore", Some("service/bookstore")).unwrap_err(),
            "\"service\": traffic metrics are kept for pods, deployments and namespaces"
        );
        let list = query(&[], "bookstore", None).unwrap();
        assert_eq!(list["kind"], "TrafficMetricsList");
        assert_eq!(table(&list).lines().count(), 1, "a header alone");
    }

    #[test]
    fn quantities_read_back_as_numbers() {
        assert_eq!(number("7500m"), Some(7.5));
        assert_eq!(number("10"), Some(10.0));
        assert_eq!(number("x"), None);
    }
}
