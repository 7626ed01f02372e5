use super::*;
use crate::test_fixtures::CLUSTER;
use osm_api::{
    compile::{Index, MeshOptions, compile},
    load::load_str,
    protocol::apply_update,
};

fn target(sources: &[&str]) -> Object {
    let sources: Vec<String> = sources
        .iter()
        .map(|s| format!("{{kind: ServiceAccount, name: {s}, namespace: shop}}"))
        .collect();
    let yaml = format!(
        "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {{name: store, namespace: shop}}\n\
         spec:\n  destination: {{kind: ServiceAccount, name: store, namespace: shop}}\n  rules: [{{kind: TCPRoute, name: all}}]\n  sources: [{}]\n",
        sources.join(", ")
    );
    load_str("tt.yaml", &yaml).objects.remove(0).object
}

const ROUTE: &str = "apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: all, namespace: shop}\nspec: {matches: {ports: []}}\n";

fn index() -> Index {
    let mut index = Index::new(MeshOptions::default());
    for l in load_str("cluster.yaml", CLUSTER)
        .objects
        .into_iter()
        .chain(load_str("route.yaml", ROUTE).objects)
    {
        index.apply(l.object);
    }
    index
}

fn hub() -> Hub {
    Hub::new(Compiler::new(index()), Some("ROOTS".into()))
}

fn id(pod: &str) -> ProxyId {
    ProxyId {
        namespace: "shop".into(),
        pod: pod.into(),
    }
}

/// What the proxy ends up with after applying `updates` in order.
fn fold(updates: &[v1::ConfigUpdate]) -> v1::ProxyConfig {
    updates
        .iter()
        .fold(v1::ProxyConfig::default(), |config, u| {
            apply_update(&config, u).unwrap()
        })
}

#[test]
fn subscribers_get_a_full_view_then_only_the_changes_that_touch_them() {
    let hub = hub();
    let sub_store = hub.subscribe(id("store-0")).unwrap();
    let mut store = sub_store.views;
    let sub_buyer = hub.subscribe(id("buyer-0")).unwrap();
    let mut buyer = sub_buyer.views;
    let sub_thief = hub.subscribe(id("thief-0")).unwrap();
    let mut thief = sub_thief.views;
    assert_eq!(hub.subscribers(), 3);
    let first = next_update(None, &buyer.borrow_and_update());
    assert!(first.full);
    assert_eq!(
        fold(std::slice::from_ref(&first)).trust_bundle.unwrap().pem,
        "ROOTS"
    );
    store.borrow_and_update();
    thief.borrow_and_update();

    hub.apply(target(&["buyer"]));
    assert!(
        store.has_changed().unwrap(),
        "the destination's inbound changed"
    );
    assert!(
        buyer.has_changed().unwrap(),
        "the source may now reach the store"
    );
    assert!(!thief.has_changed().unwrap(), "thief's view did not change");

    let latest = buyer.borrow_and_update().clone();
    let after_first = fold(std::slice::from_ref(&first));
    let sent = View {
        version: first.version.parse().unwrap(),
        resources: Arc::new(osm_api::protocol::resources(&after_first)),
        changed_at: None,
    };
    let second = next_update(Some(&sent), &latest);
    assert!(!second.full);
    assert!(second.removals.is_empty());
    // The proxy's config after both batches is what a full compile gives.
    let mut expected_index = index();
    expected_index.apply(target(&["buyer"]));
    let mut want = compile(&expected_index, &id("buyer-0")).unwrap().config;
    want.trust_bundle = Some(v1::TrustBundle {
        pem: "ROOTS".into(),
    });
    let got = fold(&[first, second]);
    assert_eq!(
        osm_api::protocol::resources(&got),
        osm_api::protocol::resources(&want)
    );
}

#[test]
fn a_slow_proxy_gets_one_coalesced_batch() {
    let hub = hub();
    let sub_buyer = hub.subscribe(id("buyer-0")).unwrap();
    let mut buyer = sub_buyer.views;
    let initial = buyer.borrow_and_update().clone();
    // Three changes the proxy does not read in between: allowed, then
    // thief too, then allowed again without thief.
    hub.apply(target(&["buyer"]));
    hub.apply(target(&["buyer", "thief"]));
    hub.apply(target(&["thief"]));
    hub.apply(target(&["buyer"]));
    let latest = buyer.borrow_and_update().clone();
    assert!(latest.version > initial.version);
    let batch = next_update(Some(&initial), &latest);
    let folded = fold(&[next_update(None, &initial), batch.clone()]);
    assert_eq!(
        osm_api::protocol::resources(&folded),
        *latest.resources,
        "one batch carries the net change"
    );
    assert!(!buyer.has_changed().unwrap());

    assert!(latest.changed_at.is_some(), "a changed view says when");
    hub.unsubscribe(&id("buyer-0"), sub_buyer.token);
    assert_eq!(hub.subscribers(), 0);
}

#[test]
fn an_old_subscription_ending_leaves_the_new_one_in_place() {
    let hub = hub();
    let old = hub.subscribe(id("buyer-0")).unwrap();
    let new = hub.subscribe(id("buyer-0")).unwrap();
    hub.unsubscribe(&id("buyer-0"), old.token);
    assert_eq!(
        hub.subscribers(),
        1,
        "the reconnected proxy stays subscribed"
    );
    let mut views = new.views;
    views.borrow_and_update();
    hub.apply(target(&["buyer"]));
    assert!(views.has_changed().unwrap(), "and still gets changes");
    hub.unsubscribe(&id("buyer-0"), new.token);
    assert_eq!(hub.subscribers(), 0);
}

