#![allow(clippy::unwrap_used)]

//! `osm local up --with prometheus`: a real Prometheus (Debian's) scrapes
//! every sidecar and the controller with the chart's job definitions; after
//! the bookstore demo, PromQL returns its request rates with the right
//! labels, and every panel of every dashboard the chart ships returns data
//! with the dashboard's variables set to the demo's names. Runs as root
//! with `prometheus` installed (CI installs it).

use std::{net::SocketAddr, path::Path, time::Duration};

use osm_tests::local::{LocalMesh, wait_for};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(120);

const PROMETHEUS: &str = "10.227.0.1:7070";

/// Panel queries (dashboard, panel, metric the query reads) that have no
/// data in local mode or in the demo, and why. Their metrics must still be
/// ones the mesh exports (checked against the sources).
const NO_DATA_EXPECTED: &[(&str, &str, &str, &str)] = &[
    (
        "OSM: control plane",
        "Errors per second by kind",
        "osm_controller_errors_total",
        "the demo makes no controller errors",
    ),
    (
        "OSM: control plane",
        "Controller resident memory",
        "container_memory_working_set_bytes",
        "cAdvisor's series: a cluster's kubelet, not local mode",
    ),
    (
        "OSM: one proxy",
        "Resident memory",
        "container_memory_working_set_bytes",
        "cAdvisor's series: a cluster's kubelet, not local mode",
    ),
    (
        "OSM: one proxy",
        "Outbound refusals",
        "osm_outbound_refused_total",
        "no proxy of the demo refuses a request",
    ),
    (
        "OSM: mesh overview",
        "Denied requests and connections",
        "osm_outbound_refused_total",
        "no outbound refusals in the demo",
    ),
];

/// The dashboards' variables, set to the demo's names: the service to
/// service views on bookbuyer -> bookstore-v1, the one-proxy view on each
/// of bookbuyer's, bookstore-v1's and bookwarehouse's proxies (a panel
/// must have data for one of them).
fn variable_sets(mesh: &LocalMesh) -> Vec<Vec<(&'static str, String)>> {
    [
        ("bookbuyer", "bookbuyer"),
        ("bookstore", "bookstore-v1"),
        ("bookwarehouse", "bookwarehouse"),
    ]
    .into_iter()
    .map(|(namespace, deployment)| {
        vec![
            ("$source_namespace", "bookbuyer".to_string()),
            ("$destination_namespace", "bookstore".into()),
            // After $source_namespace, which it is a prefix of.
            ("$source_name", "bookbuyer".into()),
            (
                "$source_pod",
                mesh.pods_of("bookbuyer", "bookbuyer").remove(0),
            ),
            ("$destination_name", "bookstore-v1".into()),
            ("$namespace", namespace.into()),
            ("$pod", mesh.pods_of(namespace, deployment).remove(0)),
        ]
    })
    .collect()
}

fn substitute(expr: &str, variables: &[(&str, String)]) -> String {
    let mut expr = expr.to_string();
    for (var, value) in variables {
        expr = expr.replace(var, value);
    }
    expr
}

async fn query(promql: &str) -> Value {
    let addr: SocketAddr = PROMETHEUS.parse().unwrap();
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", promql)
        .finish();
    let answer =
        osm_tests::client::http1_get(addr, PROMETHEUS, &format!("/api/v1/query?{encoded}"))
            .await
            .unwrap_or_else(|e| panic!("prometheus at {PROMETHEUS}: {e}"));
    assert_eq!(answer.status, 200, "{promql}: {}", answer.body);
    let v: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(v["status"], "success", "{promql}: {v}");
    v["data"]["result"].clone()
}

