//! The chart's CRDs on the in-memory API server, which prunes and
//! relabels between versions as the real one does: whatever version a
//! user writes, the watcher reads it whole.

use std::path::Path;

use kube::Api;
use osm_api::{kinds::WATCHED_KINDS, resources::Object};
use serde_json::{Value, json};

use super::*;
use crate::kubernetes::fake::{
    FakeApi,
    crds::{Crd, lost_on_write},
};

/// The chart's CRDs, the optional Gateway API routes included.
pub(crate) fn chart_crds() -> Vec<Value> {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/chart/osm");
    let mut files: Vec<_> = ["crds", "gateway-api"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(chart.join(dir)).expect("the chart's CRDs"))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_yaml_ng::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

#[test]
fn every_custom_kind_is_watched_at_its_storage_version_which_loses_no_served_field() {
    let crds: Vec<Crd> = chart_crds()
        .iter()
        .map(|m| Crd::from_manifest(m).unwrap())
        .collect();
    for watched in WATCHED_KINDS.iter().filter(|w| w.custom) {
        let crd = crds
            .iter()
            .find(|c| c.group == watched.group && c.plural == watched.plural)
            .unwrap_or_else(|| panic!("the chart has a CRD for {}", watched.kind));
        assert_eq!(
            watched.version, crd.storage,
            "{} is read at the version etcd holds",
            watched.kind
        );
    }
    for crd in &crds {
        for version in crd.schemas.keys() {
            assert_eq!(
                lost_on_write(crd, version),
                Vec::<String>::new(),
                "{}.{} written at {version} keeps every field in storage {}",
                crd.plural,
                crd.group,
                crd.storage
            );
        }
    }
}

/// A fake API server serving the chart's CRDs.
fn cluster() -> FakeApi {
    let fake = FakeApi::new();
    for crd in chart_crds() {
        fake.install_crd(&crd).unwrap();
    }
    fake
}

/// What the controller's watcher of `kind` makes of the object named
/// `x` in `shop`: listed at the watched version, then converted.
async fn as_watched(fake: &FakeApi, kind: &str) -> Object {
    let watched = watched_kinds()
        .into_iter()
        .find(|w| w.resource.kind == kind)
        .unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(fake.client(), "shop", &watched.resource);
    let listed = api.list(&Default::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1, "{kind}");
    convert(&watched, &listed.items[0]).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

fn meta() -> Value {
    json!({"name": "x", "namespace": "shop"})
}

#[tokio::test]
async fn objects_written_at_any_served_version_are_read_whole() {
    // v1alpha1 HTTPRouteGroup: matches at the top level.
    let fake = cluster();
    fake.put(json!({
        "apiVersion": "specs.smi-spec.io/v1alpha1", "kind": "HTTPRouteGroup", "metadata": meta(),
        "matches": [{"name": "get", "pathRegex": "/a", "methods": ["GET"]}],
    }));
    let Object::HttpRouteGroup(group) = as_watched(&fake, "HTTPRouteGroup").await else {
        panic!()
    };
    assert_eq!(group.spec.matches.len(), 1, "v1alpha1 matches survive");
    assert_eq!(group.spec.matches[0].path_regex.as_deref(), Some("/a"));

    // v1alpha2 HTTPRouteGroup with headers.
    let fake = cluster();
    fake.put(json!({
        "apiVersion": "specs.smi-spec.io/v1alpha2", "kind": "HTTPRouteGroup", "metadata": meta(),
        "matches": [{"name": "h", "headers": {"x-user": "admin"}}],
    }));
    let Object::HttpRouteGroup(group) = as_watched(&fake, "HTTPRouteGroup").await else {
        panic!()
    };
    assert_eq!(
        group.spec.matches[0].headers,
        vec![("x-user".to_string(), "admin".to_string())]
    );

    // v1alpha3 TrafficSplit with A/B matches.
    let fake = cluster();
    fake.put(json!({
        "apiVersion": "split.smi-spec.io/v1alpha3", "kind": "TrafficSplit", "metadata": meta(),
        "spec": {"service": "store", "backends": [{"service": "v1", "weight": 90}, {"service": "v2", "weight": 10}],
                 "matches": [{"kind": "HTTPRouteGroup", "name": "beta"}]},
    }));
    let Object::TrafficSplit(split) = as_watched(&fake, "TrafficSplit").await else {
        panic!()
    };
    assert_eq!(split.spec.matches.len(), 1, "A/B matches survive");
    assert_eq!(split.spec.matches[0].name, "beta");

    // v1alpha1 TrafficSplit with quantity weights.
    let fake = cluster();
    fake.put(json!({
        "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": meta(),
        "spec": {"service": "store", "backends": [{"service": "v1", "weight": "500m"}, {"service": "v2", "weight": "1500m"}]},
    }));
    let Object::TrafficSplit(split) = as_watched(&fake, "TrafficSplit").await else {
        panic!()
    };
    let weights: Vec<u64> = split.spec.backends.iter().map(|b| b.weight).collect();
    assert_eq!(weights, [500, 1500]);

    // v1alpha2 TrafficTarget naming a destination port.
    let fake = cluster();
    fake.put(json!({
        "apiVersion": "access.smi-spec.io/v1alpha2", "kind": "TrafficTarget", "metadata": meta(),
        "spec": {"destination": {"kind": "ServiceAccount", "name": "store", "namespace": "shop", "port": 8080},
                 "rules": [{"kind": "TCPRoute", "name": "all"}],
                 "sources": [{"kind": "ServiceAccount", "name": "buyer", "namespace": "shop"}]},
    }));
    let Object::TrafficTarget(target) = as_watched(&fake, "TrafficTarget").await else {
        panic!()
    };
    assert_eq!(target.spec.destination_port, Some(8080));

    // v1alpha1 TCPRoute: metadata only.
    let fake = cluster();
    fake.put(
        json!({"apiVersion": "specs.smi-spec.io/v1alpha1", "kind": "TCPRoute", "metadata": meta()}),
    );
    let Object::TcpRoute(route) = as_watched(&fake, "TCPRoute").await else {
        panic!()
    };
    assert!(route.spec.ports.is_empty(), "every port");
}

#[tokio::test]
async fn a_v1alpha1_route_group_allowed_by_a_v1alpha2_target_reaches_the_proxy() {
    let fake = cluster();
    for doc in crate::test_fixtures::CLUSTER.split("\n---\n") {
        fake.put(serde_yaml_ng::from_str(doc).unwrap());
    }
    // Written through the API (POST at the object's own version), as
    // kubectl does.
    let client = fake.client();
    for object in [
        json!({
            "apiVersion": "specs.smi-spec.io/v1alpha1", "kind": "HTTPRouteGroup",
            "metadata": {"name": "api", "namespace": "shop"},
            "matches": [{"name": "reads", "pathRegex": "/catalog/v1alpha1-only", "methods": ["GET"]}],
        }),
        json!({
            "apiVersion": "access.smi-spec.io/v1alpha2", "kind": "TrafficTarget",
            "metadata": {"name": "store", "namespace": "shop"},
            "spec": {"destination": {"kind": "ServiceAccount", "name": "store", "namespace": "shop"},
                     "rules": [{"kind": "HTTPRouteGroup", "name": "api", "matches": ["reads"]}],
                     "sources": [{"kind": "ServiceAccount", "name": "buyer", "namespace": "shop"}]},
        }),
    ] {
        let (group, version) = object["apiVersion"]
            .as_str()
            .unwrap()
            .split_once('/')
            .unwrap();
        let kind = object["kind"].as_str().unwrap();
        let plural = if kind == "HTTPRouteGroup" {
            "httproutegroups"
        } else {
            "traffictargets"
        };
        let resource = kube::api::ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural,
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "shop", &resource);
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        api.create(&Default::default(), &object).await.unwrap();
    }
    let hub = Arc::new(Hub::new(
        osm_api::compile::Compiler::new(osm_api::compile::Index::new(
            osm_api::compile::MeshOptions::default(),
        )),
        None,
    ));
    let synced = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    tokio::spawn(run(
        client,
        hub.clone(),
        Arc::new(Metrics::new()),
        synced.clone(),
        stop.clone(),
    ));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let store = loop {
        if synced.load(Ordering::Acquire)
            && let Ok(sub) = hub.subscribe(osm_api::compile::ProxyId {
                namespace: "shop".into(),
                pod: "store-0".into(),
            })
        {
            let rendered = format!("{:?}", sub.views.borrow().resources);
            if rendered.contains("v1alpha1-only") {
                break rendered;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store's inbound policy never named the v1alpha1 match"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(store.contains("GET"), "{store}");
    stop.cancel();
}
