//! `osm local demo`: the bookstore in SMI mode on this machine, with live
//! counters read from each app.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use super::{
    apiserver::ApiServer,
    lifecycle,
    manifests::{Document, check, split_documents},
    netns_http,
    runtime::status::ready_and_status,
    state::{Instance, StateDir},
};

/// The demo's manifests, as shipped in `demo/manifests/`.
pub const MANIFESTS: &[(&str, &str)] = &[
    (
        "demo/manifests/apps/namespaces.yaml",
        include_str!("../../demo/manifests/apps/namespaces.yaml"),
    ),
    (
        "demo/manifests/apps/bookbuyer.yaml",
        include_str!("../../demo/manifests/apps/bookbuyer.yaml"),
    ),
    (
        "demo/manifests/apps/bookthief.yaml",
        include_str!("../../demo/manifests/apps/bookthief.yaml"),
    ),
    (
        "demo/manifests/apps/bookstore.yaml",
        include_str!("../../demo/manifests/apps/bookstore.yaml"),
    ),
    (
        "demo/manifests/apps/bookstore-v2.yaml",
        include_str!("../../demo/manifests/apps/bookstore-v2.yaml"),
    ),
    (
        "demo/manifests/apps/bookwarehouse.yaml",
        include_str!("../../demo/manifests/apps/bookwarehouse.yaml"),
    ),
    (
        "demo/manifests/access/traffic-access-v1.yaml",
        include_str!("../../demo/manifests/access/traffic-access-v1.yaml"),
    ),
    (
        "demo/manifests/split/traffic-split-v1.yaml",
        include_str!("../../demo/manifests/split/traffic-split-v1.yaml"),
    ),
];

/// SMI mode, as OSM's demo installs the mesh.
const SMI_MODE: &str = r#"
apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata: {name: osm-mesh-config, namespace: osm-system}
spec:
  sidecar: {logLevel: error}
  traffic: {enablePermissiveTrafficPolicyMode: false, enableEgress: true}
  certificate: {serviceCertValidityDuration: 24h}
"#;

/// Where each app serves its counters: (namespace, deployment, port).
pub const APPS: &[(&str, &str, u16)] = &[
    ("bookbuyer", "bookbuyer", 8080),
    ("bookthief", "bookthief", 8080),
    ("bookstore", "bookstore-v1", 14001),
    ("bookstore", "bookstore-v2", 14001),
    ("bookwarehouse", "bookwarehouse", 14001),
];

fn documents() -> anyhow::Result<Vec<Document>> {
    let mut docs = Vec::new();
    for (name, text) in MANIFESTS.iter().copied().chain([("smi-mode", SMI_MODE)]) {
        docs.extend(split_documents(name, text).map_err(anyhow::Error::msg)?);
    }
    Ok(docs)
}

/// The counters of one app's first running pod.
pub fn counters(
    api: &ApiServer,
    instance: &Instance,
    namespace: &str,
    deployment: &str,
    port: u16,
) -> anyhow::Result<Value> {
    let pod = super::pods::find_pod(&api.store, namespace, &format!("deploy/{deployment}"))?;
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .context("a pod without a name")?;
    let (status, body) = netns_http::get(
        &instance.netns(namespace, name),
        port,
        "/counters",
        Duration::from_secs(2),
    )?;
    if status != 200 {
        anyhow::bail!("{deployment}: HTTP {status}");
    }
    serde_json::from_str(&body).context("counters are not JSON")
}

fn n(v: &Value, field: &str) -> u64 {
    v.get(field).and_then(Value::as_u64).unwrap_or(0)
}

fn map(v: &Value, field: &str) -> String {
    let entries: Vec<String> = v
        .get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, c)| format!("{k}: {}", c.as_u64().unwrap_or(0)))
        .collect();
    if entries.is_empty() {
        String::new()
    } else {
        format!(" ({})", entries.join(", "))
    }
}

