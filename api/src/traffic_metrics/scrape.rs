//! Where the series come from and what a window holds: which pods have a
//! proxy whose metrics can be read (by the same annotations Prometheus
//! scrapes), and the requests between two readings of them.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
};

use crate::resources::PodView;
use serde_json::Value;

use super::{Requests, Workload};

/// The proxy's metrics port and path when a pod's annotations name none.
pub const METRICS_PORT: u16 = 15010;
pub const METRICS_PATH: &str = "/stats/prometheus";

/// Where a meshed pod's proxy serves its metrics (the pod as JSON); None
/// for a pod without a sidecar or an address yet.
pub fn scrape_target(pod: &Value) -> Option<(SocketAddr, String)> {
    let has_proxy = ["initContainers", "containers"].iter().any(|field| {
        pod["spec"][field]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["name"] == PROXY_CONTAINER))
    });
    let annotations = &pod["metadata"]["annotations"];
    target(
        has_proxy,
        pod.pointer("/status/podIP").and_then(Value::as_str),
        annotations["prometheus.io/port"].as_str(),
        annotations["prometheus.io/path"].as_str(),
    )
}

/// [`scrape_target`] of a typed pod.
pub fn scrape_target_of(pod: &impl PodView) -> Option<(SocketAddr, String)> {
    let has_proxy = crate::k8s::has_proxy(pod);
    let annotation = |key: &str| {
        pod.meta()
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    };
    target(
        has_proxy,
        pod.pod_ip(),
        annotation("prometheus.io/port"),
        annotation("prometheus.io/path"),
    )
}

use crate::compat::PROXY_CONTAINER;

fn target(
    has_proxy: bool,
    pod_ip: Option<&str>,
    port: Option<&str>,
    path: Option<&str>,
) -> Option<(SocketAddr, String)> {
    let ip: std::net::IpAddr = pod_ip?.parse().ok()?;
    let port = port.and_then(|p| p.parse().ok()).unwrap_or(METRICS_PORT);
    let path = path.filter(|p| p.starts_with('/')).unwrap_or(METRICS_PATH);
    has_proxy.then(|| (SocketAddr::new(ip, port), path.to_string()))
}

type SeriesKey = (Workload, Workload, u16);

/// The requests made between two readings of the same proxies: `newer`
/// less `older`, series by series. A series that went down (its proxy
/// restarted) counts from zero, as Prometheus's `increase` does; a series
/// with nothing new is left out.
pub fn delta(older: &[Requests], newer: &[Requests]) -> Vec<Requests> {
    let before: BTreeMap<SeriesKey, &Requests> = older
        .iter()
        .map(|r| ((r.source.clone(), r.destination.clone(), r.code), r))
        .collect();
    newer
        .iter()
        .filter_map(|now| {
            let key = (now.source.clone(), now.destination.clone(), now.code);
            let Some(then) = before.get(&key).filter(|then| then.count <= now.count) else {
                return (now.count > 0.0).then(|| now.clone());
            };
            let count = now.count - then.count;
            let buckets = now
                .buckets
                .iter()
                .map(|(bound, n)| {
                    let earlier = then
                        .buckets
                        .iter()
                        .find(|(b, _)| b == bound)
                        .map_or(0.0, |(_, n)| *n);
                    (*bound, (n - earlier).max(0.0))
                })
                .collect();
            (count > 0.0).then(|| Requests {
                count,
                buckets,
                ..now.clone()
            })
        })
        .collect()
}

/// One reading of the proxies: the series each answered with, by pod
/// (`namespace/name`), and every pod that was asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub answered: BTreeMap<String, Vec<Requests>>,
    pub asked: BTreeSet<String>,
}