async fn wait_for_series(what: &str, promql: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let result = query(promql).await;
        if let Some(series) = result.as_array().filter(|r| !r.is_empty()) {
            return series.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no data within 90s for {what}: {promql}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Whether one of the queries returns data within 30 s (rates need two
/// scrapes of a series that appeared late).
async fn has_data(queries: &[String]) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        for promql in queries {
            if query(promql)
                .await
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                return true;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The metric names of a PromQL expression (`osm_*` and cAdvisor's).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..].iter().collect();
        if (rest.starts_with("osm_") || rest.starts_with("container_"))
            && (i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_'))
        {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            i += name.len();
            names.push(name);
        } else {
            i += 1;
        }
    }
    names
}

/// Whether the mesh's sources name the metric (histogram series by their
/// base name).
fn exported_by_the_mesh(name: &str, sources: &str) -> bool {
    let base = ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    sources.contains(&format!("\"{base}\""))
}

fn mesh_sources() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        "proxy/src/telemetry/metrics.rs",
        "proxy/src/telemetry/endpoint_series.rs",
        "controller/src/metrics.rs",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(root.join(p)).unwrap())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_demo_and_every_dashboard_panel_has_data() {
    let mesh = LocalMesh::up_with(
        "osmp",
        "10.227.0.0/16",
        "10.228.0.0/16",
        &["--with", "prometheus"],
    );
    let status = mesh.ok(&["local", "status"]);
    assert!(
        status.contains(&format!("prometheus      ready      http://{PROMETHEUS}")),
        "{status}"
    );
    // The config local mode wrote is one promtool accepts.
    let config = mesh.state_dir().join("prometheus/prometheus.yml");
    let checked = std::process::Command::new("promtool")
        .args(["check", "config"])
        .arg(&config)
        .output()
        .expect("promtool runs");
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    mesh.ok(&["local", "demo", "--for", "0s"]);
    // bookbuyer -> bookstore request rates by response code, with the
    // sources and destinations the proxies know.
    let series = wait_for_series(
        "bookbuyer's requests to bookstore",
        "sum by (source_namespace, source_name, destination_namespace, destination_name, response_code) \
         (rate(osm_request_total{source_name=\"bookbuyer\", destination_namespace=\"bookstore\"}[1m])) > 0",
    )
    .await;
    let ok = series
        .iter()
        .find(|s| s["metric"]["response_code"] == "200")
        .unwrap_or_else(|| panic!("no 200s: {series:?}"));
    assert_eq!(ok["metric"]["source_namespace"], "bookbuyer");
    assert!(
        ok["metric"]["destination_name"]
            .as_str()
            .unwrap()
            .starts_with("bookstore-v"),
        "{ok}"
    );
    // bookthief is refused by bookstore's proxies, which count it.
    wait_for_series(
        "bookthief's refused requests",
        "sum(rate(osm_inbound_denied_total{source_namespace=\"bookstore\", port=\"14001\"}[1m])) > 0",
    )
    .await;

    let sets = variable_sets(&mesh);
    let sources = mesh_sources();
    let dashboards = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/chart/osm/dashboards");
    let mut empty = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dashboards).unwrap() {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let title = dashboard["title"].as_str().unwrap().to_string();
        for panel in dashboard["panels"].as_array().unwrap() {
            let name = panel["title"].as_str().unwrap_or("").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap();
                let queries: Vec<String> = sets.iter().map(|v| substitute(expr, v)).collect();
                assert!(
                    !queries[0].contains('$'),
                    "{title} / {name}: a variable is not set in {expr}"
                );
                for metric in metric_names(expr) {
                    assert!(
                        metric.starts_with("container_") || exported_by_the_mesh(&metric, &sources),
                        "{title} / {name}: {metric} is not a metric the mesh exports"
                    );
                }
                checked += 1;
                let expected_empty = NO_DATA_EXPECTED
                    .iter()
                    .any(|(d, p, m, _)| *d == title && *p == name && expr.contains(m));
                if !expected_empty && !has_data(&queries).await {
                    empty.push(format!("{title} / {name}: {}", queries[0]));
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} panel queries found");
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );

    // SMI TrafficMetrics from the sidecars: the bookbuyer -> bookstore-v1
    // edge's successes are bookbuyer's purchases. The proxy counts a
    // request before the app does, and bookbuyer has one in flight at most.
    let bought = || {
        let c = mesh
            .counters("bookbuyer", "bookbuyer", 8080)
            .expect("bookbuyer's counters");
        c["ok"].as_u64().unwrap_or(0)
    };
    let before = bought();
    let out = mesh.ok(&[
        "local",
        "get",
        "trafficmetrics",
        "-n",
        "bookstore",
        "deployment/bookstore-v1",
        "-o",
        "json",
    ]);
    let after = bought();
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["kind"], "TrafficMetricsList");
    let edge = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["edge"]["direction"] == "from" && i["edge"]["resource"]["name"] == "bookbuyer")
        .unwrap_or_else(|| panic!("no edge from bookbuyer: {out}"))
        .clone();
    let metric = |name: &str| {
        edge["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["value"].as_str())
            .unwrap_or_else(|| panic!("no {name}: {edge}"))
            .to_string()
    };
    let successes: u64 = metric("success_count").parse().unwrap();
    assert!(
        before <= successes && successes <= after + 1,
        "{before} <= {successes} <= {after} + 1: {edge}"
    );
    // A request or two may fail while the demo starts (503 before the
    // first endpoint is ready); the rate is what the counts say.
    let failures: u64 = metric("failure_count").parse().unwrap();
    let rate = successes as f64 / (successes + failures) as f64;
    assert_eq!(
        metric("success_rate"),
        osm_api::traffic_metrics::quantity((rate * 1000.0).round() / 1000.0)
    );
    assert!(!metric("p99_response_latency").is_empty());
    // bookthief may not buy: its proxy has no route to bookstore and passes
    // its requests through, bookstore's proxies refuse them as plaintext
    // and count them by its address; its edges to bookstore are failures.
    let thief = |namespace: &str| -> (u64, u64) {
        let out = mesh.ok(&[
            "local",
            "get",
            "trafficmetrics",
            "-n",
            "bookthief",
            "deployment/bookthief",
            "-o",
            "json",
        ]);
        let list: Value = serde_json::from_str(&out).unwrap();
        let mut totals = (0, 0);
        for item in list["items"].as_array().unwrap() {
            if item["edge"]["direction"] != "to"
                || item["edge"]["resource"]["namespace"] != namespace
            {
                continue;
            }
            for m in item["metrics"].as_array().unwrap() {
                let value = m["value"].as_str().and_then(|v| v.parse::<u64>().ok());
                match (m["name"].as_str(), value) {
                    (Some("success_count"), Some(v)) => totals.0 += v,
                    (Some("failure_count"), Some(v)) => totals.1 += v,
                    _ => {}
                }
            }
        }
        totals
    };
    // That needs bookstore's proxies to see bookthief's address through the
    // Service, as on a cluster: local mode keeps it when the host passes
    // bridged traffic through iptables, and masquerades it to the gateway
    // (no pod's address: no edge) when not.
    let sources_kept = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .is_ok_and(|v| v.trim() == "1");
    if sources_kept {
        let (stolen, refused) = osm_tests::local::wait_for(
            "bookthief's refused requests in its edges",
            Duration::from_secs(60),
            || {
                let totals = thief("bookstore");
                (totals.1 > 0).then_some(totals)
            },
        );
        assert_eq!(
            stolen, 0,
            "bookthief's requests all fail ({refused} refused)"
        );
    } else {
        assert_eq!(thief("bookstore"), (0, 0), "no address to attribute");
    }
    // The mesh's CA as the controller reports it (`osm ca status`): one
    // root, issuing, with a live certificate for each meshed pod.
    let meshed: usize = ["bookbuyer", "bookstore", "bookthief", "bookwarehouse"]
        .iter()
        .flat_map(|ns| mesh.pods(ns))
        .filter(|pod| {
            ["initContainers", "containers"].iter().any(|field| {
                pod["spec"][field]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["name"] == "osm-proxy"))
            })
        })
        .count();
    let report: Value =
        serde_json::from_str(&mesh.ok(&["ca", "status", "--local", "-o", "json"])).unwrap();
    let roots = report["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{report}");
    assert_eq!(roots[0]["issuing"], true, "{report}");
    assert!(meshed >= 5, "the demo's meshed pods: {meshed}");
    assert_eq!(roots[0]["liveCertificates"], meshed, "{report}");
    let ca_table = mesh.ok(&["ca", "status", "--local"]);
    assert!(
        ca_table.starts_with("PHASE: steady\nISSUER: tresor\nROOT")
            && ca_table.contains("osm-ca.openservicemesh.io"),
        "{ca_table}"
    );
    // A root rotation with the demo running: every phase passes, every
    // meshed pod ends on the new root, bookbuyer never fails to buy.
    let buyer = |mesh: &LocalMesh| {
        wait_for("bookbuyer's counters", PATIENCE, || {
            mesh.counters("bookbuyer", "bookbuyer", 8080)
        })
    };
    let count = |v: &Value, pointer: &str| v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
    let before = buyer(&mesh);
    let rotated = mesh.ok(&["ca", "rotate", "--local", "--wait", "--timeout", "3m"]);
    eprintln!("osm ca rotate --local --wait:\n{rotated}");
    let lines: Vec<&str> = rotated.lines().collect();
    assert!(
        lines[0].starts_with("root rotation started: the new root "),
        "{rotated}"
    );
    assert!(
        lines[1].ends_with("PHASE: distributing")
            || lines[1].contains("PHASE: distributing (waiting:")
            || lines[1].contains("PHASE: retiring"),
        "{rotated}"
    );
    assert!(
        lines.last().unwrap().ends_with("PHASE: steady"),
        "{rotated}"
    );
    let new_root = lines[0]
        .trim_start_matches("root rotation started: the new root ")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let report: Value =
        serde_json::from_str(&mesh.ok(&["ca", "status", "--local", "-o", "json"])).unwrap();
    let roots = report["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "the old root is gone: {report}");
    assert!(
        roots[0]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with(&new_root),
        "{report}"
    );
    assert_eq!(roots[0]["liveCertificates"], meshed, "{report}");
    assert_eq!(report["phase"], "steady");
    let rotated_buyer = buyer(&mesh);
    assert_eq!(
        count(&rotated_buyer, "/failed"),
        count(&before, "/failed"),
        "bookbuyer failed during the rotation: {rotated_buyer}"
    );
    assert!(count(&rotated_buyer, "/ok") > count(&before, "/ok"));
    // A pod made after the rotation is injected with the new bundle and
    // joins the mesh.
    let old_buyer = mesh.pods_of("bookbuyer", "bookbuyer")[0].clone();
    mesh.delete(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {old_buyer}, namespace: bookbuyer}}\n"
    ));
    let after = wait_for("a new bookbuyer pod buys", PATIENCE, || {
        let now = mesh.counters("bookbuyer", "bookbuyer", 8080)?;
        let fresh = mesh.pods_of("bookbuyer", "bookbuyer") != [old_buyer.clone()];
        (fresh && count(&now, "/ok") >= 5).then_some(now)
    });
    assert_eq!(count(&after, "/failed"), 0, "{after}");
    let table = mesh.ok(&["local", "get", "trafficmetrics", "-n", "bookstore"]);
    assert!(
        table.starts_with("RESOURCE") && table.contains("deployment/bookstore-v1"),
        "{table}"
    );
    mesh.down();
}
