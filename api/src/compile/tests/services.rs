//! Services, EndpointSlices and pods: names, addresses, endpoints, ports, and which proxies compile at all.

use super::*;

#[test]
fn names_addresses_and_endpoints_of_a_service() {
    let idx = index(&bookstore(), MeshOptions::default());
    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    let root = &buyer.config.outbound[0];
    assert_eq!(
        root.hostnames,
        [
            "bookstore.bookstore",
            "bookstore.bookstore.svc",
            "bookstore.bookstore.svc.cluster.local"
        ]
    );
    assert_eq!(root.vips, ["10.96.0.10"]);
    assert_eq!(root.port, 14001);
    let set = buyer
        .config
        .endpoints
        .iter()
        .find(|s| s.key == root.endpoints)
        .expect("set");
    let addrs: Vec<(&str, &str)> = set
        .endpoints
        .iter()
        .map(|e| (e.address.as_str(), e.identity.as_str()))
        .collect();
    assert_eq!(
        addrs,
        [
            (
                "10.1.0.1:8080",
                "spiffe://cluster.local/ns/bookstore/sa/bookstore-v1"
            ),
            (
                "10.1.0.2:8080",
                "spiffe://cluster.local/ns/bookstore/sa/bookstore-v2"
            ),
        ],
        "the named target port resolves per pod"
    );
    // From its own namespace the short name works too.
    let v1 = compile(&idx, &proxy("bookstore", "bookstore-v1-abc")).expect("compiles");
    assert!(
        v1.config.outbound.is_empty(),
        "bookstore-v1 is authorized to nothing"
    );
}

#[test]
fn headless_services_and_statefulset_pod_names() {
    let mut y = String::new();
    y += &namespace("db", true);
    for i in 0..2 {
        y += &format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: mysql-{i}, namespace: db, labels: {{app: mysql}}, \
             ownerReferences: [{{apiVersion: apps/v1, kind: StatefulSet, name: mysql, uid: u}}]}}\n\
             spec: {{serviceAccountName: mysql, hostname: mysql-{i}, subdomain: mysql, containers: [{{name: db, image: x}}]}}\n\
             status: {{podIP: 10.5.0.{}}}\n",
            i + 1
        );
    }
    y += &service(
        "db",
        "mysql",
        "app: mysql",
        "{name: tcp-mysql, port: 3306}",
        "None",
    );
    let idx = index(
        &y,
        MeshOptions {
            permissive: true,
            ..MeshOptions::default()
        },
    );
    let c = compile(&idx, &proxy("db", "mysql-0")).expect("compiles");
    let summary: Vec<(&str, Vec<&str>, Vec<&str>)> = c
        .config
        .outbound
        .iter()
        .map(|s| {
            (
                s.key.as_str(),
                s.vips.iter().map(String::as_str).collect(),
                s.hostnames.iter().take(2).map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "db/mysql:3306/mysql-0",
                vec!["10.5.0.1"],
                vec!["mysql-0.mysql", "mysql-0.mysql.db"]
            ),
            (
                "db/mysql:3306/mysql-1",
                vec!["10.5.0.2"],
                vec!["mysql-1.mysql", "mysql-1.mysql.db"]
            ),
            ("db/mysql:3306", vec![], vec!["mysql", "mysql.db"]),
        ]
    );
    assert_eq!(c.config.outbound[2].protocol, v1::Protocol::Tcp as i32);
    let set = c
        .config
        .endpoints
        .iter()
        .find(|s| s.key == "db/mysql:3306/mysql-1")
        .expect("set");
    assert_eq!(set.endpoints[0].workload_kind, "StatefulSet");
    assert_eq!(set.endpoints[0].workload_name, "mysql");
}

#[test]
fn multi_port_services_map_each_port_to_its_target() {
    let mut y = bookstore();
    y += &service(
        "bookstore",
        "admin",
        "app: bookstore, version: v1",
        "{name: http-admin, port: 80, targetPort: 9000}, {name: grpc-api, port: 81, targetPort: web}, {name: dns, port: 53, protocol: UDP}",
        "10.96.0.50",
    );
    let idx = index(
        &y,
        MeshOptions {
            permissive: true,
            ..MeshOptions::default()
        },
    );
    let v1 = compile(&idx, &proxy("bookstore", "bookstore-v1-abc")).expect("compiles");
    let ports: Vec<(u32, i32)> = v1
        .config
        .inbound
        .iter()
        .map(|p| (p.port, p.protocol))
        .collect();
    // admin's grpc-api and bookstore's http both send to pod port 8080: the
    // first Service by name decides, and the conflict is reported.
    assert_eq!(
        ports,
        [
            (8080, v1::Protocol::Grpc as i32),
            (9000, v1::Protocol::Http1 as i32)
        ],
        "UDP is not intercepted"
    );
    assert_eq!(
        v1.warnings,
        [
            "Service bookstore/bookstore-v1: port 14001 names PROTOCOL_HTTP1 for pod port 8080, but Service bookstore/admin already named PROTOCOL_GRPC; PROTOCOL_GRPC applies",
            "Service bookstore/bookstore: port 14001 names PROTOCOL_HTTP1 for pod port 8080, but Service bookstore/admin already named PROTOCOL_GRPC; PROTOCOL_GRPC applies",
        ]
    );
    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    let admin: Vec<(&str, u32, i32)> = buyer
        .config
        .outbound
        .iter()
        .filter(|s| s.name == "admin")
        .map(|s| (s.key.as_str(), s.port, s.protocol))
        .collect();
    assert_eq!(
        admin,
        [
            ("bookstore/admin:80", 80, v1::Protocol::Http1 as i32),
            ("bookstore/admin:81", 81, v1::Protocol::Grpc as i32)
        ]
    );
    let addrs = |key: &str| -> Vec<String> {
        let set = buyer
            .config
            .endpoints
            .iter()
            .find(|s| s.key == key)
            .expect("set");
        set.endpoints.iter().map(|e| e.address.clone()).collect()
    };
    assert_eq!(addrs("bookstore/admin:80"), ["10.1.0.1:9000"]);
    assert_eq!(
        addrs("bookstore/admin:81"),
        ["10.1.0.1:8080"],
        "named target port"
    );
}

#[test]
fn unknown_or_unmonitored_proxies_are_errors() {
    let idx = index(&bookstore(), MeshOptions::default());
    assert_eq!(
        compile(&idx, &proxy("bookstore", "nope"))
            .unwrap_err()
            .to_string(),
        "pod bookstore/nope is not known"
    );
    assert_eq!(
        compile(&idx, &proxy("outside", "web-1"))
            .unwrap_err()
            .to_string(),
        "namespace outside is not monitored by mesh osm"
    );
}

#[test]
fn rejected_objects_are_not_indexed() {
    let mut idx = index(&bookstore(), MeshOptions::default());
    let bad = load_str(
        "bad.yaml",
        "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: x, namespace: bookstore}\n\
         spec: {destination: {kind: ServiceAccount, name: bookstore-v2, namespace: elsewhere}, rules: [], sources: []}\n",
    );
    let problems = idx.apply(bad.objects[0].object.clone());
    assert!(crate::validate::rejects(&problems));
    assert!(
        !idx.traffic_targets
            .contains_key(&("bookstore".into(), "x".into()))
    );
}
