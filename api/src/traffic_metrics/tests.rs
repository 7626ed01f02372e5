use super::*;

fn w(ns: &str, name: &str) -> Workload {
    Workload {
        namespace: ns.into(),
        kind: "Deployment".into(),
        name: name.into(),
        pod: format!("{name}-0"),
    }
}

fn requests() -> Vec<Requests> {
    let buckets = vec![(1.0, 2.0), (5.0, 8.0), (10.0, 10.0), (f64::INFINITY, 10.0)];
    vec![
        Requests {
            source: w("bookbuyer", "bookbuyer"),
            destination: w("bookstore", "bookstore-v1"),
            code: 200,
            count: 10.0,
            buckets,
        },
        Requests {
            source: w("bookthief", "bookthief"),
            destination: w("bookstore", "bookstore-v1"),
            code: 403,
            count: 4.0,
            buckets: vec![(1.0, 4.0), (f64::INFINITY, 4.0)],
        },
        Requests {
            source: w("bookstore", "bookstore-v1"),
            destination: w("bookwarehouse", "bookwarehouse"),
            code: 200,
            count: 3.0,
            buckets: vec![(f64::INFINITY, 3.0)],
        },
    ]
}

/// (edge direction, edge resource name, metric name -> value) of each item.
fn summary(list: &Value) -> Vec<(String, String, BTreeMap<String, String>)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["edge"]["direction"].as_str().unwrap().to_string(),
                i["edge"]["resource"]["name"]
                    .as_str()
                    .unwrap_or("*")
                    .to_string(),
                i["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        (
                            m["name"].as_str().unwrap().to_string(),
                            m["value"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn a_deployment_gets_what_it_received_and_its_edges_both_ways() {
    let r = requests();
    let plain = traffic_metrics(
        &r,
        Kind::Deployment,
        "bookstore",
        Some("bookstore-v1"),
        false,
        "t",
        "30s",
    );
    let items = summary(&plain);
    assert_eq!(items.len(), 1, "{plain}");
    let (direction, peer, m) = &items[0];
    assert_eq!((direction.as_str(), peer.as_str()), ("from", "*"));
    assert_eq!(m["success_count"], "10");
    assert_eq!(m["failure_count"], "4");
    assert_eq!(m["success_rate"], "714m");
    assert_eq!(plain["items"][0]["resource"]["namespace"], "bookstore");
    assert_eq!(plain["items"][0]["kind"], "TrafficMetrics");

    let edges = traffic_metrics(
        &r,
        Kind::Deployment,
        "bookstore",
        Some("bookstore-v1"),
        true,
        "t",
        "30s",
    );
    let items = summary(&edges);
    let edge = |d: &str, p: &str| {
        items
            .iter()
            .find(|(dd, pp, _)| dd == d && pp == p)
            .map(|(_, _, m)| m.clone())
            .unwrap_or_else(|| panic!("no edge {d} {p}: {edges}"))
    };
    let buyer = edge("from", "bookbuyer");
    assert_eq!(buyer["success_count"], "10");
    assert_eq!(buyer["failure_count"], "0");
    assert_eq!(buyer["success_rate"], "1");
    // Interpolated as Prometheus's histogram_quantile does.
    assert_eq!(buyer["p50_response_latency"], "3");
    assert_eq!(buyer["p90_response_latency"], "7500m");
    assert_eq!(buyer["p99_response_latency"], "9750m");
    let thief = edge("from", "bookthief");
    assert_eq!(
        (
            thief["success_count"].as_str(),
            thief["failure_count"].as_str()
        ),
        ("0", "4")
    );
    assert_eq!(thief["success_rate"], "0");
    let warehouse = edge("to", "bookwarehouse");
    assert_eq!(warehouse["success_count"], "3");
    assert_eq!(items.len(), 3, "{edges}");
}

#[test]
fn namespaces_and_pods_aggregate_their_own_way() {
    let r = requests();
    let namespaces = traffic_metrics(&r, Kind::Namespace, "", None, false, "t", "30s");
    let items = summary(&namespaces);
    let names: Vec<&str> = namespaces["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["bookstore", "bookwarehouse"],
        "who received traffic"
    );
    assert_eq!(items[0].2["success_count"], "10");
    assert!(
        namespaces["items"][0]["resource"]
            .get("namespace")
            .is_none()
    );
    let pods = traffic_metrics(&r, Kind::Pod, "bookstore", None, true, "t", "30s");
    let names: Vec<(&str, &str)> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["metadata"]["name"].as_str().unwrap(),
                i["edge"]["resource"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("bookstore-v1-0", "bookbuyer-0"),
            ("bookstore-v1-0", "bookthief-0"),
            ("bookstore-v1-0", "bookwarehouse-0")
        ]
    );
}

#[test]
fn quantities_are_written_as_the_smi_sdk_writes_them() {
    for (v, want) in [(10.0, "10"), (0.714, "714m"), (7.5, "7500m"), (0.0, "0")] {
        assert_eq!(quantity(v), want);
    }
    assert_eq!(Kind::parse("deploy"), Some(Kind::Deployment));
    assert_eq!(Kind::parse("svc"), None);
}

#[test]
fn a_proxys_exposition_gives_its_request_series() {
    let labels = "source_namespace=\"bookbuyer\",source_kind=\"Deployment\",source_name=\"bookbuyer\",source_pod=\"bookbuyer-0\",\
                  destination_namespace=\"bookstore\",destination_kind=\"Deployment\",destination_name=\"bookstore-v1\",destination_pod=\"bookstore-v1-0\",response_code=\"200\"";
    let text = format!(
        "# TYPE osm_request_total counter\nosm_request_total{{{labels}}} 7\n\
         # TYPE osm_request_duration_ms histogram\n\
         osm_request_duration_ms_bucket{{{labels},le=\"1\"}} 3\n\
         osm_request_duration_ms_bucket{{{labels},le=\"5\"}} 7\n\
         osm_request_duration_ms_bucket{{{labels},le=\"+Inf\"}} 7\n\
         osm_request_duration_ms_sum{{{labels}}} 12\nosm_request_duration_ms_count{{{labels}}} 7\n\
         # TYPE osm_tcp_connections_open gauge\nosm_tcp_connections_open 2\n\
         garbage line {{\n"
    );
    let series = from_exposition(&text);
    assert_eq!(series.len(), 1, "{series:?}");
    let r = &series[0];
    assert_eq!((r.code, r.count), (200, 7.0));
    assert_eq!(r.source, w("bookbuyer", "bookbuyer"));
    assert_eq!(r.destination, w("bookstore", "bookstore-v1"));
    assert_eq!(
        r.buckets,
        vec![(1.0, 3.0), (5.0, 7.0), (f64::INFINITY, 7.0)]
    );
    assert!(from_exposition("").is_empty());
}
