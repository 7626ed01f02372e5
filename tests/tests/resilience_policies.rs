//! Resilience policies from manifests to the proxies: a Retry policy (with
//! MeshConfig's feature flag), applied to a real controller, makes the
//! client-side proxy retry; the flag turned off stops the retries.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use osm_tests::{
    ProxyOptions, TestProxy,
    client::http1_get,
    control_plane::ControlPlane,
    eventually,
    flaky::{Fault, FlakyApp},
};

const VIP: &str = "127.0.96.41";
const STORE_IP: &str = "127.0.0.41";

fn cluster(app_port: u16) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: shop, labels: {{openservicemesh.io/monitored-by: osm}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: store-0, namespace: shop, labels: {{app: store}}}}
spec: {{serviceAccountName: store, initContainers: [{{name: osm-proxy, image: osm-proxy, restartPolicy: Always}}], containers: [{{name: app, image: store, ports: [{{containerPort: {app_port}}}]}}]}}
status: {{podIP: {STORE_IP}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: buyer-0, namespace: shop, labels: {{app: buyer}}}}
spec: {{serviceAccountName: buyer, initContainers: [{{name: osm-proxy, image: osm-proxy, restartPolicy: Always}}], containers: [{{name: app, image: buyer}}]}}
status: {{podIP: 127.0.0.42}}
---
apiVersion: v1
kind: Service
metadata: {{name: store, namespace: shop}}
spec: {{clusterIP: {VIP}, selector: {{app: store}}, ports: [{{name: http, port: 80, targetPort: {app_port}}}]}}
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: Retry
metadata: {{name: store-retries, namespace: shop}}
spec:
  source: {{kind: ServiceAccount, name: buyer, namespace: shop}}
  destinations: [{{kind: Service, name: store, namespace: shop}}]
  retryPolicy: {{retryOn: 5xx, numRetries: 3, retryBackoffBaseInterval: 1ms}}
"#
    )
}

fn mesh_config(retries: bool) -> String {
    format!(
        "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
         metadata: {{name: osm-mesh-config, namespace: osm-system}}\n\
         spec: {{traffic: {{enablePermissiveTrafficPolicyMode: true}}, featureFlags: {{enableRetryPolicy: {retries}}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_policy_applied_to_the_controller_is_enforced_by_the_client_proxy() {
    let cp = ControlPlane::new();
    let app = FlakyApp::start("store-0").await;
    cp.write("cluster.yaml", &cluster(app.addr.port()));
    cp.write("mesh.yaml", &mesh_config(true));
    let controller = cp.start("127.0.0.1:0".parse().unwrap()).await;
    let grpc = controller.grpc();
    let store_addr: SocketAddr = format!("{STORE_IP}:{}", app.addr.port()).parse().unwrap();
    let store = TestProxy::start(ProxyOptions {
        inbound_at: vec![(store_addr, app.addr)],
        outbound_targets: vec![],
        control: Some(cp.control_for(grpc, "shop", "store-0", "store")),
        ..Default::default()
    })
    .await;
    let buyer = TestProxy::start(ProxyOptions {
        outbound_targets: vec![Some(format!("{VIP}:80").parse().unwrap())],
        control: Some(cp.control_for(grpc, "shop", "buyer-0", "buyer")),
        ..Default::default()
    })
    .await;
    let get = || async {
        http1_get(buyer.outbound(), "store.shop", "/")
            .await
            .unwrap()
    };
    eventually(
        "the buyer reaches the store, with the retry policy",
        || async {
            let retrying = buyer
                .shared
                .config()
                .outbound_by_host
                .get("store.shop")
                .is_some_and(|s| s.iter().any(|n| n.service.retry.is_some()));
            (store.shared.is_ready() && retrying && get().await.status == 200).then_some(())
        },
    )
    .await;

    let before = app.requests();
    app.set(Fault::FirstN { n: 2, status: 503 });
    let answer = get().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(app.requests() - before, 3, "two 503s retried");

    // The feature flag off (OSM's default): the policy is dropped and a
    // failure reaches the client as it is.
    cp.write("mesh.yaml", &mesh_config(false));
    eventually("the retry policy is withdrawn", || async {
        let retrying = buyer
            .shared
            .config()
            .outbound_by_host
            .get("store.shop")
            .is_some_and(|s| s.iter().any(|n| n.service.retry.is_some()));
        (!retrying).then_some(())
    })
    .await;
    app.set(Fault::FirstN { n: 1, status: 503 });
    assert_eq!(get().await.status, 503);
    controller.stop().await;
}
