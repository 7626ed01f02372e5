use osm_controller::kubernetes::fake::FakeApi;
use serde_json::{Value, json};

use super::*;

fn demo(path: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../demo/manifests")
        .join(path);
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn pod(ns: &str, name: &str, sa: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "x"}]},
        "status": {"podIP": "10.0.0.1"}})
}

/// The bookstore demo in a fake cluster, in SMI mode.
fn cluster() -> FakeApi {
    let fake = FakeApi::new();
    for file in [
        "apps/namespaces.yaml",
        "apps/bookstore.yaml",
        "access/traffic-access-v1.yaml",
    ] {
        for object in demo(file) {
            if object["kind"] != "Deployment" {
                fake.put(object);
            }
        }
    }
    fake.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "outside"}}));
    fake.put(pod(
        "bookbuyer",
        "buyer-1",
        "bookbuyer",
        json!({"app": "bookbuyer"}),
    ));
    fake.put(pod(
        "bookthief",
        "thief-1",
        "bookthief",
        json!({"app": "bookthief"}),
    ));
    fake.put(pod(
        "bookstore",
        "store-1",
        "bookstore",
        json!({"app": "bookstore", "version": "v1"}),
    ));
    fake.put(pod("outside", "web-1", "default", json!({"app": "web"})));
    fake
}

async fn run(fake: &FakeApi, src: &str, dst: &str) -> (bool, String) {
    let mut out = Vec::new();
    let allowed = check_pods(fake.client(), &mut out, src, dst, MeshOptions::default())
        .await
        .unwrap();
    (allowed, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn allowed_pairs_name_the_traffic_target_and_routes() {
    let fake = cluster();
    let (allowed, text) = run(&fake, "bookbuyer/buyer-1", "bookstore/store-1").await;
    assert!(allowed, "{text}");
    assert!(
        text.starts_with(
            "bookbuyer/buyer-1 (ServiceAccount bookbuyer/bookbuyer) may reach bookstore/store-1"
        ),
        "{text}"
    );
    assert!(
        text.contains("port 14001: TrafficTarget bookstore/bookstore allows HTTP routes bookstore/bookstore-service-routes/books-bought, bookstore/bookstore-service-routes/buy-a-book"),
        "{text}"
    );
}

#[tokio::test]
async fn denied_pairs_say_what_is_missing() {
    let fake = cluster();
    let (allowed, text) = run(&fake, "bookthief/thief-1", "bookstore/store-1").await;
    assert!(!allowed);
    assert!(
        text.contains("may not reach bookstore/store-1")
            && text.contains(
                "no TrafficTarget in namespace bookstore names ServiceAccount bookthief/bookthief"
            ),
        "{text}"
    );
    let (allowed, text) = run(&fake, "bookbuyer/buyer-1", "outside/web-1").await;
    assert!(!allowed);
    assert!(
        text.contains("is not in mesh [osm]") && text.contains("egress"),
        "{text}"
    );
    let mut out = Vec::new();
    let err = check_pods(
        fake.client(),
        &mut out,
        "bookbuyer/nobody",
        "bookstore/store-1",
        MeshOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "pod bookbuyer/nobody not found");
}

#[tokio::test]
async fn permissive_mode_allows_every_meshed_pair() {
    let fake = cluster();
    fake.put(
        json!({"apiVersion": "config.openservicemesh.io/v1alpha2", "kind": "MeshConfig",
        "metadata": {"name": "osm-mesh-config", "namespace": "osm-system"},
        "spec": {"traffic": {"enablePermissiveTrafficPolicyMode": true}}}),
    );
    let (allowed, text) = run(&fake, "bookthief/thief-1", "bookstore/store-1").await;
    assert!(allowed, "{text}");
    assert!(text.contains("permissive mode"), "{text}");
}

#[test]
fn pod_references_are_namespace_slash_name() {
    assert_eq!(
        parse_pod_ref("shop/web-1", "default").unwrap(),
        ("shop".into(), "web-1".into())
    );
    assert_eq!(
        parse_pod_ref("web-1", "default").unwrap(),
        ("default".into(), "web-1".into())
    );
    assert!(parse_pod_ref("a/b/c", "default").is_err());
    assert!(parse_pod_ref("/x", "default").is_err());
}

#[test]
fn check_pods_answers_from_the_local_store() {
    let (_dir, target) = super::super::local::fixture::local_mesh();
    let mut out = Vec::new();
    assert!(
        check_pods_local(
            &target,
            &mut out,
            "bookbuyer/buyer-1",
            "bookstore/store-1",
            MeshOptions::default()
        )
        .unwrap()
    );
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("TrafficTarget bookstore/bookstore")
    );
}
