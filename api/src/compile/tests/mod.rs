//! The compiler's tests, one file per kind of resource, and the fixtures
//! they share (the bookstore demo as YAML, an index built from it).

mod access;
mod gateway;
mod policy;
mod services;
mod split;

use super::*;
use crate::load::load_str;

/// An index built from manifests; panics on load errors or rejected objects.
pub(crate) fn index(yaml: &str, mesh: MeshOptions) -> Index {
    let out = load_str("fixture.yaml", yaml);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let mut index = Index::new(mesh);
    for loaded in out.objects {
        let problems = index.apply(loaded.object);
        assert!(!crate::validate::rejects(&problems), "{problems:?}");
    }
    index
}

pub(crate) fn pod(ns: &str, name: &str, sa: &str, ip: &str, labels: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\n\
         spec: {{serviceAccountName: {sa}, containers: [{{name: app, image: x, ports: [{{name: web, containerPort: 8080}}]}}]}}\n\
         status: {{podIP: {ip}}}\n"
    )
}

pub(crate) fn namespace(name: &str, monitored: bool) -> String {
    let labels = if monitored {
        "{openservicemesh.io/monitored-by: osm}"
    } else {
        "{}"
    };
    format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {labels}}}\n")
}

pub(crate) fn service(
    ns: &str,
    name: &str,
    selector: &str,
    ports: &str,
    cluster_ip: &str,
) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec: {{clusterIP: {cluster_ip}, selector: {{{selector}}}, ports: [{ports}]}}\n"
    )
}

/// bookstore v1/v2 behind the root `bookstore`, bookbuyer allowed, bookthief not.
pub(crate) fn bookstore() -> String {
    let mut y = String::new();
    for ns in ["bookstore", "bookbuyer", "bookthief"] {
        y += &namespace(ns, true);
    }
    y += &namespace("outside", false);
    y += &pod(
        "bookstore",
        "bookstore-v1-abc",
        "bookstore-v1",
        "10.1.0.1",
        "app: bookstore, version: v1",
    );
    y += &pod(
        "bookstore",
        "bookstore-v2-def",
        "bookstore-v2",
        "10.1.0.2",
        "app: bookstore, version: v2",
    );
    y += &pod(
        "bookbuyer",
        "bookbuyer-1",
        "bookbuyer",
        "10.2.0.1",
        "app: bookbuyer",
    );
    y += &pod(
        "bookthief",
        "bookthief-1",
        "bookthief",
        "10.3.0.1",
        "app: bookthief",
    );
    y += &pod("outside", "web-1", "default", "10.4.0.1", "app: web");
    y += &service(
        "bookstore",
        "bookstore",
        "app: bookstore",
        "{name: http, port: 14001, targetPort: web}",
        "10.96.0.10",
    );
    y += &service(
        "bookstore",
        "bookstore-v1",
        "app: bookstore, version: v1",
        "{name: http, port: 14001, targetPort: 8080}",
        "10.96.0.11",
    );
    y += &service(
        "bookstore",
        "bookstore-v2",
        "app: bookstore, version: v2",
        "{name: http, port: 14001, targetPort: 8080}",
        "10.96.0.12",
    );
    y += &service(
        "bookbuyer",
        "bookbuyer",
        "app: bookbuyer",
        "{port: 80, targetPort: 8080}",
        "10.96.0.20",
    );
    y += &service(
        "outside",
        "web",
        "app: web",
        "{port: 80, targetPort: 8080}",
        "10.96.0.30",
    );
    y += "---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: bookstore-service-routes, namespace: bookstore}
spec:
  matches:
  - {name: books-bought, pathRegex: /books-bought, methods: [GET], headers: [{user-agent: '.*-http-client/*.*'}, {client-app: bookbuyer}]}
  - {name: buy-a-book, pathRegex: '.*a-book.*new', methods: [GET]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: bookstore-v1, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore-v1, namespace: bookstore}
  rules: [{kind: HTTPRouteGroup, name: bookstore-service-routes, matches: [buy-a-book, books-bought]}]
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
";
    y
}

pub(crate) fn proxy(ns: &str, pod: &str) -> ProxyId {
    ProxyId {
        namespace: ns.into(),
        pod: pod.into(),
    }
}

pub(crate) fn apply_all(idx: &mut Index, yaml: &str) {
    let out = load_str("more.yaml", yaml);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    for l in out.objects {
        assert!(!crate::validate::rejects(&idx.apply(l.object)));
    }
}

pub(crate) fn outbound_keys(c: &Compiled) -> Vec<&str> {
    c.config.outbound.iter().map(|s| s.key.as_str()).collect()
}

/// The split of the root bookstore service as (endpoint set, weight).
pub(crate) fn root_split(c: &Compiled) -> Vec<(&str, u32)> {
    let root = c
        .config
        .outbound
        .iter()
        .find(|s| s.key == "bookstore/bookstore:14001")
        .expect("root");
    root.split
        .iter()
        .map(|b| (b.endpoints.as_str(), b.weight))
        .collect()
}

pub(crate) fn with_split(backends: &str) -> String {
    format!(
        "{}---\napiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {{name: split, namespace: bookstore}}\n\
         spec: {{service: bookstore.bookstore, backends: [{backends}]}}\n",
        bookstore()
    )
}