/// Regression (issue 14, item 2): membership for Certify comes from the
/// index: an injected pod in a monitored namespace, nothing else.
#[test]
fn only_injected_pods_in_monitored_namespaces_are_members() {
    use crate::certify::{Membership, NotMeshed};
    let hub = hub();
    for l in load_str("outsiders.yaml", crate::test_fixtures::OUTSIDERS).objects {
        hub.apply(l.object);
    }
    assert_eq!(hub.check("shop", "store-0"), Ok(()));
    assert_eq!(
        hub.check("shop", "plain-0"),
        Err(NotMeshed::NoProxy("shop/plain-0".into()))
    );
    assert_eq!(
        hub.check("outside", "web-0"),
        Err(NotMeshed::NotMonitored {
            pod: "outside/web-0".into(),
            namespace: "outside".into()
        })
    );
    assert_eq!(
        hub.check("shop", "nobody"),
        Err(NotMeshed::UnknownPod("shop/nobody".into()))
    );
}

/// Regression (issue 14, item 10): a second subscription always replaced
/// the first, so a sibling pod could evict a pod's stream.
#[test]
fn an_unbound_subscription_cannot_replace_a_bound_one() {
    let hub = hub();
    let legacy = hub.subscribe_unbound(id("store-0")).unwrap();
    // Unbound replaces unbound (a restarted proxy on an old certificate),
    // and bound replaces unbound (the pod's own, renewed certificate).
    let legacy_again = hub.subscribe_unbound(id("store-0")).unwrap();
    assert!(legacy.views.has_changed().is_err(), "the first one ended");
    let bound = hub.subscribe(id("store-0")).unwrap();
    assert!(legacy_again.views.has_changed().is_err());
    // Unbound does not replace bound: the bound stream keeps its views.
    let refused = hub.subscribe_unbound(id("store-0")).unwrap_err();
    assert!(
        matches!(&refused, SubscribeError::HeldByBoundCertificate(pod) if pod == "shop/store-0"),
        "{refused}"
    );
    assert!(bound.views.has_changed().is_ok(), "the bound one is open");
    hub.apply(target(&["buyer"]));
    assert!(bound.views.has_changed().unwrap(), "and still gets changes");
}

#[test]
fn streams_beyond_max_data_plane_connections_are_refused() {
    let hub = hub();
    let mesh = "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
        metadata: {name: osm-mesh-config, namespace: osm-system}\nspec: {sidecar: {maxDataPlaneConnections: 2}}\n";
    hub.apply(load_str("mesh.yaml", mesh).objects.remove(0).object);
    let _store = hub.subscribe(id("store-0")).unwrap();
    let _buyer = hub.subscribe(id("buyer-0")).unwrap();
    let full = hub.subscribe(id("thief-0")).unwrap_err();
    assert!(matches!(full, SubscribeError::Full(2)), "{full}");
    assert!(
        full.to_string().contains("sidecar.maxDataPlaneConnections"),
        "{full}"
    );
    // A proxy replacing its own stream is not a new one.
    assert!(hub.subscribe(id("store-0")).is_ok());
}

/// Records the filters it is given.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<String>>);

impl osm_api::logging::LogFilter for Recorded {
    fn current(&self) -> String {
        self.0.lock().unwrap().last().cloned().unwrap_or_default()
    }
    fn set(&self, filter: &str) -> Result<(), osm_api::logging::FilterError> {
        self.0.lock().unwrap().push(filter.to_string());
        Ok(())
    }
}

#[test]
fn the_controller_log_level_follows_the_mesh_config() {
    let recorded = std::sync::Arc::new(Recorded::default());
    let mut hub = hub();
    hub.follow_log_level(recorded.clone());
    let mesh = |level: &str| {
        let yaml = format!(
            "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
             metadata: {{name: osm-mesh-config, namespace: osm-system}}\nspec: {{observability: {{osmLogLevel: {level}}}}}\n"
        );
        load_str("mesh.yaml", &yaml).objects.remove(0).object
    };
    // OSM's default leaves the flag's level alone.
    hub.apply(mesh("info"));
    assert!(recorded.0.lock().unwrap().is_empty());
    hub.apply(mesh("debug"));
    hub.apply(target(&["buyer"]));
    hub.apply(mesh("disabled"));
    hub.apply(mesh("fatal"));
    assert_eq!(*recorded.0.lock().unwrap(), ["debug", "off", "error"]);
}

#[test]
fn a_new_trust_bundle_reaches_every_proxy_as_one_upsert() {
    let hub = hub();
    let mut store = hub.subscribe(id("store-0")).unwrap().views;
    let mut buyer = hub.subscribe(id("buyer-0")).unwrap().views;
    let sent_store = store.borrow_and_update().clone();
    buyer.borrow_and_update();
    hub.set_trust_bundle("OLD+NEW".into());
    assert!(store.has_changed().unwrap() && buyer.has_changed().unwrap());
    let update = next_update(Some(&sent_store), &store.borrow_and_update());
    assert!(!update.full, "a delta, not a resend");
    assert_eq!(update.upserts.len(), 1, "{update:?}");
    assert!(update.removals.is_empty());
    let before = fold(&[next_update(None, &sent_store)]);
    let after = apply_update(&before, &update).unwrap();
    assert_eq!(after.trust_bundle.unwrap().pem, "OLD+NEW");
    // A proxy subscribing later gets it too.
    let late = hub.subscribe(id("thief-0")).unwrap().views;
    let full = next_update(None, &late.borrow());
    assert_eq!(fold(&[full]).trust_bundle.unwrap().pem, "OLD+NEW");
    // Every version a proxy was sent since carries the bundle; none
    // before.
    let since = hub.bundle_since();
    assert!(since > sent_store.version);
    assert!(store.borrow().version >= since && late.borrow().version >= since);
}