/// One screen of counters.
pub fn render(api: &ApiServer, instance: &Instance) -> String {
    let mut out = String::new();
    for (ns, deployment, port) in APPS {
        let line = match counters(api, instance, ns, deployment, *port) {
            Ok(c) => match *deployment {
                "bookbuyer" => format!(
                    "bought {:>6}{}   failed {}{}",
                    n(&c, "ok"),
                    map(&c, "byIdentity"),
                    n(&c, "failed"),
                    map(&c, "byStatus")
                ),
                "bookthief" => format!(
                    "stolen {:>6}{}   denied {}{}",
                    n(&c, "ok"),
                    map(&c, "byIdentity"),
                    n(&c, "failed"),
                    map(&c, "byStatus")
                ),
                "bookwarehouse" => format!(
                    "restocked {:>3}   database errors {}",
                    n(&c, "restocked"),
                    n(&c, "dbErrors")
                ),
                _ => format!(
                    "sold {:>8}   restocked {}   restock failures {}",
                    n(&c, "sold"),
                    n(&c, "restocked"),
                    n(&c, "restockFailed")
                ),
            },
            Err(e) => format!("(not reachable yet: {e:#})"),
        };
        out.push_str(&format!("{deployment:<14} {line}\n"));
    }
    out
}

/// `osm local demo`.
pub async fn run(
    state: &StateDir,
    watch: Option<Duration>,
    only_watch: bool,
) -> anyhow::Result<()> {
    if only_watch {
        let api = super::api_server(state)?;
        let instance = api.instance.clone();
        return show(&api, &instance, watch).await;
    }
    lifecycle::up(state, None, Vec::new()).await?;
    if !lifecycle::on_path("redis-server") {
        anyhow::bail!(
            "the demo's database is Redis: install it with `apt-get install redis-server`"
        );
    }
    let api = super::api_server(state)?;
    let outcome = check(documents()?, None);
    if !outcome.errors.is_empty() {
        anyhow::bail!(
            "the demo's manifests are invalid:\n  {}",
            outcome.errors.join("\n  ")
        );
    }
    let mut failed = false;
    for line in api.apply(&outcome.objects).await {
        match line {
            Ok(l) => println!("{l}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        anyhow::bail!("the demo could not be applied");
    }
    println!("waiting for the demo's pods to be ready...");
    let began = Instant::now();
    loop {
        let pods: Vec<Value> = api
            .store
            .list()?
            .into_iter()
            .filter(|s| s.key.kind == "Pod" && APPS.iter().any(|(ns, _, _)| *ns == s.key.namespace))
            .map(|s| s.value)
            .collect();
        let ready = pods
            .iter()
            .filter(|p| {
                let (r, _, _) = ready_and_status(p);
                r.split_once('/').is_some_and(|(a, b)| a == b)
            })
            .count();
        if pods.len() >= 6 && ready == pods.len() {
            break;
        }
        if began.elapsed() > Duration::from_secs(180) {
            anyhow::bail!(
                "the demo's pods are not ready after 3 minutes: see `osm local get pods -A`"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let instance = api.instance.clone();
    println!(
        "\nThe bookstore runs in SMI mode: bookbuyer may buy, bookthief may not; all traffic to bookstore goes to v1.\n\
         Try, from the repository:\n  \
         osm local apply -f demo/manifests/split/traffic-split-50-50.yaml    # half to bookstore-v2\n  \
         osm local apply -f demo/manifests/access/traffic-access-v1-allow-bookthief.yaml    # let the thief in\n  \
         osm local get pods -A\n  \
         osm local down    # remove everything\n"
    );
    show(&api, &instance, watch).await
}

async fn show(api: &ApiServer, instance: &Instance, watch: Option<Duration>) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let screen = render(api, instance);
        println!("--- {:>4}s ---\n{screen}", began.elapsed().as_secs());
        if watch.is_some_and(|d| began.elapsed() >= d) {
            return Ok(());
        }
        tokio::select! {
            () = osm_serve::shutdown_signal() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
