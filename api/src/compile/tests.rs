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

/// The split of the root bookstore service as (endpoint set, weight).
fn root_split(c: &Compiled) -> Vec<(&str, u32)> {
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

pub(crate) fn proxy(ns: &str, pod: &str) -> ProxyId {
    ProxyId {
        namespace: ns.into(),
        pod: pod.into(),
    }
}

fn outbound_keys(c: &Compiled) -> Vec<&str> {
    c.config.outbound.iter().map(|s| s.key.as_str()).collect()
}

#[test]
fn inbound_port_authorizations_come_from_traffic_targets() {
    let idx = index(&bookstore(), MeshOptions::default());
    let c = compile(&idx, &proxy("bookstore", "bookstore-v1-abc")).expect("compiles");
    assert_eq!(
        c.config.inbound.len(),
        1,
        "both Services map to pod port 8080"
    );
    let port = &c.config.inbound[0];
    assert_eq!(port.port, 8080);
    assert_eq!(port.protocol, v1::Protocol::Http1 as i32, "port name http");
    assert_eq!(port.authorizations.len(), 1);
    let authz = &port.authorizations[0];
    assert_eq!(authz.name, "bookstore/bookstore-v1");
    assert_eq!(
        authz.sources,
        ["spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"]
    );
    let Some(v1::authorization::Traffic::Http(routes)) = &authz.traffic else {
        panic!("{authz:?}")
    };
    let names: Vec<&str> = routes.matches.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bookstore/bookstore-service-routes/books-bought",
            "bookstore/bookstore-service-routes/buy-a-book"
        ]
    );
    assert_eq!(routes.matches[0].headers["client-app"], "bookbuyer");
    // bookstore-v2 has no TrafficTarget: its port denies everything.
    let v2 = compile(&idx, &proxy("bookstore", "bookstore-v2-def")).expect("compiles");
    assert!(v2.config.inbound[0].authorizations.is_empty());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn smi_mode_reaches_only_authorized_services_and_permissive_reaches_all() {
    let idx = index(&bookstore(), MeshOptions::default());
    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    // bookstore-v1 runs as the authorized SA; the root selects it too.
    assert_eq!(
        outbound_keys(&buyer),
        ["bookstore/bookstore:14001", "bookstore/bookstore-v1:14001"]
    );
    let thief = compile(&idx, &proxy("bookthief", "bookthief-1")).expect("compiles");
    assert!(outbound_keys(&thief).is_empty());

    let open = index(
        &bookstore(),
        MeshOptions {
            permissive: true,
            ..MeshOptions::default()
        },
    );
    let thief = compile(&open, &proxy("bookthief", "bookthief-1")).expect("compiles");
    assert_eq!(
        outbound_keys(&thief),
        [
            "bookbuyer/bookbuyer:80",
            "bookstore/bookstore:14001",
            "bookstore/bookstore-v1:14001",
            "bookstore/bookstore-v2:14001"
        ],
        "every mesh service, none outside the mesh"
    );
    assert!(thief.config.mesh.as_ref().expect("mesh").permissive);
}

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

fn with_split(backends: &str) -> String {
    format!(
        "{}---\napiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {{name: split, namespace: bookstore}}\n\
         spec: {{service: bookstore.bookstore, backends: [{backends}]}}\n",
        bookstore()
    )
}

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

