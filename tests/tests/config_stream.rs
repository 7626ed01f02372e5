//! Config.Stream serves a pod only to a proxy holding a certificate issued
//! to that pod: a sibling pod of the same ServiceAccount cannot take (and
//! so evict) another pod's config subscription.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use osm_api::v1::{self, config_client::ConfigClient};
use osm_proxy::{
    control::{certify::certify, channel::connect},
    identity::Credentials,
};
use osm_tests::control_plane::{ControlPlane, TestController};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const CLUSTER: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {openservicemesh.io/monitored-by: osm}}
---
apiVersion: v1
kind: Pod
metadata: {name: store-0, namespace: shop, labels: {app: store}}
spec: {serviceAccountName: store, initContainers: [{name: osm-proxy, image: osm-proxy, restartPolicy: Always}], containers: [{name: app, image: store}]}
status: {podIP: 127.0.0.21}
---
apiVersion: v1
kind: Pod
metadata: {name: store-1, namespace: shop, labels: {app: store}}
spec: {serviceAccountName: store, initContainers: [{name: osm-proxy, image: osm-proxy, restartPolicy: Always}], containers: [{name: app, image: store}]}
status: {podIP: 127.0.0.22}
"#;

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: store, namespace: shop}
spec: {clusterIP: 127.0.96.21, selector: {app: store}, ports: [{name: http, port: 80, targetPort: 8080}]}
"#;

/// A certificate for `pod` (its own token, as its proxy would get it).
async fn certificate(cp: &ControlPlane, controller: &TestController, pod: &str) -> Credentials {
    let settings = cp.control_for(controller.grpc(), "shop", pod, "store");
    osm_tests::eventually(&format!("a certificate for {pod}"), || async {
        certify(&settings.controller, &settings.pod, &settings.token_file)
            .await
            .ok()
    })
    .await
    .credentials
}

/// Opens Config.Stream with `credentials`, naming `pod`.
async fn open(
    cp: &ControlPlane,
    controller: &TestController,
    credentials: &Credentials,
    pod: &str,
) -> Result<
    (
        mpsc::Sender<v1::ProxyInfo>,
        tonic::Streaming<v1::ConfigUpdate>,
    ),
    tonic::Status,
> {
    let settings = cp.control_for(controller.grpc(), "shop", pod, "store");
    let channel = connect(&settings.controller, Some(credentials))
        .await
        .unwrap();
    let (replies, outgoing) = mpsc::channel(8);
    replies
        .send(v1::ProxyInfo {
            pod_name: pod.into(),
            pod_namespace: "shop".into(),
            service_account: "store".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let updates = ConfigClient::new(channel)
        .stream(ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    Ok((replies, updates))
}

/// Regression (issue 14, item 10): any pod of the ServiceAccount could
/// open store-0's stream, which replaced (ended) store-0's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sibling_pod_cannot_take_another_pods_config_stream() {
    let cp = ControlPlane::new();
    cp.write("cluster.yaml", CLUSTER);
    let controller = cp.start("127.0.0.1:0".parse().unwrap()).await;
    let own = certificate(&cp, &controller, "store-0").await;
    let sibling = certificate(&cp, &controller, "store-1").await;

    let (_acks, mut updates) = open(&cp, &controller, &own, "store-0").await.unwrap();
    let first = updates.message().await.unwrap().expect("a first batch");
    assert!(first.full);

    // store-1's certificate, naming store-0: refused, and says why.
    let refused = open(&cp, &controller, &sibling, "store-0")
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("issued to pod shop/store-1"),
        "{}",
        refused.message()
    );

    // store-0's stream is still its own: a change reaches it.
    cp.write("service.yaml", SERVICE);
    let next = tokio::time::timeout(Duration::from_secs(10), updates.message())
        .await
        .expect("a batch after the change")
        .unwrap()
        .expect("the stream is still open");
    assert!(!next.upserts.is_empty(), "{next:?}");

    // store-1 streams its own config with its own certificate.
    let (_acks, mut theirs) = open(&cp, &controller, &sibling, "store-1").await.unwrap();
    assert!(theirs.message().await.unwrap().expect("a batch").full);
    controller.stop().await;
}
