//! Gateway API routes (GAMMA): which routes a client gets for a Service
//! port, their rules and backends, and the routes' status.

use super::*;
use crate::compile::gateway::{MeshRoute, status::route_status};

/// The conformance suite's mesh layout: `echo` over v1 and v2, `echo-v1`
/// and `echo-v2`, each on ports 80 and 8080, in `mesh`; a client in
/// `mesh` and one in `consumer`; `outside` is not monitored.
fn mesh_layout(permissive: bool) -> String {
    let mut y = String::new();
    y += &namespace("mesh", true);
    y += &namespace("consumer", true);
    y += &namespace("outside", false);
    y += &pod(
        "mesh",
        "echo-v1-a",
        "echo",
        "10.1.0.1",
        "app: echo, version: v1",
    );
    y += &pod(
        "mesh",
        "echo-v2-a",
        "echo",
        "10.1.0.2",
        "app: echo, version: v2",
    );
    y += &pod("mesh", "client-a", "client", "10.1.0.9", "app: client");
    y += &pod("consumer", "client-b", "client", "10.2.0.9", "app: client");
    let ports = "{name: http, port: 80, targetPort: 8080}, {name: http-alt, port: 8080}";
    y += &service("mesh", "echo", "app: echo", ports, "10.96.0.1");
    y += &service(
        "mesh",
        "echo-v1",
        "app: echo, version: v1",
        ports,
        "10.96.0.2",
    );
    y += &service(
        "mesh",
        "echo-v2",
        "app: echo, version: v2",
        ports,
        "10.96.0.3",
    );
    y += &service("outside", "elsewhere", "app: x", ports, "10.96.0.4");
    if permissive {
        y += "---\napiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\n\
              metadata: {name: osm-mesh-config, namespace: osm-system}\n\
              spec: {traffic: {enablePermissiveTrafficPolicyMode: true}}\n";
    }
    y
}

fn route(ns: &str, name: &str, parent: &str, body: &str) -> String {
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  parentRefs: [{parent}]\n{body}"
    )
}

fn outbound<'a>(c: &'a Compiled, key: &str) -> &'a v1::OutboundService {
    c.config
        .outbound
        .iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| {
            panic!(
                "{key} in {:?}",
                c.config.outbound.iter().map(|s| &s.key).collect::<Vec<_>>()
            )
        })
}

fn rule_names(c: &Compiled, key: &str) -> Vec<String> {
    outbound(c, key)
        .routes
        .iter()
        .map(|r| r.name.clone())
        .collect()
}

const SPLIT_RULE: &str = "  rules:
  - backendRefs:
    - {name: echo-v1, port: 80, weight: 3}
    - {name: echo-v2, port: 80, weight: 1}
";

#[test]
fn a_producer_route_applies_to_its_port_for_every_client() {
    let mut y = mesh_layout(true);
    y += &route(
        "mesh",
        "split",
        "{group: '', kind: Service, name: echo, port: 80}",
        SPLIT_RULE,
    );
    let idx = index(&y, MeshOptions::default());
    for client in [proxy("mesh", "client-a"), proxy("consumer", "client-b")] {
        let c = compile(&idx, &client).expect("compiles");
        let echo = outbound(&c, "mesh/echo:80");
        assert_eq!(echo.routes.len(), 1, "{client:?}");
        let backends: Vec<(&str, u32)> = echo.routes[0]
            .backends
            .iter()
            .map(|b| (b.endpoints.as_str(), b.weight))
            .collect();
        assert_eq!(backends, [("mesh/echo-v1:80", 3), ("mesh/echo-v2:80", 1)]);
        assert_eq!(echo.routes[0].name, "mesh/split/0");
        assert!(
            c.config
                .endpoints
                .iter()
                .any(|s| s.key == "mesh/echo-v2:80")
        );
        assert!(
            outbound(&c, "mesh/echo:8080").routes.is_empty(),
            "the parentRef names port 80 only"
        );
        assert!(outbound(&c, "mesh/echo-v1:80").routes.is_empty());
    }
}

