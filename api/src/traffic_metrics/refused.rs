//! Requests the mesh never routed: HTTP requests a proxy refused because
//! the client came in plaintext, from outside the mesh or from a meshed
//! pod whose own proxy passed the request through (it had no route to the
//! destination: bookthief in SMI mode). No client proxy counted them, so
//! the server's proxy does, by the client's address
//! (`osm_inbound_plaintext_refused_requests_total{source_ip}`); here they
//! become requests from the workload that address belongs to, failures of
//! that edge.

use std::collections::BTreeMap;

use crate::resources::PodView;

use super::{Requests, Workload, count_of, workload_labelled};

pub const PLAINTEXT_REFUSED_TOTAL: &str = "osm_inbound_plaintext_refused_requests_total";

/// Refused requests from one client address to one pod, with one status.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub source_ip: String,
    pub destination: Workload,
    pub code: u16,
    pub count: f64,
}

pub(super) fn of(scrape: &prometheus_parse::Scrape) -> Vec<Refused> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == PLAINTEXT_REFUSED_TOTAL)
        .filter_map(|s| {
            Some(Refused {
                source_ip: s.labels.get("source_ip")?.to_string(),
                destination: workload_labelled(&s.labels, "destination"),
                code: s.labels.get("response_code")?.parse().ok()?,
                count: count_of(&s.value)?,
            })
        })
        .collect()
}

/// The workload of a pod with an address, as the proxies label their own:
/// (address, workload).
pub fn pod_workload(pod: &impl PodView) -> Option<(String, Workload)> {
    let ip = pod.pod_ip()?.to_string();
    let (kind, name) = crate::k8s::workload(pod);
    Some((
        ip,
        Workload {
            namespace: pod.meta().namespace.clone().unwrap_or_default(),
            kind,
            name,
            pod: pod.meta().name.clone().unwrap_or_default(),
        },
    ))
}

/// The refused requests as requests from the workloads their addresses
/// belong to (`by_ip`). An address no pod has (a client outside the
/// cluster, or `other` past the proxy's cap) is left out: edges are
/// between resources. No latency: the proxy answered them itself.
pub fn attribute(refused: &[Refused], by_ip: &BTreeMap<String, Workload>) -> Vec<Requests> {
    refused
        .iter()
        .filter_map(|r| {
            Some(Requests {
                source: by_ip.get(&r.source_ip)?.clone(),
                destination: r.destination.clone(),
                code: r.code,
                count: r.count,
                buckets: Vec::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use k8s_openapi::api::core::v1::Pod;

    use super::*;
    use crate::traffic_metrics::read_exposition;

    #[test]
    fn refused_requests_become_failures_of_the_clients_workload() {
        let text = "\
# TYPE osm_inbound_plaintext_refused_requests_total counter
osm_inbound_plaintext_refused_requests_total{source_ip=\"10.1.0.9\",destination_namespace=\"bookstore\",destination_kind=\"Deployment\",destination_name=\"bookstore-v1\",destination_pod=\"bookstore-v1-abc\",response_code=\"403\"} 4
osm_inbound_plaintext_refused_requests_total{source_ip=\"203.0.113.7\",destination_namespace=\"bookstore\",destination_kind=\"Deployment\",destination_name=\"bookstore-v1\",destination_pod=\"bookstore-v1-abc\",response_code=\"403\"} 2
osm_inbound_plaintext_refused_requests_total{source_ip=\"other\",destination_namespace=\"bookstore\",destination_kind=\"Deployment\",destination_name=\"bookstore-v1\",destination_pod=\"bookstore-v1-abc\",response_code=\"403\"} 1
";
        let (requests, refused) = read_exposition(text);
        assert!(requests.is_empty());
        assert_eq!(refused.len(), 3);
        let thief: Pod = serde_json::from_value(json!({
            "metadata": {"name": "bookthief-7d4-x2", "namespace": "bookthief",
                "labels": {"pod-template-hash": "7d4"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "bookthief-7d4", "uid": "u", "controller": true}]},
            "status": {"podIP": "10.1.0.9"},
        }))
        .unwrap();
        let by_ip: BTreeMap<String, Workload> = pod_workload(&thief).into_iter().collect();
        let attributed = attribute(&refused, &by_ip);
        assert_eq!(attributed.len(), 1, "unknown addresses are left out");
        let r = &attributed[0];
        assert_eq!(
            (
                r.source.namespace.as_str(),
                r.source.kind.as_str(),
                r.source.name.as_str()
            ),
            ("bookthief", "Deployment", "bookthief")
        );
        assert_eq!(r.source.pod, "bookthief-7d4-x2");
        assert_eq!(
            (r.destination.name.as_str(), r.code, r.count),
            ("bookstore-v1", 403, 4.0)
        );
    }
}
