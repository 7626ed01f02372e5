//! An update in place gives exactly what a whole build of the same config
//! gives, for any sequence of batches over services that share endpoint
//! sets, pods, addresses and host names.

use osm_api::v1;
use proptest::prelude::*;

use super::{OnBadResource, Snapshot, build, update};
use crate::{
    config::store::{Changed, ConfigStore},
    upstream::EndpointRegistry,
};

const KEYS: usize = 5;

fn set_key(i: usize) -> String {
    format!("ns/s{i}:80")
}

fn endpoint_set(key: usize, pods: &[(u8, bool)]) -> v1::Resource {
    let set = v1::EndpointSet {
        key: set_key(key),
        namespace: "ns".into(),
        service: format!("s{key}"),
        endpoints: pods
            .iter()
            .map(|(pod, meshed)| v1::Endpoint {
                address: format!("10.1.0.{pod}:8080"),
                identity: if *meshed {
                    format!("spiffe://cluster.local/ns/ns/sa/p{pod}")
                } else {
                    String::new()
                },
                pod: format!("p{pod}"),
                ..Default::default()
            })
            .collect(),
    };
    v1::Resource {
        kind: Some(v1::resource::Kind::Endpoints(set)),
    }
}

/// A service by key index: its own set, a VIP and host name from small
/// pools (so that some collide), maybe a split, limits or a route.
#[derive(Debug, Clone)]
struct ServiceShape {
    key: usize,
    own: usize,
    vip: Option<u8>,
    host: u8,
    split: Vec<(usize, u32)>,
    limits: bool,
    route_to: Option<usize>,
}

fn service(shape: &ServiceShape) -> v1::Resource {
    let s = v1::OutboundService {
        key: format!("ns/svc{}:80", shape.key),
        namespace: "ns".into(),
        name: format!("svc{}", shape.key),
        port: 80,
        hostnames: vec![format!("h{}", shape.host)],
        vips: shape
            .vip
            .map(|v| format!("10.96.0.{v}"))
            .into_iter()
            .collect(),
        protocol: v1::Protocol::Http1 as i32,
        endpoints: set_key(shape.own),
        split: shape
            .split
            .iter()
            .map(|(k, w)| v1::WeightedBackend {
                endpoints: set_key(*k),
                weight: *w,
            })
            .collect(),
        limits: shape.limits.then(|| v1::ConnectionLimits {
            max_connections: 7,
            ..Default::default()
        }),
        routes: shape
            .route_to
            .map(|k| v1::HttpRouteRule {
                name: format!("ns/r{}", shape.key),
                backends: vec![v1::RouteBackend {
                    endpoints: set_key(k),
                    weight: 1,
                    filters: Vec::new(),
                }],
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    };
    v1::Resource {
        kind: Some(v1::resource::Kind::Outbound(s)),
    }
}

/// Mostly services that build and do not collide (so that most batches
/// can be applied in place), sometimes not.
fn shape() -> impl Strategy<Value = ServiceShape> {
    (
        0..KEYS,
        0..KEYS,
        prop::option::weighted(0.9, prop::option::weighted(0.9, 0u8..8)),
        prop::option::weighted(0.1, 0u8..8),
        prop::collection::vec((0..KEYS, 1u32..3), 0..3),
        any::<bool>(),
        prop::option::of(0..KEYS),
    )
        .prop_map(
            |(key, own, vip, host, split, limits, route_to)| ServiceShape {
                key,
                own,
                // Its own address, none, or one from a pool some share.
                vip: vip.map(|v| v.unwrap_or(key as u8)),
                host: host.unwrap_or(key as u8),
                split,
                limits,
                route_to,
            },
        )
}

/// One resource upserted or removed.
#[derive(Debug, Clone)]
enum Step {
    Service(ServiceShape),
    Set(usize, Vec<(u8, bool)>),
    RemoveService(usize),
    RemoveSet(usize),
}

fn pods() -> impl Strategy<Value = Vec<(u8, bool)>> {
    prop::collection::vec((0u8..6, any::<bool>()), 0..4)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => shape().prop_map(Step::Service),
        4 => (0..KEYS, pods()).prop_map(|(k, pods)| Step::Set(k, pods)),
        1 => (0..KEYS).prop_map(Step::RemoveService),
        1 => (0..KEYS).prop_map(Step::RemoveSet),
    ]
}

/// Every endpoint set, then services.
fn first_batch() -> impl Strategy<Value = Vec<Step>> {
    (
        prop::collection::vec(pods(), KEYS),
        prop::collection::vec(shape(), 0..KEYS * 2),
    )
        .prop_map(|(sets, services)| {
            let sets = sets.into_iter().enumerate().map(|(k, p)| Step::Set(k, p));
            sets.chain(services.into_iter().map(Step::Service))
                .collect()
        })
}

fn batch(full: bool, steps: &[Step]) -> v1::ConfigUpdate {
    let mut update = v1::ConfigUpdate {
        version: "v".into(),
        full,
        ..Default::default()
    };
    for s in steps {
        let removal = |kind: v1::resource_key::Kind, key: String| v1::ResourceKey {
            kind: kind as i32,
            key,
        };
        match s {
            Step::Service(shape) => update.upserts.push(service(shape)),
            Step::Set(k, pods) => update.upserts.push(endpoint_set(*k, pods)),
            Step::RemoveService(k) => update.removals.push(removal(
                v1::resource_key::Kind::Outbound,
                format!("ns/svc{k}:80"),
            )),
            Step::RemoveSet(k) => update
                .removals
                .push(removal(v1::resource_key::Kind::Endpoints, set_key(*k))),
        }
    }
    update
}

fn whole(store: &ConfigStore, registry: &EndpointRegistry) -> Snapshot {
    build(store, store.clone(), 1, registry, OnBadResource::FailClosed)
        .expect("the mesh settings are valid")
        .0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_update_in_place_is_a_whole_build(
        first in first_batch(),
        batches in prop::collection::vec(prop::collection::vec(step(), 1..4), 1..6),
    ) {
        let registry = EndpointRegistry::default();
        let (mut store, _) = ConfigStore::default().apply(batch(true, &first)).unwrap();
        let mut current = whole(&store, &registry);
        for steps in &batches {
            let (next, changed) = store.apply(batch(false, steps)).unwrap();
            prop_assert!(matches!(changed, Changed::Keys(_)));
            let want = whole(&next, &registry);
            if let Some(got) = update(&current, &store, next.clone(), &changed, 2, &registry) {
                prop_assert_eq!(Snapshot::describe(&got), Snapshot::describe(&want), "after {:?}", steps);
                current = got;
            } else {
                current = want;
            }
            store = next;
        }
    }
}

#[test]
fn one_endpoint_change_is_applied_in_place() {
    let registry = EndpointRegistry::default();
    let shape = |key, own| ServiceShape {
        key,
        own,
        vip: Some(key as u8),
        host: key as u8,
        split: Vec::new(),
        limits: key == 0,
        route_to: None,
    };
    let first = [
        Step::Service(shape(0, 0)),
        Step::Service(shape(1, 1)),
        Step::Set(0, vec![(1, true)]),
        Step::Set(1, vec![(2, true)]),
    ];
    let (store, _) = ConfigStore::default().apply(batch(true, &first)).unwrap();
    let current = whole(&store, &registry);
    let (next, changed) = store
        .apply(batch(false, &[Step::Set(0, vec![(1, true), (3, true)])]))
        .unwrap();
    let got = update(&current, &store, next, &changed, 2, &registry).expect("in place");
    let describe = Snapshot::describe(&got);
    assert!(
        describe["addr 10.96.0.0:80"].contains("10.1.0.3:8080"),
        "the service sends to the new pod: {describe:?}"
    );
    assert!(describe.contains_key("pod 10.1.0.3:8080"), "{describe:?}");
    assert!(
        describe["set ns/s0:80"].contains("limits=Some(Some(7))"),
        "the set keeps its service's limits: {describe:?}"
    );
    // The other service is the very same value: shared, not rebuilt.
    let addr: std::net::SocketAddr = "10.96.0.1:80".parse().unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &current.outbound_by_addr[&addr],
        &got.outbound_by_addr[&addr]
    ));
    // Only the changed set is handed its breaker again.
    assert_eq!(got.fresh_sets.len(), 1);
}