#[test]
fn consumer_routes_apply_to_their_namespace_and_win_there() {
    let mut y = mesh_layout(true);
    let parent = "{group: '', kind: Service, name: echo-v1, namespace: mesh}";
    y += &route(
        "mesh",
        "producer",
        parent,
        "  rules: [{backendRefs: [{name: echo-v1, port: 80}]}]\n",
    );
    y += &route(
        "consumer",
        "consumer",
        parent,
        "  rules: [{filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-header-set, value: set}]}}], backendRefs: [{name: echo-v1, namespace: mesh, port: 80}]}]\n",
    );
    let idx = index(&y, MeshOptions::default());
    let consumer = compile(&idx, &proxy("consumer", "client-b")).expect("compiles");
    assert_eq!(
        rule_names(&consumer, "mesh/echo-v1:80"),
        ["consumer/consumer/0"]
    );
    let producer = compile(&idx, &proxy("mesh", "client-a")).expect("compiles");
    assert_eq!(
        rule_names(&producer, "mesh/echo-v1:80"),
        ["mesh/producer/0"]
    );
    // The consumer route's backend is its parent, in another namespace:
    // resolved. Another Service of that namespace is not (no
    // ReferenceGrant): its share is answered 500, and the status says so.
    let rule = &outbound(&consumer, "mesh/echo-v1:80").routes[0];
    assert_eq!(rule.backends[0].endpoints, "mesh/echo-v1:80");
    let route_of = |idx: &Index, name: &str| {
        route_status(
            idx,
            &MeshRoute::Http(&idx.http_routes[&("consumer".into(), name.into())]),
        )
    };
    let status = route_of(&idx, "consumer");
    assert_eq!(status[0].conditions[1].reason, "ResolvedRefs", "{status:?}");
    let mut y2 = y.clone();
    y2 += &route(
        "consumer",
        "elsewhere",
        "{group: '', kind: Service, name: echo-v2, namespace: mesh}",
        "  rules: [{backendRefs: [{name: echo-v1, namespace: mesh, port: 80}]}]\n",
    );
    let idx2 = index(&y2, MeshOptions::default());
    let consumer = compile(&idx2, &proxy("consumer", "client-b")).expect("compiles");
    assert_eq!(
        outbound(&consumer, "mesh/echo-v2:80").routes[0].backends[0].endpoints,
        ""
    );
    assert!(
        consumer
            .warnings
            .iter()
            .any(|w| w.contains("ReferenceGrant")),
        "{:?}",
        consumer.warnings
    );
    let denied = route_of(&idx2, "elsewhere");
    let resolved = &denied[0].conditions[1];
    assert_eq!(
        (resolved.kind, resolved.status, resolved.reason),
        ("ResolvedRefs", false, "RefNotPermitted")
    );
    assert!(
        status[0].conditions[0].message.contains("consumer route"),
        "{status:?}"
    );
}

#[test]
fn routes_merge_oldest_first_and_win_over_a_traffic_split() {
    let mut y = mesh_layout(true);
    let parent = "{group: '', kind: Service, name: echo}";
    let newer = route("mesh", "a-newer", parent, SPLIT_RULE).replace(
        "metadata: {name: a-newer, namespace: mesh}",
        "metadata: {name: a-newer, namespace: mesh, creationTimestamp: '2026-01-02T00:00:00Z'}",
    );
    let older = route(
        "mesh",
        "b-older",
        parent,
        "  rules: [{name: first, backendRefs: [{name: echo-v2, port: 80}]}]\n",
    )
    .replace(
        "metadata: {name: b-older, namespace: mesh}",
        "metadata: {name: b-older, namespace: mesh, creationTimestamp: '2026-01-01T00:00:00Z'}",
    );
    y += &newer;
    y += &older;
    y += "---\napiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: s, namespace: mesh}\n\
          spec: {service: echo, backends: [{service: echo-v1, weight: 1}]}\n";
    let idx = index(&y, MeshOptions::default());
    let c = compile(&idx, &proxy("mesh", "client-a")).expect("compiles");
    assert_eq!(
        rule_names(&c, "mesh/echo:80"),
        ["mesh/b-older/first", "mesh/a-newer/0"]
    );
    let echo = outbound(&c, "mesh/echo:80");
    assert!(
        echo.split.is_empty(),
        "the routes win over the TrafficSplit"
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("TrafficSplit mesh/s does not apply to mesh/echo:80")),
        "{:?}",
        c.warnings
    );
    let status = route_status(
        &idx,
        &MeshRoute::Http(&idx.http_routes[&("mesh".into(), "b-older".into())]),
    );
    assert!(
        status[0].conditions[0]
            .message
            .contains("TrafficSplit mesh/s"),
        "{status:?}"
    );
}