/// The requests made between two readings: for a proxy that answered both,
/// the difference ([`delta`]); a proxy not asked before (a new pod) counts
/// whole; one that was asked before but did not answer is left out, as
/// its starting point is unknown (counting it whole would add everything
/// since it started).
pub fn between(older: &Reading, newer: &Reading) -> Vec<Requests> {
    newer
        .answered
        .iter()
        .flat_map(|(pod, now)| match older.answered.get(pod) {
            Some(then) => delta(then, now),
            None if !older.asked.contains(pod) => delta(&[], now),
            None => Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use k8s_openapi::api::core::v1::Pod;

    use super::*;

    #[test]
    fn only_pods_with_a_sidecar_and_an_address_are_read() {
        let cases = [
            (
                json!({
                    "metadata": {"annotations": {"prometheus.io/port": "15010", "prometheus.io/path": "/stats/prometheus"}},
                    "spec": {"initContainers": [{"name": "osm-proxy"}], "containers": [{"name": "app"}]},
                    "status": {"podIP": "10.1.0.7"},
                }),
                Some(("10.1.0.7:15010", "/stats/prometheus")),
            ),
            (
                json!({
                    "metadata": {"annotations": {"prometheus.io/port": "9000", "prometheus.io/path": "no-slash"}},
                    "spec": {"containers": [{"name": "osm-proxy"}]},
                    "status": {"podIP": "10.1.0.9"},
                }),
                Some(("10.1.0.9:9000", "/stats/prometheus")),
            ),
            (
                json!({"spec": {"containers": [{"name": "app"}]}, "status": {"podIP": "10.1.0.8"}}),
                None,
            ),
            (
                json!({"spec": {"initContainers": [{"name": "osm-proxy"}]}}),
                None,
            ),
        ];
        for (pod, want) in cases {
            let want = want.map(|(a, p)| (a.parse().unwrap(), p.to_string()));
            assert_eq!(scrape_target(&pod), want, "{pod}");
            let mut typed = pod.clone();
            for field in ["initContainers", "containers"] {
                if typed["spec"].is_object() && typed["spec"][field].is_null() {
                    typed["spec"][field] = serde_json::json!([]);
                }
            }
            let typed: Pod = serde_json::from_value(typed).unwrap();
            assert_eq!(scrape_target_of(&typed), want, "typed {pod}");
        }
    }

    fn w(name: &str) -> Workload {
        Workload {
            namespace: "ns".into(),
            kind: "Deployment".into(),
            name: name.into(),
            pod: format!("{name}-0"),
        }
    }

    fn r(code: u16, count: f64, le_10: f64) -> Requests {
        Requests {
            source: w("a"),
            destination: w("b"),
            code,
            count,
            buckets: vec![(10.0, le_10), (f64::INFINITY, count)],
        }
    }

    #[test]
    fn a_window_holds_what_happened_between_the_readings() {
        // (what, older, newer, (code, count, count within 10 ms) of the window)
        type Case = (
            &'static str,
            Vec<Requests>,
            Vec<Requests>,
            Vec<(u16, f64, f64)>,
        );
        let cases: [Case; 4] = [
            (
                "growth",
                vec![r(200, 10.0, 8.0)],
                vec![r(200, 15.0, 12.0)],
                vec![(200, 5.0, 4.0)],
            ),
            (
                "new series",
                vec![],
                vec![r(503, 2.0, 0.0)],
                vec![(503, 2.0, 0.0)],
            ),
            (
                "restarted proxy",
                vec![r(200, 100.0, 90.0)],
                vec![r(200, 3.0, 3.0)],
                vec![(200, 3.0, 3.0)],
            ),
            (
                "nothing new",
                vec![r(200, 7.0, 7.0)],
                vec![r(200, 7.0, 7.0)],
                vec![],
            ),
        ];
        for (what, older, newer, want) in cases {
            let got: Vec<(u16, f64, f64)> = delta(&older, &newer)
                .iter()
                .map(|d| (d.code, d.count, d.buckets[0].1))
                .collect();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_proxy_is_counted_only_against_a_known_start() {
        let reading = |answered: &[(&str, f64)], asked: &[&str]| Reading {
            answered: answered
                .iter()
                .map(|(pod, count)| (pod.to_string(), vec![r(200, *count, *count)]))
                .collect(),
            asked: asked.iter().map(|p| p.to_string()).collect(),
        };
        let older = reading(&[("ns/old", 10.0)], &["ns/old", "ns/silent"]);
        let newer = reading(
            &[("ns/old", 14.0), ("ns/new", 3.0), ("ns/silent", 50.0)],
            &["ns/old", "ns/new", "ns/silent"],
        );
        let counts: Vec<f64> = between(&older, &newer).iter().map(|r| r.count).collect();
        // new (whole) and old (difference); silent had no answer to start from.
        assert_eq!(counts, [3.0, 4.0]);
    }
}