#[test]
fn what_cannot_be_applied_in_place_is_left_to_a_whole_build() {
    let registry = EndpointRegistry::default();
    let (store, _) = ConfigStore::default()
        .apply(batch(true, &[Step::Set(0, vec![(1, true)])]))
        .unwrap();
    let current = whole(&store, &registry);
    let mesh = v1::ConfigUpdate {
        upserts: vec![v1::Resource {
            kind: Some(v1::resource::Kind::Mesh(v1::MeshSettings::default())),
        }],
        ..Default::default()
    };
    let bad_endpoint = {
        let mut b = batch(false, &[Step::Set(1, vec![(1, true)])]);
        if let Some(v1::resource::Kind::Endpoints(e)) = &mut b.upserts[0].kind {
            e.endpoints[0].address = "nowhere".into();
        }
        b
    };
    let cases = [
        ("mesh settings", mesh),
        ("a full batch", batch(true, &[Step::Set(0, vec![])])),
        ("an endpoint that does not build", bad_endpoint),
    ];
    for (name, b) in cases {
        let (next, changed) = store.apply(b).unwrap();
        assert!(
            update(&current, &store, next, &changed, 2, &registry).is_none(),
            "{name}"
        );
    }
    // Nor a batch made from another config than the snapshot's.
    let (other, _) = ConfigStore::default()
        .apply(batch(true, &[Step::Set(0, vec![(1, true)])]))
        .unwrap();
    let (next, changed) = other.apply(batch(false, &[Step::Set(0, vec![])])).unwrap();
    assert!(update(&current, &other, next, &changed, 2, &registry).is_none());
}

#[test]
fn a_set_makes_its_handles_when_first_used_and_a_used_one_keeps_them_across_a_change() {
    let first = [Step::Set(0, vec![(1, true)]), Step::Set(1, vec![(2, true)])];
    let change = [
        Step::Set(0, vec![(1, true), (3, true)]),
        Step::Set(1, vec![(2, true), (4, true)]),
    ];
    for in_place in [true, false] {
        let registry = EndpointRegistry::default();
        let (store, _) = ConfigStore::default().apply(batch(true, &first)).unwrap();
        let current = whole(&store, &registry);
        assert!(registry.handles().is_empty(), "no handle before a request");
        let used = std::sync::Arc::downgrade(&current.endpoint_sets["ns/s0:80"].endpoints()[0]);
        let (next, changed) = store.apply(batch(false, &change)).unwrap();
        let got = if in_place {
            update(&current, &store, next, &changed, 2, &registry).expect("in place")
        } else {
            whole(&next, &registry)
        };
        got.activate(&current);
        drop(current);
        let kept = used
            .upgrade()
            .expect("the used endpoint's handle outlives the snapshot it was made in");
        assert!(
            std::sync::Arc::ptr_eq(&kept, &got.endpoint_sets["ns/s0:80"].endpoints()[0]),
            "in place: {in_place}"
        );
        assert!(
            !got.endpoint_sets["ns/s1:80"].is_used(),
            "a set nobody used is not made: in place {in_place}"
        );
    }
}