#[test]
fn status_says_why_a_route_does_nothing() {
    let mut y = mesh_layout(true);
    y += &route(
        "mesh",
        "missing-backend",
        "{group: '', kind: Service, name: echo}",
        "  rules: [{backendRefs: [{name: nowhere, port: 80}]}]\n",
    );
    y += &route(
        "mesh",
        "outside",
        "{group: '', kind: Service, name: elsewhere, namespace: outside}",
        "  rules: [{backendRefs: [{name: echo, port: 80}]}]\n",
    );
    y += &route(
        "mesh",
        "no-port",
        "{group: '', kind: Service, name: echo, port: 81}",
        "  rules: [{backendRefs: [{name: echo, port: 80}]}]\n",
    );
    y += &route(
        "mesh",
        "fine",
        "{group: '', kind: Service, name: echo-v2}",
        "  rules: [{backendRefs: [{name: echo-v2, port: 80}]}]\n",
    );
    y += &route(
        "mesh",
        "gateway-parent",
        "{name: some-gateway}",
        "  rules: [{backendRefs: [{name: echo-v2, port: 80}]}]\n",
    );
    let idx = index(&y, MeshOptions::default());
    let summary = |name: &str| {
        let r = MeshRoute::Http(&idx.http_routes[&("mesh".into(), name.into())]);
        route_status(&idx, &r)
            .iter()
            .map(|s| {
                s.conditions
                    .iter()
                    .map(|c| format!("{}={}:{}", c.kind, c.status, c.reason))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        summary("missing-backend"),
        ["Accepted=true:Accepted ResolvedRefs=false:BackendNotFound"]
    );
    assert_eq!(
        summary("outside"),
        ["Accepted=false:NoMatchingParent ResolvedRefs=true:ResolvedRefs"]
    );
    assert_eq!(
        summary("no-port"),
        ["Accepted=false:NoMatchingParent ResolvedRefs=true:ResolvedRefs"]
    );
    assert_eq!(
        summary("fine"),
        ["Accepted=true:Accepted ResolvedRefs=true:ResolvedRefs"]
    );
    assert!(
        summary("gateway-parent").is_empty(),
        "a Gateway parent is another controller's"
    );
    let c = compile(&idx, &proxy("mesh", "client-a")).expect("compiles");
    let echo = outbound(&c, "mesh/echo:80");
    assert_eq!(
        echo.routes[0].backends[0].endpoints, "",
        "unresolved: answered 500"
    );
}

#[test]
fn a_frontend_without_pods_is_reachable_through_its_route_in_smi_mode() {
    let mut y = mesh_layout(false);
    y += &service(
        "mesh",
        "frontend",
        "app: none",
        "{name: http, port: 80}",
        "10.96.0.9",
    );
    y += "---\napiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: t, namespace: mesh}\n\
          spec: {destination: {kind: ServiceAccount, name: echo, namespace: mesh}, rules: [{kind: HTTPRouteGroup, name: all}], sources: [{kind: ServiceAccount, name: client, namespace: mesh}]}\n\
          ---\napiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: all, namespace: mesh}\n\
          spec: {matches: [{name: all, pathRegex: '.*'}]}\n";
    y += &route(
        "mesh",
        "front",
        "{group: '', kind: Service, name: frontend}",
        "  rules: [{backendRefs: [{name: echo-v1, port: 80}]}]\n",
    );
    let idx = index(&y, MeshOptions::default());
    let c = compile(&idx, &proxy("mesh", "client-a")).expect("compiles");
    assert_eq!(rule_names(&c, "mesh/frontend:80"), ["mesh/front/0"]);
    let other = compile(&idx, &proxy("consumer", "client-b")).expect("compiles");
    assert!(
        !other
            .config
            .outbound
            .iter()
            .any(|s| s.key == "mesh/frontend:80"),
        "a client allowed nowhere gets neither the backends nor the frontend"
    );
}

#[test]
fn applying_a_route_recompiles_its_clients() {
    let idx = index(&mesh_layout(true), MeshOptions::default());
    let mut compiler = Compiler::new(idx);
    let client = proxy("consumer", "client-b");
    compiler.add_proxy(client.clone()).expect("compiles");
    let loaded = crate::load::load_str(
        "r.yaml",
        &route(
            "mesh",
            "split",
            "{group: '', kind: Service, name: echo}",
            SPLIT_RULE,
        ),
    );
    let impact = compiler.apply(loaded.objects[0].object.clone());
    assert!(impact.changed.contains_key(&client), "{impact:?}");
    let impact = compiler.delete(&loaded.objects[0].object.key());
    assert!(impact.changed.contains_key(&client), "{impact:?}");
}

#[test]
fn a_split_and_a_route_on_one_service_warn_from_either_side() {
    use crate::compile::gateway::conflicts::split_conflicts;
    let split = "---\napiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: s, namespace: mesh}\n\
                 spec: {service: echo, backends: [{service: echo-v1, weight: 1}]}\n";
    let on_echo = route(
        "mesh",
        "r",
        "{group: '', kind: Service, name: echo}",
        SPLIT_RULE,
    );
    let object = |yaml: &str| {
        crate::load::load_str("o.yaml", yaml)
            .objects
            .remove(0)
            .object
    };

    let with_route = index(&(mesh_layout(true) + &on_echo), MeshOptions::default());
    let warned = split_conflicts(&with_route, &object(split));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].starts_with("HTTPRoute mesh/r routes Service mesh/echo"),
        "{warned:?}"
    );

    let with_split = index(&(mesh_layout(true) + split), MeshOptions::default());
    let warned = split_conflicts(&with_split, &object(&on_echo));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].starts_with("TrafficSplit mesh/s on Service mesh/echo"),
        "{warned:?}"
    );

    let elsewhere = route(
        "mesh",
        "r2",
        "{group: '', kind: Service, name: echo-v2}",
        SPLIT_RULE,
    );
    assert!(split_conflicts(&with_split, &object(&elsewhere)).is_empty());
}