#[test]
fn tcp_and_http_rules_in_one_target_combine() {
    let y = format!(
        "{}---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {{name: web-port, namespace: bookstore}}
spec: {{matches: {{ports: [8080]}}}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {{name: other-port, namespace: bookstore}}
spec: {{matches: {{ports: [9090]}}}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {{name: metrics, namespace: bookstore}}
spec:
  destination: {{kind: ServiceAccount, name: bookstore-v2, namespace: bookstore}}
  rules: [{{kind: TCPRoute, name: web-port}}, {{kind: HTTPRouteGroup, name: bookstore-service-routes}}]
  sources: [{{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}}]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {{name: tcp-only, namespace: bookstore}}
spec:
  destination: {{kind: ServiceAccount, name: bookstore-v2, namespace: bookstore}}
  rules: [{{kind: TCPRoute, name: web-port}}]
  sources: [{{kind: ServiceAccount, name: bookthief, namespace: bookthief}}]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {{name: wrong-port, namespace: bookstore}}
spec:
  destination: {{kind: ServiceAccount, name: bookstore-v2, namespace: bookstore}}
  rules: [{{kind: TCPRoute, name: other-port}}]
  sources: [{{kind: ServiceAccount, name: bookthief, namespace: bookthief}}]
",
        bookstore()
    );
    let idx = index(&y, MeshOptions::default());
    let v2 = compile(&idx, &proxy("bookstore", "bookstore-v2-def")).expect("compiles");
    let authz = &v2.config.inbound[0].authorizations;
    let kinds: Vec<(&str, &str)> = authz
        .iter()
        .map(|a| {
            let kind = match &a.traffic {
                Some(v1::authorization::Traffic::All(_)) => "all",
                Some(v1::authorization::Traffic::Http(h)) if h.matches.len() == 2 => {
                    "http: every match of the group"
                }
                other => panic!("{other:?}"),
            };
            (a.name.as_str(), kind)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("bookstore/metrics", "http: every match of the group"),
            ("bookstore/tcp-only", "all")
        ],
        "a TCPRoute on another port gives nothing on 8080"
    );
}

#[test]
fn missing_routes_warn_and_allow_nothing() {
    let y = format!(
        "{}---\napiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {{name: broken, namespace: bookstore}}\n\
         spec:\n  destination: {{kind: ServiceAccount, name: bookstore-v2}}\n  \
         rules: [{{kind: HTTPRouteGroup, name: nope}}]\n  sources: [{{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}}]\n",
        bookstore()
    );
    let idx = index(&y, MeshOptions::default());
    let v2 = compile(&idx, &proxy("bookstore", "bookstore-v2-def")).expect("compiles");
    let authz = &v2.config.inbound[0].authorizations[0];
    assert_eq!(
        authz.traffic,
        Some(v1::authorization::Traffic::Http(v1::HttpRoutes {
            matches: vec![]
        }))
    );
    assert_eq!(
        v2.warnings,
        ["TrafficTarget bookstore/broken: HTTPRouteGroup bookstore/nope does not exist"]
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

pub(crate) fn apply_all(idx: &mut Index, yaml: &str) {
    let out = load_str("more.yaml", yaml);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    for l in out.objects {
        assert!(!crate::validate::rejects(&idx.apply(l.object)));
    }
}

#[test]
fn the_mesh_config_switches_permissive_mode_and_egress() {
    let mut idx = index(&bookstore(), MeshOptions::default());
    let thief = || ProxyId {
        namespace: "bookthief".into(),
        pod: "bookthief-1".into(),
    };
    assert!(
        compile(&idx, &thief())
            .expect("compiles")
            .config
            .outbound
            .is_empty()
    );
    let mesh_config = |permissive: bool| {
        format!(
            "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {{name: osm-mesh-config, namespace: osm-system}}\n\
             spec: {{traffic: {{enablePermissiveTrafficPolicyMode: {permissive}, enableEgress: false}}}}\n"
        )
    };
    apply_all(&mut idx, &mesh_config(true));
    let c = compile(&idx, &thief()).expect("compiles");
    assert_eq!(c.config.outbound.len(), 4);
    let mesh = c.config.mesh.expect("mesh");
    assert!(mesh.permissive && !mesh.egress);
    apply_all(&mut idx, &mesh_config(false));
    assert!(
        compile(&idx, &thief())
            .expect("compiles")
            .config
            .outbound
            .is_empty()
    );
    // A MeshConfig with another name changes nothing.
    apply_all(
        &mut idx,
        &mesh_config(true).replace("name: osm-mesh-config", "name: other"),
    );
    assert!(!idx.mesh.permissive);
}

#[test]
fn ingress_backends_open_ports_to_plaintext_sources() {
    let mut idx = index(&bookstore(), MeshOptions::default());
    apply_all(
        &mut idx,
        &format!(
            "{}{}---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {{name: bookstore, namespace: bookstore}}
spec:
  backends: [{{name: bookstore-v1, port: {{number: 8080, protocol: http}}}}]
  sources: [{{kind: IPRange, name: 192.168.0.0/16}}, {{kind: Service, name: ingress-nginx, namespace: ingress}}]
",
            namespace("ingress", false),
            pod("ingress", "ingress-nginx-1", "ingress", "10.9.0.1", "app: ingress")
                + &service("ingress", "ingress-nginx", "app: ingress", "{port: 80}", "10.96.0.90")
        ),
    );
    let v1 = compile(&idx, &proxy("bookstore", "bookstore-v1-abc")).expect("compiles");
    assert_eq!(
        v1.config.inbound[0].plaintext_sources,
        ["10.9.0.1", "192.168.0.0/16"]
    );
    let v2 = compile(&idx, &proxy("bookstore", "bookstore-v2-def")).expect("compiles");
    assert!(
        v2.config.inbound[0].plaintext_sources.is_empty(),
        "bookstore-v1's Service does not select v2"
    );
}

#[test]
fn upstream_settings_retries_and_egress_rules() {
    let mut idx = index(&bookstore(), MeshOptions::default());
    apply_all(
        &mut idx,
        "apiVersion: policy.openservicemesh.io/v1alpha1
kind: UpstreamTrafficSetting
metadata: {name: limits, namespace: bookstore}
spec:
  host: bookstore-v1.bookstore.svc.cluster.local
  connectionSettings: {tcp: {maxConnections: 100, connectTimeout: 2s}, http: {maxRequests: 50, maxPendingRequests: 5}}
  rateLimit: {local: {tcp: {connections: 10, unit: minute, burst: 2}, http: {requests: 100, unit: second, responseStatusCode: 503, responseHeadersToAdd: [{name: x-limited, value: 'yes'}]}}}
  httpRoutes: [{path: '/buy.*', rateLimit: {local: {requests: 1, unit: hour}}}]
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: Retry
metadata: {name: retry, namespace: bookbuyer}
spec:
  source: {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}
  destinations: [{kind: Service, name: bookstore-v1, namespace: bookstore}]
  retryPolicy: {retryOn: '5xx, reset', perTryTimeout: 250ms, numRetries: 3}
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: Egress
metadata: {name: github, namespace: bookbuyer}
spec:
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
  hosts: [github.com]
  ports: [{number: 443, protocol: https}]
",
    );
    let v1 = compile(&idx, &proxy("bookstore", "bookstore-v1-abc")).expect("compiles");
    let port = &v1.config.inbound[0];
    assert_eq!(
        port.tcp_rate_limit,
        Some(v1::TokenBucket {
            tokens: 10,
            interval_ms: 60_000,
            burst: 2
        })
    );
    let http = port.http_rate_limit.as_ref().expect("http limit");
    assert_eq!(
        http.bucket,
        Some(v1::TokenBucket {
            tokens: 100,
            interval_ms: 1_000,
            burst: 0
        })
    );
    assert_eq!(http.status_code, 503);
    assert_eq!(http.response_headers["x-limited"], "yes");
    assert_eq!(port.route_rate_limits[0].path_regex, "/buy.*");
    assert_eq!(
        port.route_rate_limits[0]
            .limit
            .as_ref()
            .and_then(|l| l.bucket),
        Some(v1::TokenBucket {
            tokens: 1,
            interval_ms: 3_600_000,
            burst: 0
        })
    );
    let v2 = compile(&idx, &proxy("bookstore", "bookstore-v2-def")).expect("compiles");
    assert!(
        v2.config.inbound[0].tcp_rate_limit.is_none(),
        "the setting names bookstore-v1 only"
    );

    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    let leaf = buyer
        .config
        .outbound
        .iter()
        .find(|s| s.name == "bookstore-v1")
        .expect("leaf");
    let limits = leaf.limits.expect("limits");
    assert_eq!(
        (
            limits.max_connections,
            limits.connect_timeout_ms,
            limits.max_requests,
            limits.max_pending_requests
        ),
        (100, 2000, 50, 5)
    );
    assert!(leaf.retry.is_none(), "enableRetryPolicy is off by default");
    assert_eq!(buyer.config.egress.len(), 1);
    let rule = &buyer.config.egress[0];
    assert_eq!(
        (rule.name.as_str(), rule.hosts.as_slice()),
        ("bookbuyer/github", &["github.com".to_string()][..])
    );
    assert_eq!(
        rule.ports,
        [v1::EgressPort {
            number: 443,
            protocol: "https".into()
        }]
    );
    let thief = compile(&idx, &proxy("bookthief", "bookthief-1")).expect("compiles");
    assert!(thief.config.egress.is_empty());

    apply_all(
        &mut idx,
        "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: osm-mesh-config, namespace: osm-system}\n\
         spec: {traffic: {enablePermissiveTrafficPolicyMode: false}, featureFlags: {enableRetryPolicy: true, enableEgressPolicy: false}}\n",
    );
    let buyer = compile(&idx, &proxy("bookbuyer", "bookbuyer-1")).expect("compiles");
    let leaf = buyer
        .config
        .outbound
        .iter()
        .find(|s| s.name == "bookstore-v1")
        .expect("leaf");
    assert_eq!(
        leaf.retry,
        Some(v1::RetryPolicy {
            retry_on: vec!["5xx".into(), "reset".into()],
            num_retries: 3,
            per_try_timeout_ms: 250,
            backoff_base_ms: 25
        })
    );
    assert!(buyer.config.egress.is_empty(), "enableEgressPolicy off");
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
