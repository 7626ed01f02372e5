//! TrafficSplits: the weights of a root service's backends.

use super::*;

#[test]
fn splits_with_and_without_the_root_among_backends() {
    let idx = index(
        &with_split("{service: bookstore-v1, weight: 50}, {service: bookstore-v2, weight: 50}"),
        MeshOptions::default(),
    );
    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    let split = root_split(&buyer);
    assert_eq!(
        split,
        [
            ("bookstore/bookstore-v1:14001", 50),
            ("bookstore/bookstore-v2:14001", 50)
        ]
    );
    assert!(
        buyer
            .config
            .endpoints
            .iter()
            .any(|s| s.key == "bookstore/bookstore-v2:14001")
    );

    let idx = index(
        &with_split("{service: bookstore, weight: 1}, {service: bookstore-v2, weight: 3}"),
        MeshOptions::default(),
    );
    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    let split = root_split(&buyer);
    assert_eq!(
        split,
        [
            ("bookstore/bookstore:14001", 1),
            ("bookstore/bookstore-v2:14001", 3)
        ],
        "the root's share goes to its own endpoints"
    );
}

#[test]
fn a_backend_without_the_root_port_is_skipped_with_a_warning() {
    let mut y = with_split("{service: bookstore-v1, weight: 50}, {service: other, weight: 50}");
    y += &service(
        "bookstore",
        "other",
        "app: bookstore",
        "{port: 9999}",
        "10.96.0.13",
    );
    let idx = index(&y, MeshOptions::default());
    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    let root = buyer
        .config
        .outbound
        .iter()
        .find(|s| s.key == "bookstore/bookstore:14001")
        .expect("root");
    assert_eq!(root.split.len(), 1);
    assert_eq!(
        buyer.warnings,
        [
            "TrafficSplit bookstore/split: backend Service bookstore/other has no port 14001; it gets no traffic for bookstore/bookstore:14001"
        ]
    );
}
