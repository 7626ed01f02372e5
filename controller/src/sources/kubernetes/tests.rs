use std::time::Duration;

use osm_api::{
    compile::{Compiler, Index, MeshOptions, ProxyId},
    protocol::ResourceId,
};
use serde_json::{Value, json};

use super::*;
use crate::{kubernetes::fake::FakeApi, test_fixtures::CLUSTER};

/// The shared fixture's objects as the API server would hold them.
fn cluster_objects() -> Vec<Value> {
    CLUSTER
        .split("\n---\n")
        .map(|doc| serde_yaml_ng::from_str::<Value>(doc).unwrap())
        .collect()
}

fn target(sources: &[&str]) -> Value {
    json!({
        "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
        "metadata": {"name": "store", "namespace": "shop"},
        "spec": {
            "destination": {"kind": "ServiceAccount", "name": "store", "namespace": "shop"},
            "rules": [{"kind": "TCPRoute", "name": "all"}],
            "sources": sources.iter().map(|s| json!({"kind": "ServiceAccount", "name": s, "namespace": "shop"})).collect::<Vec<_>>(),
        },
        "status": {"anything": "servers write here"},
    })
}

fn route() -> Value {
    json!({
        "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
        "metadata": {"name": "all", "namespace": "shop"},
        "spec": {"matches": {"ports": []}},
    })
}

fn store_route() -> ResourceId {
    ResourceId::Outbound("shop/store:80".into())
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Running {
    fake: FakeApi,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    synced: Arc<AtomicBool>,
    stop: CancellationToken,
}

fn start(fake: FakeApi) -> Running {
    let hub = Arc::new(Hub::new(
        Compiler::new(Index::new(MeshOptions::default())),
        None,
    ));
    let metrics = Arc::new(Metrics::new());
    let synced = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    tokio::spawn(run(
        fake.client(),
        hub.clone(),
        metrics.clone(),
        synced.clone(),
        stop.clone(),
    ));
    Running {
        fake,
        hub,
        metrics,
        synced,
        stop,
    }
}

fn buyer() -> ProxyId {
    ProxyId {
        namespace: "shop".into(),
        pod: "buyer-0".into(),
    }
}

#[tokio::test]
async fn lists_then_follows_watch_events_and_relists_after_expiry() {
    let fake = FakeApi::new();
    for o in cluster_objects() {
        fake.put(o);
    }
    fake.put(route());
    let r = start(fake);
    until("first sync", || r.synced.load(Ordering::Acquire)).await;
    let sub = r
        .hub
        .subscribe(buyer())
        .expect("the buyer's pod was listed");
    let views = sub.views;
    assert!(!views.borrow().resources.contains_key(&store_route()));

    // A watch event: the TrafficTarget appears and the buyer may reach the
    // store. (Its `status` is ignored, not refused.)
    r.fake.put(target(&["buyer"]));
    until("policy applied", || {
        views.borrow().resources.contains_key(&store_route())
    })
    .await;

    // The watch expires and the policy is deleted meanwhile, with no
    // DELETED event: the relist notices.
    r.fake.expire_watches();
    r.fake.delete(
        "access.smi-spec.io",
        "traffictargets",
        "shop",
        "store",
        true,
    );
    until("relist deleted the vanished policy", || {
        !views.borrow().resources.contains_key(&store_route())
    })
    .await;

    // A plain DELETED event on a watch started after the relist.
    r.fake.put(target(&["buyer"]));
    until("policy back", || {
        views.borrow().resources.contains_key(&store_route())
    })
    .await;
    r.fake.delete(
        "access.smi-spec.io",
        "traffictargets",
        "shop",
        "store",
        false,
    );
    until("policy deleted", || {
        !views.borrow().resources.contains_key(&store_route())
    })
    .await;

    let requests = r.fake.requests();
    let lists = |path: &str| {
        requests
            .iter()
            .filter(|q| q.starts_with(&format!("GET {path}?")) && !q.contains("watch=true"))
            .count()
    };
    assert!(
        lists("/apis/access.smi-spec.io/v1alpha3/traffictargets") >= 2,
        "listed, then relisted: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|q| q.starts_with("GET /api/v1/pods?") && q.contains("watch=true"))
    );
    for kind in watched_kinds() {
        assert!(
            requests
                .iter()
                .any(|q| q.contains(&format!("/{}?", kind.resource.plural))),
            "{} is watched",
            kind.resource.kind
        );
    }
    r.stop.cancel();
}

#[tokio::test]
async fn errors_are_retried_and_bad_objects_skipped() {
    let fake = FakeApi::new();
    for o in cluster_objects() {
        fake.put(o);
    }
    fake.put(route());
    // Pods cannot be listed at first: no readiness until they are.
    fake.fail_next_list("", "pods");
    // A TrafficTarget the validation rejects, and one that does not parse.
    let mut bad = target(&["buyer"]);
    bad["metadata"]["name"] = json!("bad-kind");
    bad["spec"]["destination"]["kind"] = json!("Deployment");
    fake.put(bad);
    let mut garbled = target(&["buyer"]);
    garbled["metadata"]["name"] = json!("garbled");
    garbled["spec"]["rules"] = json!("not a list");
    fake.put(garbled);
    let r = start(fake);
    until("synced after the retry", || {
        r.synced.load(Ordering::Acquire)
    })
    .await;
    let pod_lists = r
        .fake
        .requests()
        .iter()
        .filter(|q| q.starts_with("GET /api/v1/pods?") && !q.contains("watch=true"))
        .count();
    assert!(pod_lists >= 2, "the failed list was retried");
    let views = r.hub.subscribe(buyer()).unwrap().views;
    assert!(
        !views.borrow().resources.contains_key(&store_route()),
        "neither bad TrafficTarget took effect"
    );
    let rendered = r.metrics.render();
    assert!(
        rendered.contains("osm_controller_errors_total{kind=\"source\"} 3"),
        "one list failure and two bad objects, counted: {rendered}"
    );
    // The good objects around them are in force.
    r.fake.put(target(&["buyer"]));
    until("good policy applied", || {
        views.borrow().resources.contains_key(&store_route())
    })
    .await;
    r.stop.cancel();
}

#[test]
fn a_missing_crd_is_told_apart_from_a_failing_watch() {
    use kube::core::Status;
    let missing = || {
        kube::Error::Api(
            Status::failure(
                "the server could not find the requested resource",
                "NotFound",
            )
            .with_code(404)
            .boxed(),
        )
    };
    let forbidden = || {
        kube::Error::Api(
            Status::failure("forbidden", "Forbidden")
                .with_code(403)
                .boxed(),
        )
    };
    assert!(is_not_installed(&watcher::Error::InitialListFailed(
        missing()
    )));
    assert!(is_not_installed(&watcher::Error::WatchStartFailed(
        missing()
    )));
    assert!(!is_not_installed(&watcher::Error::InitialListFailed(
        forbidden()
    )));
    assert!(!is_not_installed(&watcher::Error::NoResourceVersion));
}
