//! TrafficTargets, HTTPRouteGroups and TCPRoutes: the authorizations of inbound ports and the services a client may reach.

use super::*;

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
