use serde_json::json;

use super::*;

fn golden(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../demo/golden")
        .join(name);
    json!({"config": serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap(), "version": 3})
}

#[test]
fn queries_go_to_the_admin_or_the_metrics_port() {
    assert_eq!(route("config_dump"), (15000, "/config_dump".into()));
    assert_eq!(route("/certs"), (15000, "/certs".into()));
    assert_eq!(route("stats"), (15010, "/stats/prometheus".into()));
}

#[test]
fn the_demo_allows_the_buyer_and_not_the_thief() {
    let buyer = golden("bookbuyer_bookbuyer-5d8f9-0.json");
    let thief = golden("bookthief_bookthief-5d8f9-0.json");
    let store = golden("bookstore_bookstore-v1-5d8f9-0.json");
    let dst = Side {
        namespace: "bookstore",
        pod: "bookstore-v1-5d8f9-0",
        service_account: "bookstore",
        dump: &store,
    };
    let ok = verify(
        &Side {
            namespace: "bookbuyer",
            pod: "bookbuyer-5d8f9-0",
            service_account: "bookbuyer",
            dump: &buyer,
        },
        &dst,
    );
    assert!(ok.iter().all(|c| c.ok), "{ok:#?}");
    assert!(
        ok.iter().any(|c| c
            .text
            .contains("routes to bookstore/bookstore-v1-5d8f9-0 through bookstore/bookstore")),
        "{ok:#?}"
    );
    assert!(ok.iter().any(|c| c.text.contains("accepts spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer: bookstore/bookstore on port 14001")), "{ok:#?}");

    let denied = verify(
        &Side {
            namespace: "bookthief",
            pod: "bookthief-5d8f9-0",
            service_account: "bookthief",
            dump: &thief,
        },
        &dst,
    );
    let failed: Vec<&str> = denied
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.text.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "{denied:#?}");
    assert!(failed[0].contains("has no route to bookstore/bookstore-v1-5d8f9-0"));
    assert!(
        failed[1].contains("accepts spiffe://cluster.local/ns/bookthief/sa/bookthief on no port")
    );
}

#[test]
fn a_proxy_without_config_fails_the_first_check() {
    let empty = json!({"config": {}, "version": 0});
    let checks = verify(
        &Side {
            namespace: "a",
            pod: "p",
            service_account: "a",
            dump: &empty,
        },
        &Side {
            namespace: "b",
            pod: "q",
            service_account: "b",
            dump: &empty,
        },
    );
    assert!(!checks[0].ok && checks[0].text.contains("version 0"));
}

#[test]
fn only_pods_with_the_sidecar_qualify() {
    let meshed: Pod = serde_json::from_value(json!({"spec": {"initContainers": [{"name": "osm-proxy"}], "containers": [{"name": "app"}]}})).unwrap();
    let plain: Pod =
        serde_json::from_value(json!({"spec": {"containers": [{"name": "app"}]}})).unwrap();
    assert!(has_sidecar(&meshed) && !has_sidecar(&plain));
}

#[tokio::test]
async fn get_explains_a_pod_without_a_sidecar() {
    let fake = osm_controller::kubernetes::fake::FakeApi::new();
    fake.put(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "x"}]}}),
    );
    let err = get(&fake.client(), "shop", "web", "config_dump")
        .await
        .unwrap_err();
    assert!(err.contains("has no osm-proxy sidecar"), "{err}");
    let err = get(&fake.client(), "shop", "gone", "config_dump")
        .await
        .unwrap_err();
    assert_eq!(err, "pod shop/gone not found");
}
