use osm_api::{
    compile::{Compiler, Index, MeshOptions},
    identity::{PodBinding, SpiffeId},
    load::load_str,
};

use super::*;

fn hub() -> Hub {
    let mut index = Index::new(MeshOptions::default());
    for l in load_str("cluster.yaml", crate::test_fixtures::CLUSTER).objects {
        index.apply(l.object);
    }
    Hub::new(Compiler::new(index), None)
}

fn hello(ns: &str, pod: &str) -> v1::ProxyInfo {
    v1::ProxyInfo {
        pod_name: pod.into(),
        pod_namespace: ns.into(),
        ..Default::default()
    }
}

/// Regression (issue 14, item 10): the trust domain of the stream's
/// certificate was not checked.
#[test]
fn streams_need_a_certificate_of_this_mesh_for_the_named_pod() {
    let hub = hub();
    let peer = |td: &str, sa: &str| PeerIdentity {
        id: Some(SpiffeId::new(td, "shop", sa)),
        pod: Some(PodBinding::new("shop", "store-0")),
        ..PeerIdentity::default()
    };
    let ok = authorize(
        &hub,
        Some(&peer("cluster.local", "store")),
        &hello("shop", "store-0"),
    );
    assert_eq!(ok.unwrap().id.pod, "store-0");
    let foreign = authorize(
        &hub,
        Some(&peer("other.mesh", "store")),
        &hello("shop", "store-0"),
    )
    .unwrap_err();
    assert_eq!(foreign.code(), tonic::Code::PermissionDenied);
    assert!(
        foreign.message().contains("trust domain"),
        "{}",
        foreign.message()
    );
    let other_sa = authorize(
        &hub,
        Some(&peer("cluster.local", "buyer")),
        &hello("shop", "store-0"),
    )
    .unwrap_err();
    assert_eq!(other_sa.code(), tonic::Code::PermissionDenied);
    let anonymous = authorize(&hub, None, &hello("shop", "store-0")).unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
}

/// Regression (issue 14, item 10): a pod of the same ServiceAccount
/// could name a sibling pod and take its stream.
#[test]
fn a_certificate_bound_to_a_pod_streams_only_that_pod() {
    let hub = hub();
    let sibling = load_str(
        "sibling.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: store-1, namespace: shop, labels: {app: store}}\n\
         spec: {serviceAccountName: store, containers: [{name: app, image: x}], initContainers: [{name: osm-proxy, image: p, restartPolicy: Always}]}\n",
    );
    hub.apply(sibling.objects.into_iter().next().unwrap().object);
    let store = |pod: Option<&str>| PeerIdentity {
        id: Some(SpiffeId::new("cluster.local", "shop", "store")),
        pod: pod.map(|p| PodBinding::new("shop", p)),
        ..PeerIdentity::default()
    };
    let own = authorize(
        &hub,
        Some(&store(Some("store-1"))),
        &hello("shop", "store-1"),
    );
    assert_eq!(
        own.unwrap(),
        Authorized {
            id: ProxyId {
                namespace: "shop".into(),
                pod: "store-1".into()
            },
            bound: true
        }
    );
    let taken = authorize(
        &hub,
        Some(&store(Some("store-1"))),
        &hello("shop", "store-0"),
    )
    .unwrap_err();
    assert_eq!(taken.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        taken.message(),
        "the certificate was issued to pod shop/store-1, not shop/store-0: each pod streams \
         its own config with its own certificate"
    );
    // A certificate from before pod bindings: allowed, as unbound
    // (the hub keeps it from replacing a bound stream).
    let legacy = authorize(&hub, Some(&store(None)), &hello("shop", "store-0")).unwrap();
    assert!(!legacy.bound);
}

/// Regression (issue 20): a proxy reconnecting to a restarted controller
/// was sent a config without the Services not yet read back and refused
/// their requests (403 "not a mesh service"). Streams wait for the first
/// sync, and are refused as unavailable if it does not come.
#[tokio::test]
async fn streams_wait_for_the_first_sync() {
    let synced = Arc::new(AtomicBool::new(false));
    let waiting = tokio::spawn({
        let synced = synced.clone();
        async move { synced_within(&synced, Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "held while not synced");
    synced.store(true, Ordering::Release);
    assert!(waiting.await.unwrap(), "released by the sync");

    let never = AtomicBool::new(false);
    let began = std::time::Instant::now();
    assert!(!synced_within(&never, Duration::from_millis(100)).await);
    assert!(began.elapsed() >= Duration::from_millis(100));
    assert!(synced_within(&AtomicBool::new(true), Duration::ZERO).await);
}
