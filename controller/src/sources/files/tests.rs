use super::*;
use crate::test_fixtures::CLUSTER as BASE;
use osm_api::compile::{Compiler, Index, MeshOptions, ProxyId};

const POLICY: &str = "apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: all, namespace: shop}
spec: {matches: {ports: []}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: store, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: store, namespace: shop}
  rules: [{kind: TCPRoute, name: all}]
  sources: [{kind: ServiceAccount, name: buyer, namespace: shop}]
";

fn buyer() -> ProxyId {
    ProxyId {
        namespace: "shop".into(),
        pod: "buyer-0".into(),
    }
}

#[test]
fn the_directory_drives_the_mesh() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.yaml"), BASE).unwrap();
    let hub = Hub::new(Compiler::new(Index::new(MeshOptions::default())), None);
    let mut source = FileSource::new(dir.path());
    let first = source.sync(&hub);
    assert_eq!(first.applied.len(), 5, "{first:?}");
    assert!(first.problems.is_empty(), "{first:?}");
    let mut rx = hub.subscribe(buyer()).unwrap().views;
    assert!(
        rx.borrow_and_update()
            .resources
            .keys()
            .all(|k| !matches!(k, osm_api::protocol::ResourceId::Outbound(_)))
    );

    // A policy file appears: the buyer may now reach the store.
    std::fs::create_dir(dir.path().join("policy")).unwrap();
    std::fs::write(dir.path().join("policy/access.yaml"), POLICY).unwrap();
    let second = source.sync(&hub);
    assert_eq!(
        second.applied,
        ["TCPRoute shop/all", "TrafficTarget shop/store"]
    );
    assert!(rx.has_changed().unwrap());
    let view = rx.borrow_and_update().clone();
    assert!(
        view.resources
            .contains_key(&osm_api::protocol::ResourceId::Outbound(
                "shop/store:80".into()
            ))
    );

    // Nothing changed: nothing is applied.
    assert_eq!(source.sync(&hub), SyncReport::default());

    // The policy file goes: its objects are deleted and the route closes.
    std::fs::remove_file(dir.path().join("policy/access.yaml")).unwrap();
    let third = source.sync(&hub);
    assert_eq!(
        third.deleted,
        ["TCPRoute shop/all", "TrafficTarget shop/store"]
    );
    assert!(rx.has_changed().unwrap());
    assert!(!rx.borrow_and_update().resources.contains_key(
        &osm_api::protocol::ResourceId::Outbound("shop/store:80".into())
    ));
}

#[test]
fn bad_objects_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.yaml"), BASE).unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: x, namespace: shop}\n\
         spec: {destination: {kind: ServiceAccount, name: store, namespace: elsewhere}, rules: [{kind: TCPRoute, name: all}], sources: [{kind: ServiceAccount, name: buyer, namespace: shop}]}\n\
         ---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: store-0, namespace: shop}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    let hub = Hub::new(Compiler::new(Index::new(MeshOptions::default())), None);
    let report = FileSource::new(dir.path()).sync(&hub);
    assert_eq!(report.applied.len(), 5, "the good objects still apply");
    let bad = dir.path().join("bad.yaml").display().to_string();
    let base = dir.path().join("base.yaml").display().to_string();
    assert_eq!(
        report.problems,
        [
            format!(
                "{bad}: document 2 (PersistentVolumeClaim s): kind PersistentVolumeClaim in apiVersion v1 is not supported by the mesh"
            ),
            format!(
                "{base}: document 2: Pod shop/store-0 is already defined at {bad}: document 3; the first is used"
            ),
            format!(
                "{bad}: document 1 (TrafficTarget shop/x): rejected: spec.destination.namespace: must be the TrafficTarget's own namespace \"shop\", not \"elsewhere\""
            ),
        ]
    );
}
